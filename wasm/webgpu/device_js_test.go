//go:build js && wasm

package webgpu

import (
	"context"
	"errors"
	"syscall/js"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These run wherever js/wasm tests run: under Node (no shim: Open must say
// ErrUnavailable) and in each browser by tests/browser (the shim loaded;
// WebGPU real in Chromium and Firefox, absent in WebKit).

func openOrSkip(t *testing.T) *Device {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := Open(ctx, Options{})
	gpu := js.Global().Get("navigator").Truthy() && js.Global().Get("navigator").Get("gpu").Truthy()
	shim := js.Global().Get("webinferGPU").Truthy()
	if !gpu || !shim {
		require.ErrorIs(t, err, ErrUnavailable, "without WebGPU or the shim, Open must say ErrUnavailable")
		t.Skipf("WebGPU unavailable here (navigator.gpu %v, shim %v): %v", gpu, shim, err)
	}
	require.NoError(t, err)
	t.Cleanup(d.Destroy)
	return d
}

func TestOpenReportsAdapterAndLimits(t *testing.T) {
	d := openOrSkip(t)
	info := d.Info()
	t.Logf("adapter %+v, features %v", info.Adapter, info.Features)
	assert.Greater(t, info.Limit("maxStorageBufferBindingSize"), int64(0))
	assert.Greater(t, info.Limit("maxComputeInvocationsPerWorkgroup"), int64(0))
	assert.GreaterOrEqual(t, info.Limit("maxBufferSize"), info.Limit("maxStorageBufferBindingSize")/2)
}

func TestBufferRoundTrip(t *testing.T) {
	d := openOrSkip(t)
	ctx := context.Background()
	b, err := d.CreateBuffer(16, UsageStorage|UsageCopyDst|UsageCopySrc, "roundtrip")
	require.NoError(t, err)
	require.NoError(t, d.WriteBuffer(b, 0, Float32Bytes([]float32{1, 2, 3, 4})))
	got, err := d.Read(ctx, b, 4, 8)
	require.NoError(t, err)
	assert.Equal(t, []float32{2, 3}, BytesToFloat32(got))
}

// doubleWGSL doubles a buffer in place: a kernel whose result says that a
// dispatch ran, and how many times.
const doubleWGSL = `
@group(0) @binding(0) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < arrayLength(&v)) { v[gid.x] = v[gid.x] * 2.0; }
}`

func TestCommandListIsOneSubmit(t *testing.T) {
	d := openOrSkip(t)
	ctx := context.Background()
	p, err := d.Pipeline(ctx, doubleWGSL, "main", nil)
	require.NoError(t, err)
	again, err := d.Pipeline(ctx, doubleWGSL, "main", nil)
	require.NoError(t, err)
	assert.Equal(t, p, again, "a pipeline is compiled once and cached")

	v, err := d.CreateBuffer(4*100, UsageStorage|UsageCopyDst|UsageCopySrc, "v")
	require.NoError(t, err)
	w, err := d.CreateBuffer(4*100, UsageStorage|UsageCopyDst|UsageCopySrc, "w")
	require.NoError(t, err)
	ones := make([]float32, 100)
	for i := range ones {
		ones[i] = 1
	}
	require.NoError(t, d.WriteBuffer(v, 0, Float32Bytes(ones)))
	bg, err := d.BindGroup(p, v)
	require.NoError(t, err)

	var cl CommandList
	for range 5 {
		cl.Dispatch(p, bg, 2, 1, 1) // 2 workgroups of 64 cover 100
	}
	cl.Copy(v, 0, w, 0, 400)
	before := d.Stats()
	require.NoError(t, d.Submit(&cl))
	got, err := d.Read(ctx, w, 0, 400)
	require.NoError(t, err)
	after := d.Stats()
	for i, x := range BytesToFloat32(got) {
		require.Equal(t, float32(32), x, "element %d: 1 doubled 5 times", i)
	}
	assert.Equal(t, 1, after.Submits-before.Submits)
	assert.Equal(t, 5, after.Dispatches-before.Dispatches)
	assert.Equal(t, 1, after.Copies-before.Copies)
	assert.Equal(t, before.PipelinesCompiled, after.PipelinesCompiled)
}

func TestBadShaderIsValidationError(t *testing.T) {
	d := openOrSkip(t)
	_, err := d.Pipeline(context.Background(), "fn main( {", "main", nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrValidation)
	var e *Error
	require.True(t, errors.As(err, &e))
	assert.Equal(t, "validation", e.Code)
}

func TestUnknownHandleIsBadArgument(t *testing.T) {
	d := openOrSkip(t)
	var cl CommandList
	cl.Dispatch(9999, 9999, 1, 1, 1)
	assert.ErrorIs(t, d.Submit(&cl), ErrBadArgument)
}

func TestOutOfRangeCopyIsReportedAtRead(t *testing.T) {
	d := openOrSkip(t)
	a, err := d.CreateBuffer(16, UsageStorage|UsageCopySrc|UsageCopyDst, "a")
	require.NoError(t, err)
	var cl CommandList
	cl.Copy(a, 0, a, 8, 64) // past the end of a: a WebGPU validation error
	require.NoError(t, d.Submit(&cl), "validation errors surface asynchronously")
	_, err = d.Read(context.Background(), a, 0, 16)
	assert.ErrorIs(t, err, ErrValidation)
}

func TestLostDeviceIsTypedError(t *testing.T) {
	d := openOrSkip(t)
	b, err := d.CreateBuffer(16, UsageStorage|UsageCopySrc, "b")
	require.NoError(t, err)
	d.Destroy()
	_, err = d.Read(context.Background(), b, 0, 16)
	assert.ErrorIs(t, err, ErrDeviceLost)
	_, err = d.CreateBuffer(16, UsageStorage, "after")
	assert.ErrorIs(t, err, ErrDeviceLost)
}
