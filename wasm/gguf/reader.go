package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"sort"
	"strings"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment applies when general.alignment is absent.
const DefaultAlignment = 32

// Limits on what a header may claim. They are far above any real model
// (a 405B model has about 1,100 tensors and a 256k-token vocabulary) and
// stop a corrupt or hostile header from making the reader allocate or loop
// without bound.
const (
	maxTensors    = 1 << 20
	maxKVs        = 1 << 20
	maxStringLen  = 1 << 26 // 64 MiB
	maxArrayLen   = 1 << 28
	maxArrayDepth = 4
	maxDims       = 4 // GGML_MAX_DIMS
	maxElements   = 1 << 50
)

// TensorInfo is one entry of the tensor table.
type TensorInfo struct {
	Name   string
	Dims   []int64 // ggml order: Dims[0] is the row length (contiguous)
	Type   Type
	Offset int64 // from the start of the data section
	Size   int64 // bytes of data
}

// Elements is the number of elements.
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// File is a GGUF file's header: everything but the tensor data.
type File struct {
	Version    uint32
	Metadata   []KV // in file order
	Tensors    []TensorInfo
	Alignment  int64
	DataOffset int64 // absolute offset of the data section
	byKey      map[string]int
	byName     map[string]int
}

// Get returns the metadata value for key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.byKey[key]
	if !ok {
		return Value{}, false
	}
	return f.Metadata[i].Value, true
}

// Tensor returns the tensor called name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// DataSize is the size of the data section: the end of its last tensor.
func (f *File) DataSize() int64 {
	var end int64
	for _, t := range f.Tensors {
		end = max(end, t.Offset+t.Size)
	}
	return end
}

// Error is a malformed-file error: what was being read, at which byte.
type Error struct {
	Offset int64  // byte offset in the file where the problem was found
	What   string // what was being read
	Err    error
}

func (e *Error) Error() string {
	// The cause's own "gguf: " prefix is said once.
	return fmt.Sprintf("gguf: %s (at byte %d): %s", e.What, e.Offset, strings.TrimPrefix(e.Err.Error(), "gguf: "))
}

func (e *Error) Unwrap() error { return e.Err }

// Sentinel causes, for errors.Is.
var (
	ErrBadMagic    = errors.New("gguf: not a GGUF file (bad magic)")
	ErrVersion     = errors.New("gguf: unsupported GGUF version")
	ErrTruncated   = errors.New("gguf: file is truncated")
	ErrCorrupt     = errors.New("gguf: file is corrupt")
	ErrUnknownType = errors.New("gguf: unknown tensor type")
)

// decoder reads little-endian values and counts bytes.
type decoder struct {
	r    *bufio.Reader
	pos  int64
	size int64 // total bytes, or -1 when unknown (a stream)
	buf  [8]byte
}

func (d *decoder) read(p []byte) error {
	n, err := io.ReadFull(d.r, p)
	d.pos += int64(n)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return err
}

func (d *decoder) u32() (uint32, error) {
	err := d.read(d.buf[:4])
	return binary.LittleEndian.Uint32(d.buf[:4]), err
}

func (d *decoder) u64() (uint64, error) {
	err := d.read(d.buf[:8])
	return binary.LittleEndian.Uint64(d.buf[:8]), err
}

// remaining is how many bytes may still come, or MaxInt64 for a stream.
func (d *decoder) remaining() int64 {
	if d.size < 0 {
		return math.MaxInt64
	}
	return d.size - d.pos
}

// readN reads n bytes, growing its buffer as data arrives, so that a header
// claiming a huge length costs no more memory than the bytes really there.
func (d *decoder) readN(n uint64) ([]byte, error) {
	if n > uint64(d.remaining()) {
		return nil, ErrTruncated
	}
	const chunk = 1 << 20
	out := make([]byte, 0, min(n, chunk))
	for uint64(len(out)) < n {
		k := min(n-uint64(len(out)), chunk)
		start := len(out)
		out = append(out, make([]byte, k)...)
		if err := d.read(out[start:]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (d *decoder) str() (string, error) {
	n, err := d.u64()
	if err != nil {
		return "", err
	}
	if n > maxStringLen {
		return "", fmt.Errorf("%w: string of %d bytes", ErrCorrupt, n)
	}
	b, err := d.readN(n)
	return string(b), err
}

// Read parses a GGUF header from a stream and returns it with a reader
// positioned at the start of the data section (the header is read through a
// buffer, so go on from rest, not from r), for StreamTensors.
func Read(r io.Reader) (f *File, rest io.Reader, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	f, err = read(br, -1)
	return f, br, err
}

// ReadAt parses a GGUF header from a file of known size; besides what Read
// checks, every tensor's data must lie inside the file.
func ReadAt(ra io.ReaderAt, size int64) (*File, error) {
	return read(bufio.NewReaderSize(io.NewSectionReader(ra, 0, size), 64<<10), size)
}

// Open parses the header of the GGUF file at path and returns it with the
// open file, for ReadTensor. Close the file when done.
func Open(path string) (*File, *os.File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, nil, err
	}
	f, err := ReadAt(fh, st.Size())
	if err != nil {
		fh.Close()
		return nil, nil, err
	}
	return f, fh, nil
}

func read(r *bufio.Reader, size int64) (*File, error) {
	d := &decoder{r: r, size: size}
	fail := func(what string, err error) error {
		return &Error{Offset: d.pos, What: what, Err: err}
	}

	var magic [4]byte
	if err := d.read(magic[:]); err != nil {
		return nil, fail("magic", err)
	}
	if string(magic[:]) != Magic {
		return nil, fail("magic", fmt.Errorf("%w: %q", ErrBadMagic, magic[:]))
	}
	f := &File{byKey: map[string]int{}, byName: map[string]int{}, Alignment: DefaultAlignment}
	var err error
	if f.Version, err = d.u32(); err != nil {
		return nil, fail("version", err)
	}
	if f.Version != 2 && f.Version != 3 {
		return nil, fail("version", fmt.Errorf("%w %d (want 2 or 3)", ErrVersion, f.Version))
	}
	nTensors, err := d.u64()
	if err != nil {
		return nil, fail("tensor count", err)
	}
	if nTensors > maxTensors {
		return nil, fail("tensor count", fmt.Errorf("%w: %d tensors", ErrCorrupt, nTensors))
	}
	nKV, err := d.u64()
	if err != nil {
		return nil, fail("metadata count", err)
	}
	if nKV > maxKVs {
		return nil, fail("metadata count", fmt.Errorf("%w: %d entries", ErrCorrupt, nKV))
	}

	for i := uint64(0); i < nKV; i++ {
		key, err := d.str()
		if err != nil {
			return nil, fail(fmt.Sprintf("metadata key %d", i), err)
		}
		what := fmt.Sprintf("metadata %q", key)
		if _, dup := f.byKey[key]; dup {
			return nil, fail(what, fmt.Errorf("%w: duplicate key", ErrCorrupt))
		}
		vt, err := d.u32()
		if err != nil {
			return nil, fail(what, err)
		}
		v, err := d.value(ValueType(vt), 0)
		if err != nil {
			return nil, fail(what, err)
		}
		f.byKey[key] = len(f.Metadata)
		f.Metadata = append(f.Metadata, KV{Key: key, Value: v})
	}
	if v, ok := f.Get("general.alignment"); ok {
		a, isInt := v.Int()
		if !isInt || a <= 0 || a&(a-1) != 0 || a > 1<<20 {
			return nil, fail("general.alignment", fmt.Errorf("%w: alignment %v is not a power of two", ErrCorrupt, v))
		}
		f.Alignment = a
	}

	for i := uint64(0); i < nTensors; i++ {
		t, err := d.tensorInfo()
		what := fmt.Sprintf("tensor %d", i)
		if t.Name != "" {
			what += fmt.Sprintf(" (%s)", t.Name)
		}
		if err != nil {
			return nil, fail(what, err)
		}
		if _, dup := f.byName[t.Name]; dup {
			return nil, fail(what, fmt.Errorf("%w: duplicate tensor name", ErrCorrupt))
		}
		if t.Offset%f.Alignment != 0 {
			return nil, fail(what, fmt.Errorf("%w: data offset %d is not a multiple of the alignment %d", ErrCorrupt, t.Offset, f.Alignment))
		}
		f.byName[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	// The data section starts at the next multiple of the alignment.
	pad := (f.Alignment - d.pos%f.Alignment) % f.Alignment
	if _, err := d.readN(uint64(pad)); err != nil && nTensors > 0 {
		return nil, fail("padding before tensor data", err)
	}
	f.DataOffset = d.pos
	if err := f.checkData(size); err != nil {
		return nil, err
	}
	return f, nil
}

func (d *decoder) tensorInfo() (TensorInfo, error) {
	var t TensorInfo
	var err error
	if t.Name, err = d.str(); err != nil {
		return t, err
	}
	nd, err := d.u32()
	if err != nil {
		return t, err
	}
	if nd == 0 || nd > maxDims {
		return t, fmt.Errorf("%w: %d dimensions (want 1 to %d)", ErrCorrupt, nd, maxDims)
	}
	t.Dims = make([]int64, nd)
	elems := uint64(1)
	for j := range t.Dims {
		v, err := d.u64()
		if err != nil {
			return t, err
		}
		if v == 0 || v > maxElements {
			return t, fmt.Errorf("%w: dimension %d is %d", ErrCorrupt, j, v)
		}
		hi, lo := bits.Mul64(elems, v)
		if hi != 0 || lo > maxElements {
			return t, fmt.Errorf("%w: %v elements is absurd", ErrCorrupt, t.Dims)
		}
		elems = lo
		t.Dims[j] = int64(v)
	}
	typ, err := d.u32()
	if err != nil {
		return t, err
	}
	t.Type = Type(typ)
	if !t.Type.Known() {
		return t, fmt.Errorf("%w %d", ErrUnknownType, typ)
	}
	if bs := int64(t.Type.BlockSize()); t.Dims[0]%bs != 0 {
		return t, fmt.Errorf("%w: row length %d is not a multiple of the %s block size %d", ErrCorrupt, t.Dims[0], t.Type, bs)
	}
	t.Size = t.Type.RowBytes(int64(elems))
	off, err := d.u64()
	if err != nil {
		return t, err
	}
	if off > maxElements {
		return t, fmt.Errorf("%w: data offset %d", ErrCorrupt, off)
	}
	t.Offset = int64(off)
	return t, nil
}

// value reads one metadata value of type vt.
func (d *decoder) value(vt ValueType, depth int) (Value, error) {
	v := Value{Type: vt}
	var err error
	switch vt {
	case ValueString:
		v.Scalar, err = d.str()
		return v, err
	case ValueArray:
		if depth >= maxArrayDepth {
			return v, fmt.Errorf("%w: arrays nested %d deep", ErrCorrupt, depth+1)
		}
		et, err := d.u32()
		if err != nil {
			return v, err
		}
		v.ArrayType = ValueType(et)
		n, err := d.u64()
		if err != nil {
			return v, err
		}
		if n > maxArrayLen {
			return v, fmt.Errorf("%w: array of %d elements", ErrCorrupt, n)
		}
		v.Array, err = d.array(v.ArrayType, n, depth)
		return v, err
	}
	sz := vt.size()
	if sz == 0 {
		return v, fmt.Errorf("%w: unknown value type %d", ErrCorrupt, uint32(vt))
	}
	if err := d.read(d.buf[:sz]); err != nil {
		return v, err
	}
	v.Scalar = decodeScalar(vt, d.buf[:sz])
	if vt == ValueBool {
		if b := d.buf[0]; b > 1 {
			return v, fmt.Errorf("%w: bool value %d", ErrCorrupt, b)
		}
	}
	return v, nil
}

func decodeScalar(vt ValueType, b []byte) any {
	le := binary.LittleEndian
	switch vt {
	case ValueUint8:
		return b[0]
	case ValueInt8:
		return int8(b[0])
	case ValueBool:
		return b[0] != 0
	case ValueUint16:
		return le.Uint16(b)
	case ValueInt16:
		return int16(le.Uint16(b))
	case ValueUint32:
		return le.Uint32(b)
	case ValueInt32:
		return int32(le.Uint32(b))
	case ValueFloat32:
		return math.Float32frombits(le.Uint32(b))
	case ValueUint64:
		return le.Uint64(b)
	case ValueInt64:
		return int64(le.Uint64(b))
	case ValueFloat64:
		return math.Float64frombits(le.Uint64(b))
	}
	return nil
}

// array reads n elements of type et.
func (d *decoder) array(et ValueType, n uint64, depth int) (any, error) {
	switch et {
	case ValueString:
		// Each string is at least 8 bytes (its length): bound n by what is left.
		if n > uint64(d.remaining())/8 {
			return nil, ErrTruncated
		}
		out := make([]string, 0, min(n, 1<<16))
		for i := uint64(0); i < n; i++ {
			s, err := d.str()
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out = append(out, s)
		}
		return out, nil
	case ValueArray:
		if n > uint64(d.remaining())/12 {
			return nil, ErrTruncated
		}
		out := make([]Value, 0, min(n, 1<<10))
		for i := uint64(0); i < n; i++ {
			v, err := d.value(ValueArray, depth+1)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out = append(out, v)
		}
		return out, nil
	}
	sz := et.size()
	if sz == 0 {
		return nil, fmt.Errorf("%w: unknown array element type %d", ErrCorrupt, uint32(et))
	}
	raw, err := d.readN(n * uint64(sz))
	if err != nil {
		return nil, err
	}
	return decodeArray(et, raw, int(n))
}

func decodeArray(et ValueType, raw []byte, n int) (any, error) {
	le := binary.LittleEndian
	switch et {
	case ValueUint8:
		return raw, nil
	case ValueInt8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(raw[i])
		}
		return out, nil
	case ValueBool:
		out := make([]bool, n)
		for i := range out {
			if raw[i] > 1 {
				return nil, fmt.Errorf("%w: bool value %d at element %d", ErrCorrupt, raw[i], i)
			}
			out[i] = raw[i] != 0
		}
		return out, nil
	case ValueUint16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le.Uint16(raw[2*i:])
		}
		return out, nil
	case ValueInt16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le.Uint16(raw[2*i:]))
		}
		return out, nil
	case ValueUint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(raw[4*i:])
		}
		return out, nil
	case ValueInt32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case ValueFloat32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case ValueUint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le.Uint64(raw[8*i:])
		}
		return out, nil
	case ValueInt64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
		return out, nil
	case ValueFloat64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unknown array element type %d", ErrCorrupt, uint32(et))
}

// checkData checks that tensor data ranges do not overlap and, when the
// file size is known, that they lie inside the file.
func (f *File) checkData(size int64) error {
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	var prevEnd int64
	prev := ""
	for _, i := range order {
		t := f.Tensors[i]
		if t.Offset < prevEnd {
			return &Error{Offset: f.DataOffset + t.Offset, What: "tensor " + t.Name,
				Err: fmt.Errorf("%w: data overlaps tensor %s", ErrCorrupt, prev)}
		}
		end := f.DataOffset + t.Offset + t.Size
		if size >= 0 && end > size {
			return &Error{Offset: size, What: "tensor " + t.Name,
				Err: fmt.Errorf("%w: data ends at byte %d of %d", ErrTruncated, end, size)}
		}
		prevEnd, prev = t.Offset+t.Size, t.Name
	}
	return nil
}

// ReadTensor reads a tensor's data from the file the header came from.
func (f *File) ReadTensor(ra io.ReaderAt, t TensorInfo) ([]byte, error) {
	buf := make([]byte, t.Size)
	n, err := ra.ReadAt(buf, f.DataOffset+t.Offset)
	if n == len(buf) {
		return buf, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = ErrTruncated
	}
	return nil, &Error{Offset: f.DataOffset + t.Offset + int64(n), What: "tensor " + t.Name + " data", Err: err}
}

// StreamTensors reads the data section from r, which must be positioned
// just after the header (where Read left it), calling fn for each tensor in
// file order. Each tensor's bytes are valid only during its call, so at most
// one tensor is held in memory at a time.
func (f *File) StreamTensors(r io.Reader, fn func(t TensorInfo, data []byte) error) error {
	order := make([]TensorInfo, len(f.Tensors))
	copy(order, f.Tensors)
	sort.Slice(order, func(a, b int) bool { return order[a].Offset < order[b].Offset })
	var pos int64
	var buf []byte
	for _, t := range order {
		if skip := t.Offset - pos; skip > 0 {
			if _, err := io.CopyN(io.Discard, r, skip); err != nil {
				return &Error{Offset: f.DataOffset + pos, What: "padding before tensor " + t.Name, Err: ErrTruncated}
			}
		}
		if int64(cap(buf)) < t.Size {
			buf = make([]byte, t.Size)
		}
		data := buf[:t.Size]
		if _, err := io.ReadFull(r, data); err != nil {
			return &Error{Offset: f.DataOffset + t.Offset, What: "tensor " + t.Name + " data", Err: ErrTruncated}
		}
		if err := fn(t, data); err != nil {
			return err
		}
		pos = t.Offset + t.Size
	}
	return nil
}
