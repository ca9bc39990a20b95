package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sample builds a small file with every value type and three tensors.
func sample(t testing.TB) ([]byte, *Writer) {
	w := NewWriter()
	w.Set("general.architecture", String("llama"))
	w.Set("u8", Value{Type: ValueUint8, Scalar: uint8(7)})
	w.Set("i8", Value{Type: ValueInt8, Scalar: int8(-7)})
	w.Set("u16", Value{Type: ValueUint16, Scalar: uint16(65535)})
	w.Set("i16", Value{Type: ValueInt16, Scalar: int16(-300)})
	w.Set("u32", Uint32(4000000000))
	w.Set("i32", Int32(-5))
	w.Set("f32", Float32(1.5))
	w.Set("bool", Bool(true))
	w.Set("u64", Uint64(1<<40))
	w.Set("i64", Value{Type: ValueInt64, Scalar: int64(-1 << 40)})
	w.Set("f64", Value{Type: ValueFloat64, Scalar: 2.25})
	w.Set("tokens", Strings([]string{"<s>", "</s>", "a", ""}))
	w.Set("scores", Float32s([]float32{0, -1, -2.5, 3}))
	w.Set("types", Int32s([]int32{3, 3, 1, 1}))
	w.Set("nested", Value{Type: ValueArray, ArrayType: ValueArray, Array: []Value{
		{Type: ValueArray, ArrayType: ValueUint8, Array: []uint8{1, 2}},
		{Type: ValueArray, ArrayType: ValueString, Array: []string{"x"}},
	}})
	require.NoError(t, w.AddTensor("a", TypeF32, []int64{3, 2}, make([]byte, 24)))
	q := make([]byte, 34*2)
	for i := range q {
		q[i] = byte(i)
	}
	require.NoError(t, w.AddTensor("b", TypeQ8_0, []int64{64}, q))
	require.NoError(t, w.AddTensor("c", TypeF16, []int64{5}, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}))
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	return buf.Bytes(), w
}

func TestRoundTrip(t *testing.T) {
	data, w := sample(t)
	f, err := ReadAt(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	assert.Equal(t, uint32(3), f.Version)
	require.Len(t, f.Metadata, len(w.kvs))
	for i, kv := range w.kvs {
		assert.Equal(t, kv.Key, f.Metadata[i].Key)
		assert.Equal(t, kv.Value, f.Metadata[i].Value, kv.Key)
	}
	arch, _ := f.Get("general.architecture")
	s, ok := arch.Str()
	assert.True(t, ok)
	assert.Equal(t, "llama", s)
	n, ok := f.Metadata[5].Value.Int()
	assert.True(t, ok)
	assert.Equal(t, int64(4000000000), n)

	require.Len(t, f.Tensors, 3)
	assert.Equal(t, int64(0), f.DataOffset%DefaultAlignment)
	for _, wt := range w.tensors {
		ti, ok := f.Tensor(wt.info.Name)
		require.True(t, ok)
		assert.Equal(t, wt.info.Dims, ti.Dims)
		assert.Equal(t, wt.info.Type, ti.Type)
		assert.Equal(t, int64(0), ti.Offset%DefaultAlignment)
		got, err := f.ReadTensor(bytes.NewReader(data), ti)
		require.NoError(t, err)
		assert.Equal(t, wt.data, got)
	}
}

func TestStreamTensors(t *testing.T) {
	data, w := sample(t)
	f, rest, err := Read(bytes.NewReader(data))
	require.NoError(t, err)
	var seen []string
	require.NoError(t, f.StreamTensors(rest, func(ti TensorInfo, b []byte) error {
		seen = append(seen, ti.Name)
		for _, wt := range w.tensors {
			if wt.info.Name == ti.Name {
				assert.Equal(t, wt.data, b)
			}
		}
		return nil
	}))
	assert.Equal(t, []string{"a", "b", "c"}, seen)

	// A stream cut inside the data section fails while streaming, naming the tensor.
	f, rest, err = Read(bytes.NewReader(data[:len(data)-40]))
	require.NoError(t, err, "the header alone is intact")
	err = f.StreamTensors(rest, func(TensorInfo, []byte) error { return nil })
	assert.ErrorIs(t, err, ErrTruncated)
	assert.ErrorContains(t, err, "tensor c")
}

func TestCustomAlignment(t *testing.T) {
	w := NewWriter()
	w.Alignment = 64
	require.NoError(t, w.AddTensor("x", TypeF32, []int64{1}, make([]byte, 4)))
	require.NoError(t, w.AddTensor("y", TypeF32, []int64{1}, []byte{1, 0, 0, 0}))
	var buf bytes.Buffer
	_, err := w.WriteTo(&buf)
	require.NoError(t, err)
	f, err := ReadAt(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	require.NoError(t, err)
	assert.Equal(t, int64(64), f.Alignment)
	y, _ := f.Tensor("y")
	assert.Equal(t, int64(64), y.Offset)
}

// le helpers build broken files by hand.
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func gstr(s string) []byte { return append(le64(uint64(len(s))), s...) }
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
func header(nTensors, nKV uint64) []byte {
	return cat([]byte("GGUF"), le32(3), le64(nTensors), le64(nKV))
}
func tensor(name string, dims []uint64, typ uint32, off uint64) []byte {
	b := cat(gstr(name), le32(uint32(len(dims))))
	for _, d := range dims {
		b = append(b, le64(d)...)
	}
	return cat(b, le32(typ), le64(off))
}

// TestBrokenFiles is a table of hand-made broken files, one named case per
// failure, each with the error it must give (after llama.cpp's
// tests/test-gguf.cpp, which does the same for its reader).
func TestBrokenFiles(t *testing.T) {
	good, _ := sample(t)
	padTo := func(b []byte, n int) []byte { return append(b, make([]byte, n-len(b))...) }
	cases := []struct {
		name string
		data []byte
		is   error
		text string
	}{
		{"empty", nil, ErrTruncated, "magic"},
		{"bad magic", cat([]byte("GGML"), le32(3)), ErrBadMagic, "magic"},
		{"version 1", cat([]byte("GGUF"), le32(1), le64(0), le64(0)), ErrVersion, "version 1"},
		{"version 4", cat([]byte("GGUF"), le32(4), le64(0), le64(0)), ErrVersion, "version 4"},
		{"truncated counts", cat([]byte("GGUF"), le32(3), le64(0)), ErrTruncated, "metadata count"},
		{"absurd tensor count", header(1<<40, 0), ErrCorrupt, "tensor count"},
		{"absurd kv count", header(0, 1<<40), ErrCorrupt, "metadata count"},
		{"truncated key", cat(header(0, 1), le64(100), []byte("ab")), ErrTruncated, "metadata key 0"},
		{"absurd string length", cat(header(0, 1), le64(1<<40)), ErrCorrupt, "string of"},
		{"unknown value type", cat(header(0, 1), gstr("k"), le32(99)), ErrCorrupt, "unknown value type 99"},
		{"duplicate key", cat(header(0, 2), gstr("k"), le32(4), le32(1), gstr("k"), le32(4), le32(2)), ErrCorrupt, `metadata "k"`},
		{"bad bool", cat(header(0, 1), gstr("b"), le32(7), []byte{2}), ErrCorrupt, "bool value 2"},
		{"absurd array", cat(header(0, 1), gstr("a"), le32(9), le32(4), le64(1<<40)), ErrCorrupt, "array of"},
		{"array longer than file", cat(header(0, 1), gstr("a"), le32(9), le32(4), le64(1000), le32(1)), ErrTruncated, `metadata "a"`},
		{"string array longer than file", cat(header(0, 1), gstr("a"), le32(9), le32(8), le64(1000), gstr("x")), ErrTruncated, `metadata "a"`},
		{"arrays nested too deep", cat(header(0, 1), gstr("a"), le32(9), le32(9), le64(1), le32(9), le64(1), le32(9), le64(1), le32(9), le64(1), le32(9), le64(1)), ErrCorrupt, "nested"},
		{"alignment not a power of two", cat(header(0, 1), gstr("general.alignment"), le32(4), le32(48)), ErrCorrupt, "general.alignment"},
		{"alignment not an integer", cat(header(0, 1), gstr("general.alignment"), le32(8), gstr("x")), ErrCorrupt, "general.alignment"},
		{"zero dimensions", cat(header(1, 0), gstr("t"), le32(0)), ErrCorrupt, "tensor 0"},
		{"five dimensions", cat(header(1, 0), tensor("t", []uint64{1, 1, 1, 1, 1}, 0, 0)), ErrCorrupt, "5 dimensions"},
		{"zero-length dimension", cat(header(1, 0), tensor("t", []uint64{4, 0}, 0, 0)), ErrCorrupt, "dimension 1 is 0"},
		{"overflowing element count", cat(header(1, 0), tensor("t", []uint64{1 << 30, 1 << 30, 1 << 30}, 0, 0)), ErrCorrupt, "absurd"},
		{"unknown tensor type", cat(header(1, 0), tensor("blk.0.attn_q.weight", []uint64{32}, 99, 0)), ErrUnknownType, "tensor 0 (blk.0.attn_q.weight)"},
		{"row not a whole block", cat(header(1, 0), tensor("t", []uint64{33}, uint32(TypeQ4_0), 0)), ErrCorrupt, "not a multiple of the Q4_0 block size"},
		{"misaligned offset", cat(header(1, 0), tensor("t", []uint64{4}, 0, 8)), ErrCorrupt, "not a multiple of the alignment"},
		{"duplicate tensor", cat(header(2, 0), tensor("t", []uint64{4}, 0, 0), tensor("t", []uint64{4}, 0, 32)), ErrCorrupt, "duplicate tensor"},
		{"overlapping tensors", padTo(cat(header(2, 0), tensor("t", []uint64{16}, 0, 0), tensor("u", []uint64{16}, 0, 32)), 256), ErrCorrupt, "overlaps tensor t"},
		{"data past the end", padTo(cat(header(1, 0), tensor("big", []uint64{1024}, 0, 0)), 128), ErrTruncated, "data ends at byte"},
		{"truncated tensor table", good[:200], ErrTruncated, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadAt(bytes.NewReader(tc.data), int64(len(tc.data)))
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.is)
			assert.Contains(t, err.Error(), tc.text)
			assert.Contains(t, err.Error(), "gguf: ")
			var ge *Error
			assert.True(t, errors.As(err, &ge))
		})
	}
}

func TestEveryTruncationFails(t *testing.T) {
	data, _ := sample(t)
	f, err := ReadAt(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	for n := 0; n < len(data); n++ {
		_, err := ReadAt(bytes.NewReader(data[:n]), int64(n))
		if n >= int(f.DataOffset+f.DataSize()) {
			assert.NoError(t, err, "cut at %d keeps every tensor", n)
			continue
		}
		if !assert.Error(t, err, "cut at %d", n) {
			return
		}
	}
}

func TestOpen(t *testing.T) {
	data, _ := sample(t)
	path := filepath.Join(t.TempDir(), "m.gguf")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	f, fh, err := Open(path)
	require.NoError(t, err)
	defer fh.Close()
	b, _ := f.Tensor("b")
	got, err := f.ReadTensor(fh, b)
	require.NoError(t, err)
	assert.Len(t, got, 68)
	_, _, err = Open(filepath.Join(t.TempDir(), "missing.gguf"))
	assert.Error(t, err)
}

func TestWriterRejectsBadTensors(t *testing.T) {
	w := NewWriter()
	assert.ErrorContains(t, w.AddTensor("x", TypeQ4_0, []int64{31}, make([]byte, 18)), "block size")
	assert.ErrorContains(t, w.AddTensor("x", TypeF32, []int64{2}, make([]byte, 4)), "want 8")
	assert.ErrorContains(t, w.AddTensor("x", Type(99), []int64{2}, nil), "unknown type")
	require.NoError(t, w.AddTensor("x", TypeF32, []int64{1}, make([]byte, 4)))
	assert.ErrorContains(t, w.AddTensor("x", TypeF32, []int64{1}, make([]byte, 4)), "duplicate")
}

func TestTypeTable(t *testing.T) {
	assert.Equal(t, 34, TypeQ8_0.BlockBytes())
	assert.Equal(t, 144, TypeQ4_K.BlockBytes())
	assert.Equal(t, 210, TypeQ6_K.BlockBytes())
	assert.Equal(t, int64(18*2), TypeQ4_0.RowBytes(64))
	assert.Equal(t, "IQ2_XS", TypeIQ2_XS.String())
	assert.Equal(t, "type(77)", Type(77).String())
	q, ok := TypeByName("Q5_K")
	assert.True(t, ok)
	assert.Equal(t, TypeQ5_K, q)
}

// FuzzRead feeds arbitrary bytes to both readers: they must return a File
// or an error, never panic, hang or allocate without bound.
func FuzzRead(f *testing.F) {
	good, _ := sample(f)
	f.Add(good)
	f.Add(good[:100])
	f.Add(cat(header(1, 1), gstr("general.alignment"), le32(4), le32(64), tensor("t", []uint64{32}, 2, 0)))
	f.Add([]byte("GGUF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if file, err := ReadAt(bytes.NewReader(data), int64(len(data))); err == nil {
			for _, ti := range file.Tensors {
				if _, err := file.ReadTensor(bytes.NewReader(data), ti); err != nil {
					t.Fatalf("ReadAt accepted tensor %s whose data cannot be read: %v", ti.Name, err)
				}
			}
		}
		if file, rest, err := Read(bytes.NewReader(data)); err == nil {
			_ = file.StreamTensors(rest, func(TensorInfo, []byte) error { return nil })
		} else {
			_ = io.Discard
		}
	})
}
