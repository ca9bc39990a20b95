package session

import (
	"errors"
	"fmt"

	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/features"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/selfcheck"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// Event is what a session emits, in order: one of the types below.
type Event interface{ isEvent() }

// Phase names the stage a session is in.
type Phase string

// The phases, in the order a session goes through them.
const (
	PhaseDetect   Phase = "detect"   // reading the browser's features
	PhaseDevice   Phase = "device"   // opening the WebGPU device
	PhaseFetch    Phase = "fetch"    // reading the model file
	PhaseCheck    Phase = "check"    // the kernel self-checks
	PhaseUpload   Phase = "upload"   // the weights to the GPU
	PhaseChoose   Phase = "choose"   // measuring the backends
	PhaseReady    Phase = "ready"    // ready to generate
	PhaseGenerate Phase = "generate" // generating
)

// Progress says what the session is doing; Loaded and Total are bytes in
// PhaseFetch (Total −1 when unknown), else 0.
type Progress struct {
	Phase         Phase
	Text          string
	Loaded, Total int64
}

// Detected carries the browser's features and the code path chosen from
// them.
type Detected struct{ Features features.Report }

// DeviceOpened carries the WebGPU device opened.
type DeviceOpened struct{ Info webgpu.Info }

// Checked carries one kernel's self-check.
type Checked struct{ Result selfcheck.Result }

// Loaded says the model is loaded.
type Loaded struct {
	Name   string
	Bytes  int64
	Millis float64
}

// Chosen says where generation runs and why.
type Chosen struct {
	Backend   string // "webgpu" or "cpu"
	Precision string // "f32" or "f16"
	Why       string
	Probe     *report.Probe // the measurements, when both paths were timed
}

// Started says a generation began.
type Started struct{ Prompt string }

// Token is one generated token.
type Token struct{ engine.Token }

// DeviceLost says the GPU device was lost during a generation, which goes
// on with a new device (or Fallback's backend) from its tokens so far.
type DeviceLost struct{ Message string }

// Fallback says generation moved from one backend to another.
type Fallback struct{ From, To, Why string }

// Done says a generation ended, with its usage and timings.
type Done struct {
	Result engine.Result
	Err    error // non-nil when it ended early (Error was emitted too)
}

// Error is a failure, with a stable code (CONTRACTS.md section 3's, and
// "kernel-check" for a self-check that failed). Recoverable errors leave
// the session usable (a failed GPU path falls back to the CPU).
type Error struct {
	Code        Code
	Message     string
	Recoverable bool
}

func (Progress) isEvent()     {}
func (Detected) isEvent()     {}
func (DeviceOpened) isEvent() {}
func (Checked) isEvent()      {}
func (Loaded) isEvent()       {}
func (Chosen) isEvent()       {}
func (Started) isEvent()      {}
func (Token) isEvent()        {}
func (Done) isEvent()         {}
func (DeviceLost) isEvent()   {}
func (Fallback) isEvent()     {}
func (Error) isEvent()        {}

func (e Error) Error() string { return e.Message }

// Code is an error's stable code.
type Code string

const (
	CodeWebGPUUnavailable Code = "webgpu-unavailable"
	CodeOutOfMemory       Code = "out-of-memory"
	CodeDeviceLost        Code = "device-lost"
	CodeBadModel          Code = "bad-model"
	CodeBadOption         Code = "bad-option"
	CodeContextFull       Code = "context-full"
	CodeAborted           Code = "aborted"
	CodeNetwork           Code = "network"
	CodeKernelCheck       Code = "kernel-check"
	CodeInternal          Code = "internal"
)

// CodeOf classifies err by its cause.
func CodeOf(err error) Code {
	var ge *gguf.Error
	switch {
	case errors.Is(err, webgpu.ErrOutOfMemory), errors.Is(err, model.ErrKVMemory):
		return CodeOutOfMemory
	case errors.Is(err, webgpu.ErrDeviceLost):
		return CodeDeviceLost
	case errors.Is(err, webgpu.ErrUnavailable), errors.Is(err, webgpu.ErrNoAdapter), errors.Is(err, webgpu.ErrNoDevice):
		return CodeWebGPUUnavailable
	case errors.Is(err, model.ErrBadModel), errors.As(err, &ge):
		return CodeBadModel
	case errors.Is(err, model.ErrContextFull), errors.Is(err, engine.ErrPromptTooLong):
		return CodeContextFull
	case errors.Is(err, errAborted):
		return CodeAborted
	}
	return CodeInternal
}

var errAborted = errors.New("session: aborted")

// newError makes the Error event of err.
func newError(code Code, recoverable bool, format string, args ...any) Error {
	return Error{Code: code, Message: fmt.Sprintf(format, args...), Recoverable: recoverable}
}
