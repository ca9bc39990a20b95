//go:build js && wasm

package webgpu

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hack-pad/safejs"
	"github.com/webinfer/webinfer/wasm/jsutil"
)

// Device is an open WebGPU device, driven through the shim's GPUContext.
// It is safe for one goroutine at a time; the engine serialises steps.
type Device struct {
	ctx  safejs.Value // the shim's GPUContext
	info Info
}

// Open finds the shim (globalThis.webinferGPU, from shim/gpu.js), requests an
// adapter and a device with the engine's features and limits, and returns
// the device. Errors match ErrUnavailable, ErrNoAdapter or ErrNoDevice.
func Open(ctx context.Context, opts Options) (*Device, error) {
	shim, err := safejs.Global().Get("webinferGPU")
	if err != nil || shim.IsUndefined() || shim.IsNull() {
		return nil, newError("open", "unavailable", "the WebGPU shim (shim/gpu.js) is not loaded")
	}
	optsJSON, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	jsOpts, err := jsutil.ValueFromJSON(optsJSON)
	if err != nil {
		return nil, err
	}
	p, err := shim.Call("open", jsOpts)
	if err != nil {
		return nil, shimError("open", err)
	}
	gc, err := jsutil.Await(ctx, p)
	if err != nil {
		return nil, shimError("open", err)
	}
	d := &Device{ctx: gc}
	infoVal, err := gc.Call("info")
	if err != nil {
		return nil, shimError("info", err)
	}
	if err := decodeJS(infoVal, &d.info); err != nil {
		return nil, fmt.Errorf("webgpu: decoding adapter info: %w", err)
	}
	return d, nil
}

// Info describes the adapter and the device.
func (d *Device) Info() Info { return d.info }

// CreateBuffer allocates a buffer of size bytes (rounded up to 4).
func (d *Device) CreateBuffer(size int64, usage BufferUsage, label string) (Buffer, error) {
	v, err := d.ctx.Call("createBuffer", float64(size), int(usage), label)
	if err != nil {
		return Buffer{}, shimError("createBuffer "+label, err)
	}
	id, err := v.Int()
	if err != nil {
		return Buffer{}, err
	}
	return Buffer{id: uint32(id), Size: size}, nil
}

// DestroyBuffer frees a buffer now rather than at garbage collection.
func (d *Device) DestroyBuffer(b Buffer) {
	_, _ = d.ctx.Call("destroyBuffer", int(b.id))
}

// WriteBuffer queues a write of data into b at offset (both multiples of 4).
// The write lands before any later Submit's work runs.
func (d *Device) WriteBuffer(b Buffer, offset int64, data []byte) error {
	arr, err := jsutil.Bytes(data)
	if err != nil {
		return err
	}
	if _, err := d.ctx.Call("writeBuffer", int(b.id), float64(offset), arr); err != nil {
		return shimError("writeBuffer", err)
	}
	return nil
}

// Pipeline compiles a compute pipeline from WGSL, once: the shim caches it
// by (source, entry point, constants), so asking again is cheap.
// constants sets the shader's override declarations.
func (d *Device) Pipeline(ctx context.Context, wgsl, entryPoint string, constants map[string]float64) (Pipeline, error) {
	consts := map[string]any{}
	for k, v := range constants {
		consts[k] = v
	}
	p, err := d.ctx.Call("createPipeline", wgsl, entryPoint, consts)
	if err != nil {
		return 0, shimError("createPipeline "+entryPoint, err)
	}
	v, err := jsutil.Await(ctx, p)
	if err != nil {
		return 0, shimError("createPipeline "+entryPoint, err)
	}
	id, err := v.Int()
	return Pipeline(id), err
}

// BindGroup binds bufs to bindings 0..len(bufs)-1 of group 0 of p.
// Make bind groups once and reuse them every step.
func (d *Device) BindGroup(p Pipeline, bufs ...Buffer) (BindGroup, error) {
	bs := make([]Binding, len(bufs))
	for i, b := range bufs {
		bs[i] = Whole(b)
	}
	return d.BindGroupRanges(p, bs...)
}

// BindGroupRanges is BindGroup with buffer ranges (for uniform blocks
// packed in one buffer at 256-byte offsets, written with one write a step).
func (d *Device) BindGroupRanges(p Pipeline, bs ...Binding) (BindGroup, error) {
	ids := make([]any, len(bs))
	for i, b := range bs {
		if b.Size == 0 {
			ids[i] = int(b.Buffer.id)
		} else {
			ids[i] = []any{int(b.Buffer.id), float64(b.Offset), float64(b.Size)}
		}
	}
	v, err := d.ctx.Call("createBindGroup", int(p), ids)
	if err != nil {
		return 0, shimError("createBindGroup", err)
	}
	id, err := v.Int()
	return BindGroup(id), err
}

// Submit sends the whole command list as one command buffer in one submit.
// Validation errors it causes are reported by the next Read.
func (d *Device) Submit(cl *CommandList) error {
	arr, err := jsutil.Uint32s(cl.Words())
	if err != nil {
		return err
	}
	if _, err := d.ctx.Call("submit", arr); err != nil {
		return shimError("submit", err)
	}
	return nil
}

// SubmitProfiled runs the command list like Submit, each dispatch in its
// own compute pass with timestamp writes, waits for it, and returns each
// command's GPU time (0 for copies). It needs the "timestamp-query"
// feature (else ErrUnsupported). For profiling, not for the hot path.
func (d *Device) SubmitProfiled(ctx context.Context, cl *CommandList) ([]time.Duration, error) {
	arr, err := jsutil.Uint32s(cl.Words())
	if err != nil {
		return nil, err
	}
	p, err := d.ctx.Call("submitProfiled", arr)
	if err != nil {
		return nil, shimError("submit", err)
	}
	v, err := jsutil.Await(ctx, p)
	if err != nil {
		return nil, shimError("submit", err)
	}
	n, err := v.Length()
	if err != nil {
		return nil, err
	}
	out := make([]time.Duration, n)
	for i := range out {
		e, err := v.Index(i)
		if err != nil {
			return nil, err
		}
		ns, err := e.Float()
		if err != nil {
			return nil, err
		}
		out[i] = time.Duration(ns)
	}
	return out, nil
}

// Read copies size bytes at offset out of b (which needs UsageCopySrc),
// after all work submitted before it, and returns them. It reports errors
// that earlier submits raised.
func (d *Device) Read(ctx context.Context, b Buffer, offset, size int64) ([]byte, error) {
	return d.ReadAsync(b, offset, size).Wait(ctx)
}

// PendingRead is a read whose copy is queued on the GPU; Wait gives its
// bytes.
type PendingRead struct {
	promise safejs.Value
	size    int64
	err     error
}

// ReadAsync queues the copy of size bytes at offset out of b behind the
// work submitted so far and returns at once: work submitted after it
// (the next step) does not change what it reads, and runs while the copy
// is mapped back. Wait for the bytes.
func (d *Device) ReadAsync(b Buffer, offset, size int64) *PendingRead {
	// The shim's read() queues its copy before its first await, so the copy
	// is ordered here, before anything Go submits next.
	p, err := d.ctx.Call("read", int(b.id), float64(offset), float64(size))
	if err != nil {
		return &PendingRead{err: shimError("read", err)}
	}
	return &PendingRead{promise: p, size: size}
}

// Wait returns the bytes read, and any error that work submitted before
// the read raised.
func (r *PendingRead) Wait(ctx context.Context) ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	v, err := jsutil.Await(ctx, r.promise)
	if err != nil {
		return nil, shimError("read", err)
	}
	out := make([]byte, r.size)
	if _, err := safejs.CopyBytesToGo(out, v); err != nil {
		return nil, err
	}
	return out, nil
}

// Stats returns the shim's counters.
func (d *Device) Stats() Stats {
	var s Stats
	v, err := d.ctx.Get("stats")
	if err == nil {
		_ = decodeJS(v, &s)
	}
	return s
}

// Destroy releases the device. Every later call fails with ErrDeviceLost,
// as it would after a real loss (which is how tests provoke one).
func (d *Device) Destroy() {
	_, _ = d.ctx.Call("destroy")
}

// WithholdAdapters makes every later Open in this scope fail with
// ErrNoAdapter, as a browser that blocks WebGPU after its GPU process
// crashed would (tests of the CPU path taking over after a loss).
func WithholdAdapters() {
	if shim, err := safejs.Global().Get("webinferGPU"); err == nil && shim.Type() == safejs.TypeObject {
		_, _ = shim.Call("withholdAdapters")
	}
}

func decodeJS(v safejs.Value, out any) error {
	b, err := jsutil.JSON(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// shimError turns what the shim threw into an *Error with its code.
func shimError(op string, err error) error {
	code := jsutil.ErrorCode(err)
	if code == "" {
		code = "internal"
	}
	return newError(op, code, jsutil.ErrorMessage(err))
}
