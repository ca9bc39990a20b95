// Package webgpu is the engine's Go handle on the browser's WebGPU, through
// the JS shim in shim/gpu.js.
//
// In: WGSL source, buffer contents, a CommandList per step. Out: buffer
// contents read back, adapter facts (Info), counters (Stats), and typed errors
// (ErrUnavailable, ErrNoAdapter, ErrValidation, ErrOutOfMemory, ErrDeviceLost).
//
// Go holds integer handles; the shim holds the WebGPU objects. A step is
// recorded into a CommandList on the Go side and replayed by the shim into one
// command encoder and one queue.submit, so Go crosses into JS a handful of
// times per step instead of once per dispatch (each crossing costs more than
// recording a dispatch).
//
// The Device is implemented for js/wasm (device_js.go); natively, Open
// returns ErrUnavailable so callers build and test on every platform.
package webgpu
