package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Writer builds a GGUF v3 file: set metadata, add tensors, then WriteTo.
// Tests and tools use it to make fixture models. It holds tensor data in
// memory until WriteTo.
type Writer struct {
	Alignment int64 // 0 means DefaultAlignment
	kvs       []KV
	keys      map[string]int
	tensors   []writerTensor
	names     map[string]bool
}

type writerTensor struct {
	info TensorInfo
	data []byte
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{keys: map[string]int{}, names: map[string]bool{}}
}

// Set sets key to v, replacing an earlier value (order of first Set kept).
func (w *Writer) Set(key string, v Value) {
	if i, ok := w.keys[key]; ok {
		w.kvs[i].Value = v
		return
	}
	w.keys[key] = len(w.kvs)
	w.kvs = append(w.kvs, KV{Key: key, Value: v})
}

// Value constructors for Set.
func String(s string) Value    { return Value{Type: ValueString, Scalar: s} }
func Uint32(v uint32) Value    { return Value{Type: ValueUint32, Scalar: v} }
func Int32(v int32) Value      { return Value{Type: ValueInt32, Scalar: v} }
func Uint64(v uint64) Value    { return Value{Type: ValueUint64, Scalar: v} }
func Float32(v float32) Value  { return Value{Type: ValueFloat32, Scalar: v} }
func Bool(v bool) Value        { return Value{Type: ValueBool, Scalar: v} }
func Strings(v []string) Value { return Value{Type: ValueArray, ArrayType: ValueString, Array: v} }
func Float32s(v []float32) Value {
	return Value{Type: ValueArray, ArrayType: ValueFloat32, Array: v}
}
func Int32s(v []int32) Value { return Value{Type: ValueArray, ArrayType: ValueInt32, Array: v} }

// AddTensor adds a tensor; data must hold exactly its bytes in the type's
// layout. dims are in ggml order (dims[0] is the row length).
func (w *Writer) AddTensor(name string, typ Type, dims []int64, data []byte) error {
	if w.names[name] {
		return fmt.Errorf("gguf: writer: duplicate tensor %s", name)
	}
	if !typ.Known() {
		return fmt.Errorf("gguf: writer: tensor %s: unknown type %d", name, typ)
	}
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	if dims[0]%int64(typ.BlockSize()) != 0 {
		return fmt.Errorf("gguf: writer: tensor %s: row length %d is not a multiple of the %s block size", name, dims[0], typ)
	}
	if want := typ.RowBytes(n); int64(len(data)) != want {
		return fmt.Errorf("gguf: writer: tensor %s: %d bytes of data, want %d", name, len(data), want)
	}
	w.names[name] = true
	w.tensors = append(w.tensors, writerTensor{TensorInfo{Name: name, Dims: append([]int64(nil), dims...), Type: typ, Size: int64(len(data))}, data})
	return nil
}

// WriteTo writes the file.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align := w.Alignment
	if align == 0 {
		align = DefaultAlignment
	}
	if align != DefaultAlignment {
		w.Set("general.alignment", Uint32(uint32(align)))
	}
	cw := &countWriter{w: bufio.NewWriterSize(out, 1<<20)}
	e := encoder{w: cw}
	e.bytes([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		e.value(kv.Value)
	}
	var off int64
	for _, t := range w.tensors {
		e.str(t.info.Name)
		e.u32(uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			e.u64(uint64(d))
		}
		e.u32(uint32(t.info.Type))
		e.u64(uint64(off))
		off += pad(t.info.Size, align)
	}
	e.zeros(pad(cw.n, align) - cw.n)
	for _, t := range w.tensors {
		e.bytes(t.data)
		e.zeros(pad(t.info.Size, align) - t.info.Size)
	}
	if e.err == nil {
		e.err = cw.w.(*bufio.Writer).Flush()
	}
	return cw.n, e.err
}

func pad(n, align int64) int64 { return (n + align - 1) / align * align }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type encoder struct {
	w   io.Writer
	err error
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) zeros(n int64) { e.bytes(make([]byte, n)) }

func (e *encoder) u32(v uint32) { e.bytes(binary.LittleEndian.AppendUint32(nil, v)) }
func (e *encoder) u64(v uint64) { e.bytes(binary.LittleEndian.AppendUint64(nil, v)) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.bytes([]byte(s)) }

func (e *encoder) value(v Value) {
	if v.Type == ValueArray {
		e.u32(uint32(v.ArrayType))
		e.u64(uint64(v.Len()))
		e.array(v)
		return
	}
	e.scalar(v.Type, v.Scalar)
}

func (e *encoder) scalar(t ValueType, x any) {
	le := binary.LittleEndian
	switch t {
	case ValueString:
		e.str(x.(string))
	case ValueUint8:
		e.bytes([]byte{x.(uint8)})
	case ValueInt8:
		e.bytes([]byte{byte(x.(int8))})
	case ValueBool:
		b := byte(0)
		if x.(bool) {
			b = 1
		}
		e.bytes([]byte{b})
	case ValueUint16:
		e.bytes(le.AppendUint16(nil, x.(uint16)))
	case ValueInt16:
		e.bytes(le.AppendUint16(nil, uint16(x.(int16))))
	case ValueUint32:
		e.u32(x.(uint32))
	case ValueInt32:
		e.u32(uint32(x.(int32)))
	case ValueFloat32:
		e.u32(math.Float32bits(x.(float32)))
	case ValueUint64:
		e.u64(x.(uint64))
	case ValueInt64:
		e.u64(uint64(x.(int64)))
	case ValueFloat64:
		e.u64(math.Float64bits(x.(float64)))
	default:
		if e.err == nil {
			e.err = fmt.Errorf("gguf: writer: cannot encode value type %s", t)
		}
	}
}

func (e *encoder) array(v Value) {
	switch a := v.Array.(type) {
	case []Value:
		// Elements of an array of arrays carry no type tag of their own.
		for _, x := range a {
			e.value(x)
		}
	case []string:
		for _, x := range a {
			e.str(x)
		}
	case []uint8:
		e.bytes(a)
	case []int8:
		for _, x := range a {
			e.scalar(ValueInt8, x)
		}
	case []bool:
		for _, x := range a {
			e.scalar(ValueBool, x)
		}
	case []uint16:
		for _, x := range a {
			e.scalar(ValueUint16, x)
		}
	case []int16:
		for _, x := range a {
			e.scalar(ValueInt16, x)
		}
	case []uint32:
		for _, x := range a {
			e.u32(x)
		}
	case []int32:
		for _, x := range a {
			e.u32(uint32(x))
		}
	case []float32:
		for _, x := range a {
			e.u32(math.Float32bits(x))
		}
	case []uint64:
		for _, x := range a {
			e.u64(x)
		}
	case []int64:
		for _, x := range a {
			e.u64(uint64(x))
		}
	case []float64:
		for _, x := range a {
			e.u64(math.Float64bits(x))
		}
	default:
		if e.err == nil {
			e.err = fmt.Errorf("gguf: writer: cannot encode array of %T", v.Array)
		}
	}
}
