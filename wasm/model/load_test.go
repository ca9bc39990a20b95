package model

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/synth"
)

func tinyBytes(t testing.TB) []byte {
	path, err := synth.Cached("tiny", gguf.TypeQ4_K, 1)
	if errors.Is(err, synth.ErrNoVocabularies) {
		t.Skip(err)
	}
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// loadBytes loads a model from memory and, if that works, runs one step:
// bad input must give an error, never a panic.
func loadBytes(data []byte) error {
	f, err := gguf.ReadAt(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	m, err := Load(f, bytes.NewReader(data))
	if err != nil {
		return err
	}
	_, err = m.Forward(m.NewState(4), []int32{1, 2})
	return err
}

// rewrite returns a copy of a model with one metadata value or tensor
// changed, through the writer, so the file stays well formed.
func rewrite(t *testing.T, data []byte, change func(w *gguf.Writer, f *gguf.File)) []byte {
	f, err := gguf.ReadAt(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	w := gguf.NewWriter()
	for _, kv := range f.Metadata {
		w.Set(kv.Key, kv.Value)
	}
	change(w, f)
	for _, ti := range f.Tensors {
		if ti.Name == "blk.0.attn_q.weight" && w.Alignment == 7 { // marker: drop this tensor
			continue
		}
		b, err := f.ReadTensor(bytes.NewReader(data), ti)
		require.NoError(t, err)
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, b); err != nil {
			continue
		}
	}
	if w.Alignment == 7 {
		w.Alignment = 0
	}
	var out bytes.Buffer
	_, err = w.WriteTo(&out)
	require.NoError(t, err)
	return out.Bytes()
}

func TestLoadErrorsNameTheProblem(t *testing.T) {
	good := tinyBytes(t)
	require.NoError(t, loadBytes(good))
	cases := []struct {
		name   string
		change func(w *gguf.Writer, f *gguf.File)
		want   string
	}{
		{"unsupported architecture", func(w *gguf.Writer, _ *gguf.File) { w.Set("general.architecture", gguf.String("mamba")) }, `unsupported architecture "mamba"`},
		{"missing block count", func(w *gguf.Writer, _ *gguf.File) { w.Set("llama.block_count", gguf.String("two")) }, "llama.block_count"},
		{"heads do not divide", func(w *gguf.Writer, _ *gguf.File) { w.Set("llama.attention.head_count_kv", gguf.Uint32(3)) }, "not a multiple of 3"},
		{"more blocks than tensors", func(w *gguf.Writer, _ *gguf.File) { w.Set("llama.block_count", gguf.Uint32(3)) }, "missing tensor blk.2.attn_norm.weight"},
		{"wrong embedding size", func(w *gguf.Writer, _ *gguf.File) { w.Set("llama.embedding_length", gguf.Uint32(512)) }, "token_embd.weight has shape"},
		{"missing tensor", func(w *gguf.Writer, _ *gguf.File) { w.Alignment = 7 }, "missing tensor blk.0.attn_q.weight"},
		{"bad tokenizer", func(w *gguf.Writer, _ *gguf.File) { w.Set("tokenizer.ggml.model", gguf.String("bert")) }, `unsupported tokenizer: model "bert"`},
		{"rope dims too large", func(w *gguf.Writer, _ *gguf.File) { w.Set("llama.rope.dimension_count", gguf.Uint32(1000)) }, "rope dimension count"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := loadBytes(rewrite(t, good, tc.change))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestUnsupportedTensorTypeIsNamed(t *testing.T) {
	good := tinyBytes(t)
	f, err := gguf.ReadAt(bytes.NewReader(good), int64(len(good)))
	require.NoError(t, err)
	w := gguf.NewWriter()
	for _, kv := range f.Metadata {
		w.Set(kv.Key, kv.Value)
	}
	for _, ti := range f.Tensors {
		b, _ := f.ReadTensor(bytes.NewReader(good), ti)
		typ := ti.Type
		if ti.Name == "blk.0.attn_q.weight" {
			typ = gguf.TypeIQ2_XS // same block count and a plausible size
			b = make([]byte, typ.RowBytes(ti.Elements()))
		}
		require.NoError(t, w.AddTensor(ti.Name, typ, ti.Dims, b))
	}
	var out bytes.Buffer
	_, err = w.WriteTo(&out)
	require.NoError(t, err)
	assert.EqualError(t, loadBytes(out.Bytes()), "model: bad model: unsupported tensor type IQ2_XS for blk.0.attn_q.weight")
}

// FuzzLoad mutates a real model file: loading it and running a step must
// return an error or work, never panic.
func FuzzLoad(f *testing.F) {
	good := tinyBytes(f)
	f.Add(good[:4096], uint32(0), byte(0))
	f.Fuzz(func(t *testing.T, head []byte, at uint32, val byte) {
		data := append([]byte(nil), good...)
		copy(data, head)
		if n := len(data); n > 0 {
			data[int(at)%n] = val
		}
		_ = loadBytes(data)
	})
}
