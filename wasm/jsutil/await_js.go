//go:build js && wasm

package jsutil

import (
	"context"
	"errors"
	"fmt"
	"syscall/js"

	"github.com/hack-pad/safejs"
)

// Await waits for a JS Promise (or any thenable) and returns what it resolved
// to, or an error carrying what it rejected with.
//
// It must be called from a goroutine, never from inside a js.FuncOf callback
// or event handler: the promise only settles once control returns to the JS
// event loop, which a blocked callback would prevent. Blocking a goroutine on
// a channel is fine: the Go scheduler yields to the event loop meanwhile.
//
// If ctx ends first, Await returns ctx.Err(); the callbacks stay registered
// until the promise settles, then release themselves.
func Await(ctx context.Context, promise safejs.Value) (safejs.Value, error) {
	if promise.Type() != safejs.TypeObject {
		return promise, nil // a plain value: nothing to wait for
	}
	type outcome struct {
		value safejs.Value
		err   error
	}
	done := make(chan outcome, 1)
	var onOK, onErr safejs.Func
	release := func() { onOK.Release(); onErr.Release() }
	var err error
	onOK, err = safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		v := safejs.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		done <- outcome{value: v}
		release()
		return nil
	})
	if err != nil {
		return safejs.Undefined(), err
	}
	onErr, err = safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		v := safejs.Undefined()
		if len(args) > 0 {
			v = args[0]
		}
		done <- outcome{err: js.Error{Value: safejs.Unsafe(v)}}
		release()
		return nil
	})
	if err != nil {
		onOK.Release()
		return safejs.Undefined(), err
	}
	if _, err := promise.Call("then", onOK, onErr); err != nil {
		release()
		return safejs.Undefined(), fmt.Errorf("jsutil: value is not a promise: %w", err)
	}
	select {
	case o := <-done:
		return o.value, o.err
	case <-ctx.Done():
		return safejs.Undefined(), ctx.Err()
	}
}

// ErrorCode returns the `code` property of a thrown JS error object (the shim
// throws errors with one), or "" when err carries no JS error or no code.
func ErrorCode(err error) string {
	var jsErr js.Error
	if !errors.As(err, &jsErr) || jsErr.Value.Type() != js.TypeObject {
		return ""
	}
	code := jsErr.Value.Get("code")
	if code.Type() != js.TypeString {
		return ""
	}
	return code.String()
}

// ErrorMessage returns the `message` of a thrown JS error, or err's text.
func ErrorMessage(err error) string {
	var jsErr js.Error
	if errors.As(err, &jsErr) && jsErr.Value.Type() == js.TypeObject {
		if m := jsErr.Value.Get("message"); m.Type() == js.TypeString {
			return m.String()
		}
	}
	return err.Error()
}

// Bytes copies a Go byte slice into a new JS Uint8Array.
func Bytes(b []byte) (safejs.Value, error) {
	u8, err := safejs.Global().Get("Uint8Array")
	if err != nil {
		return safejs.Undefined(), err
	}
	arr, err := u8.New(len(b))
	if err != nil {
		return safejs.Undefined(), err
	}
	if _, err := safejs.CopyBytesToJS(arr, b); err != nil {
		return safejs.Undefined(), err
	}
	return arr, nil
}

// Uint32s copies a Go []uint32 into a new JS Uint32Array (through one byte
// copy: syscall/js only copies bytes).
func Uint32s(words []uint32) (safejs.Value, error) {
	u8, err := Bytes(uint32Bytes(words))
	if err != nil {
		return safejs.Undefined(), err
	}
	buf, err := u8.Get("buffer")
	if err != nil {
		return safejs.Undefined(), err
	}
	u32, err := safejs.Global().Get("Uint32Array")
	if err != nil {
		return safejs.Undefined(), err
	}
	return u32.New(buf)
}

// JSON turns a JS value into JSON text with JSON.stringify, for decoding into
// a Go struct with encoding/json.
func JSON(v safejs.Value) ([]byte, error) {
	j, err := safejs.Global().Get("JSON")
	if err != nil {
		return nil, err
	}
	s, err := j.Call("stringify", v)
	if err != nil {
		return nil, err
	}
	str, err := s.String()
	return []byte(str), err
}

// ValueFromJSON turns JSON text into a JS value with JSON.parse.
func ValueFromJSON(text []byte) (safejs.Value, error) {
	j, err := safejs.Global().Get("JSON")
	if err != nil {
		return safejs.Undefined(), err
	}
	return j.Call("parse", string(text))
}
