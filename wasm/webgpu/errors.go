package webgpu

import (
	"errors"
	"fmt"
)

// Sentinel errors; an *Error matches the one of its Code with errors.Is.
var (
	ErrUnavailable = errors.New("webgpu: not available in this browser")
	ErrNoAdapter   = errors.New("webgpu: no adapter")
	ErrNoDevice    = errors.New("webgpu: could not create a device")
	ErrValidation  = errors.New("webgpu: validation error")
	ErrOutOfMemory = errors.New("webgpu: out of GPU memory")
	ErrDeviceLost  = errors.New("webgpu: device lost")
	ErrInternal    = errors.New("webgpu: internal error")
	ErrBadArgument = errors.New("webgpu: bad argument")
	ErrUnsupported = errors.New("webgpu: the device lacks a feature this needs")
)

// codes maps the shim's GPUShimError codes (shim/gpu.js) to sentinels.
var codes = map[string]error{
	"unavailable":   ErrUnavailable,
	"no-adapter":    ErrNoAdapter,
	"no-device":     ErrNoDevice,
	"validation":    ErrValidation,
	"out-of-memory": ErrOutOfMemory,
	"device-lost":   ErrDeviceLost,
	"internal":      ErrInternal,
	"bad-argument":  ErrBadArgument,
	"unsupported":   ErrUnsupported,
}

// Error is a failed WebGPU operation: Op names what Go asked for, Code is the
// shim's error code, Message what WebGPU said.
type Error struct {
	Op      string
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("webgpu: %s: %s: %s", e.Op, e.Code, e.Message)
}

// Is makes errors.Is(err, ErrDeviceLost) and friends work on *Error.
func (e *Error) Is(target error) bool {
	s, ok := codes[e.Code]
	return ok && s == target
}

// newError builds an *Error; an unknown code is kept but matches ErrInternal.
func newError(op, code, message string) *Error {
	if _, ok := codes[code]; !ok {
		message = code + ": " + message
		code = "internal"
	}
	return &Error{Op: op, Code: code, Message: message}
}
