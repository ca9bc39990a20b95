//go:build js && wasm

package jsutil

import (
	"context"
	"testing"
	"time"

	"github.com/hack-pad/safejs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func eval(t *testing.T, src string) safejs.Value {
	t.Helper()
	fn, err := safejs.Global().Get("Function")
	require.NoError(t, err)
	f, err := fn.New(src)
	require.NoError(t, err)
	v, err := f.Invoke()
	require.NoError(t, err)
	return v
}

func TestAwaitResolved(t *testing.T) {
	v, err := Await(context.Background(), eval(t, "return new Promise(r => setTimeout(() => r(42), 10))"))
	require.NoError(t, err)
	n, err := v.Int()
	require.NoError(t, err)
	assert.Equal(t, 42, n)
}

func TestAwaitRejectedKeepsCode(t *testing.T) {
	_, err := Await(context.Background(), eval(t, `const e = new Error("boom"); e.code = "device-lost"; return Promise.reject(e)`))
	require.Error(t, err)
	assert.Equal(t, "device-lost", ErrorCode(err))
	assert.Equal(t, "boom", ErrorMessage(err))
}

func TestAwaitPlainValue(t *testing.T) {
	v, err := Await(context.Background(), eval(t, "return 7"))
	require.NoError(t, err)
	n, _ := v.Int()
	assert.Equal(t, 7, n)
}

func TestAwaitHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := Await(ctx, eval(t, "return new Promise(() => {})"))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestThrownErrorIsGoError(t *testing.T) {
	obj := eval(t, `return { boom() { const e = new Error("bad"); e.code = "validation"; throw e; } }`)
	_, err := obj.Call("boom")
	require.Error(t, err, "safejs turns the exception into an error, not a panic")
	assert.Equal(t, "validation", ErrorCode(err))
}

func TestJSONRoundTrip(t *testing.T) {
	v, err := ValueFromJSON([]byte(`{"a":[1,2]}`))
	require.NoError(t, err)
	b, err := JSON(v)
	require.NoError(t, err)
	assert.JSONEq(t, `{"a":[1,2]}`, string(b))
	u, err := Uint32s([]uint32{1, 1 << 31})
	require.NoError(t, err)
	n, _ := u.Length()
	assert.Equal(t, 2, n)
}
