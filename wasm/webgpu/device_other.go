//go:build !(js && wasm)

package webgpu

import (
	"context"
	"time"
)

// Device is unavailable outside js/wasm: WebGPU reaches Go through the
// browser's (or Dawn-under-Node's) JS. Every method reports ErrUnavailable,
// so code that takes a *Device builds and tests natively.
type Device struct{}

func unavailable(op string) error {
	return newError(op, "unavailable", "WebGPU needs GOOS=js GOARCH=wasm")
}

// Open reports ErrUnavailable natively.
func Open(ctx context.Context, opts Options) (*Device, error) { return nil, unavailable("open") }

func (d *Device) Info() Info { return Info{} }

func (d *Device) CreateBuffer(size int64, usage BufferUsage, label string) (Buffer, error) {
	return Buffer{}, unavailable("createBuffer")
}

func (d *Device) DestroyBuffer(b Buffer) {}

func (d *Device) WriteBuffer(b Buffer, offset int64, data []byte) error {
	return unavailable("writeBuffer")
}

func (d *Device) Pipeline(ctx context.Context, wgsl, entryPoint string, constants map[string]float64) (Pipeline, error) {
	return 0, unavailable("createPipeline")
}

func (d *Device) BindGroup(p Pipeline, bufs ...Buffer) (BindGroup, error) {
	return 0, unavailable("createBindGroup")
}

func (d *Device) BindGroupRanges(p Pipeline, bs ...Binding) (BindGroup, error) {
	return 0, unavailable("createBindGroup")
}

func (d *Device) Submit(cl *CommandList) error { return unavailable("submit") }

func (d *Device) Read(ctx context.Context, b Buffer, offset, size int64) ([]byte, error) {
	return nil, unavailable("read")
}

func (d *Device) SubmitProfiled(ctx context.Context, cl *CommandList) ([]time.Duration, error) {
	return nil, unavailable("submit")
}

// PendingRead is a queued read (see the js/wasm build).
type PendingRead struct{}

func (d *Device) ReadAsync(b Buffer, offset, size int64) *PendingRead { return &PendingRead{} }

func (r *PendingRead) Wait(ctx context.Context) ([]byte, error) { return nil, unavailable("read") }

func (d *Device) Stats() Stats { return Stats{} }

func (d *Device) Destroy() {}

// WithholdAdapters does nothing natively: Open fails already.
func WithholdAdapters() {}
