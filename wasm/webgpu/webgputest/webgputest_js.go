//go:build js && wasm

package webgputest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// Open opens a device for t, destroyed when t ends, or skips t where the
// host has no WebGPU.
func Open(t testing.TB) *webgpu.Device {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := webgpu.Open(ctx, webgpu.Options{})
	if errors.Is(err, webgpu.ErrUnavailable) {
		t.Skipf("no WebGPU here: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(d.Destroy)
	return d
}

// SoftwareAdapter says whether the adapter is a CPU one, where the
// workgroup forms of the kernels compile and run slowly: marked fallback
// (SwiftShader in Chromium and Dawn), named as one, or nameless (Firefox
// hides lavapipe's strings).
func SoftwareAdapter(info webgpu.Info) bool {
	a := info.Adapter
	name := strings.ToLower(a.Vendor + " " + a.Architecture + " " + a.Device + " " + a.Description)
	return a.IsFallbackAdapter || strings.TrimSpace(name) == "" ||
		strings.Contains(name, "swiftshader") || strings.Contains(name, "llvmpipe") || strings.Contains(name, "lavapipe")
}

// Long skips t, a long test, under -test.short on a software adapter:
// make test-dawn runs the GPU packages so, on the SwiftShader that the
// browser stage (make test-browser) then runs them on in full, in
// Chromium. A real GPU (scripts/h100-bench.sh) runs them whatever the flag.
func Long(t testing.TB, d *webgpu.Device) {
	if testing.Short() && SoftwareAdapter(d.Info()) {
		t.Skip("-short on a software adapter: the browser stage runs this test in full on the same adapter")
	}
}
