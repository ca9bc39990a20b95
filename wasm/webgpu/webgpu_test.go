package webgpu

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommandListEncoding(t *testing.T) {
	var cl CommandList
	cl.Dispatch(3, 7, 10, 2, 1)
	cl.Copy(Buffer{id: 4}, 8, Buffer{id: 5}, 1<<33, 4096)
	require.Equal(t, 2, cl.Len())
	assert.Equal(t, []uint32{
		opDispatch, 3, 7, 10, 2, 1,
		opCopy, 4, 8, 0, 5, 0, 2, 4096, 0,
	}, cl.Words())

	cl.Reset()
	assert.Equal(t, 0, cl.Len())
	assert.Empty(t, cl.Words())
}

func TestErrorsMatchSentinels(t *testing.T) {
	for code, sentinel := range codes {
		err := error(newError("op", code, "msg"))
		assert.True(t, errors.Is(err, sentinel), code)
		assert.Contains(t, err.Error(), "webgpu: op: "+code)
	}
	unknown := newError("submit", "weird", "boom")
	assert.ErrorIs(t, unknown, ErrInternal)
	assert.Contains(t, unknown.Error(), "weird: boom")
}

func TestFloat32BytesRoundTrip(t *testing.T) {
	f := []float32{1, -2.5, 3e-8}
	assert.Equal(t, f, BytesToFloat32(Float32Bytes(f)))
	assert.Nil(t, Float32Bytes(nil))
}
