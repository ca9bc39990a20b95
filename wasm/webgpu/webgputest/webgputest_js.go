//go:build js && wasm

package webgputest

import (
	"context"
	"errors"
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
