package model

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r *bytes.Reader
	n int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.n += int64(len(p))
	return c.r.ReadAt(p, off)
}

// A lazily loaded model reads none of its 2-D weights until asked; its
// rows read from the file equal the eager load's, and once materialized it
// computes the same logits.
func TestLoadLazy(t *testing.T) {
	data := tinyBytes(t)
	f, err := gguf.ReadAt(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	eager, err := Load(f, bytes.NewReader(data))
	require.NoError(t, err)
	src := &countingReader{r: bytes.NewReader(data)}
	lazy, err := LoadLazy(f, src)
	require.NoError(t, err)
	assert.True(t, lazy.Lazy())
	assert.Less(t, src.n, int64(len(data))/10, "only the small tensors are read")
	assert.Nil(t, lazy.Layers[0].Wq.Data)
	rows, err := lazy.Layers[1].Wup.ReadRows(3, 5)
	require.NoError(t, err)
	want, err := eager.Layers[1].Wup.ReadRows(3, 5)
	require.NoError(t, err)
	assert.Equal(t, want, rows)
	_, err = lazy.Layers[1].Wup.ReadRows(lazy.Layers[1].Wup.Rows-1, 2)
	assert.Error(t, err, "past the last row")

	require.NoError(t, lazy.Materialize())
	assert.False(t, lazy.Lazy())
	a, err := eager.Forward(eager.NewState(8), []int32{1, 2, 3})
	require.NoError(t, err)
	b, err := lazy.Forward(lazy.NewState(8), []int32{1, 2, 3})
	require.NoError(t, err)
	assert.Equal(t, a, b)
}
