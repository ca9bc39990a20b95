// Package gguf reads and writes GGUF files, the model format of llama.cpp
// (spec: ggml/docs/gguf.md in ggml-org/ggml; versions 2 and 3).
//
// In: a stream (the browser's fetch body) or a file. Out: the header, the
// metadata (every value type), the tensor table, and each tensor's bytes by
// offset. Reading the header needs only the stream: tensor data is never held
// whole in memory unless the caller asks for it (ReadTensor on a ReaderAt, or
// StreamTensors over the rest of the stream).
//
// Errors name what was being read and where ("gguf: tensor 3
// (blk.0.attn_q.weight): dimension 1 is 0"), and every malformed input gives
// an error, never a panic (the reader is fuzzed: FuzzRead).
//
// The Writer makes GGUF files for tests and tools.
package gguf

import "fmt"

// Type is a tensor's element type (ggml_type).
type Type uint32

// The ggml types. Numbers are fixed by the format.
const (
	TypeF32     Type = 0
	TypeF16     Type = 1
	TypeQ4_0    Type = 2
	TypeQ4_1    Type = 3
	TypeQ5_0    Type = 6
	TypeQ5_1    Type = 7
	TypeQ8_0    Type = 8
	TypeQ8_1    Type = 9
	TypeQ2_K    Type = 10
	TypeQ3_K    Type = 11
	TypeQ4_K    Type = 12
	TypeQ5_K    Type = 13
	TypeQ6_K    Type = 14
	TypeQ8_K    Type = 15
	TypeIQ2_XXS Type = 16
	TypeIQ2_XS  Type = 17
	TypeIQ3_XXS Type = 18
	TypeIQ1_S   Type = 19
	TypeIQ4_NL  Type = 20
	TypeIQ3_S   Type = 21
	TypeIQ2_S   Type = 22
	TypeIQ4_XS  Type = 23
	TypeI8      Type = 24
	TypeI16     Type = 25
	TypeI32     Type = 26
	TypeI64     Type = 27
	TypeF64     Type = 28
	TypeIQ1_M   Type = 29
	TypeBF16    Type = 30
	TypeTQ1_0   Type = 34
	TypeTQ2_0   Type = 35
	TypeMXFP4   Type = 39
)

// typeInfo is a type's name and block geometry: BlockSize elements are
// stored in BlockBytes bytes.
type typeInfo struct {
	Name       string
	BlockSize  int
	BlockBytes int
}

// types lists every type a GGUF file may hold, with its layout (from
// ggml-common.h's block structs; sizes checked in types_test.go).
var types = map[Type]typeInfo{
	TypeF32:     {"F32", 1, 4},
	TypeF16:     {"F16", 1, 2},
	TypeQ4_0:    {"Q4_0", 32, 2 + 16},
	TypeQ4_1:    {"Q4_1", 32, 2 + 2 + 16},
	TypeQ5_0:    {"Q5_0", 32, 2 + 4 + 16},
	TypeQ5_1:    {"Q5_1", 32, 2 + 2 + 4 + 16},
	TypeQ8_0:    {"Q8_0", 32, 2 + 32},
	TypeQ8_1:    {"Q8_1", 32, 4 + 32},
	TypeQ2_K:    {"Q2_K", 256, 16 + 64 + 2 + 2},
	TypeQ3_K:    {"Q3_K", 256, 32 + 64 + 12 + 2},
	TypeQ4_K:    {"Q4_K", 256, 2 + 2 + 12 + 128},
	TypeQ5_K:    {"Q5_K", 256, 2 + 2 + 12 + 32 + 128},
	TypeQ6_K:    {"Q6_K", 256, 128 + 64 + 16 + 2},
	TypeQ8_K:    {"Q8_K", 256, 4 + 256 + 32},
	TypeIQ2_XXS: {"IQ2_XXS", 256, 2 + 64},
	TypeIQ2_XS:  {"IQ2_XS", 256, 2 + 64 + 8},
	TypeIQ3_XXS: {"IQ3_XXS", 256, 2 + 96},
	TypeIQ1_S:   {"IQ1_S", 256, 2 + 32 + 16},
	TypeIQ4_NL:  {"IQ4_NL", 32, 2 + 16},
	TypeIQ3_S:   {"IQ3_S", 256, 2 + 64 + 8 + 32 + 4},
	TypeIQ2_S:   {"IQ2_S", 256, 2 + 64 + 16},
	TypeIQ4_XS:  {"IQ4_XS", 256, 2 + 2 + 4 + 128},
	TypeI8:      {"I8", 1, 1},
	TypeI16:     {"I16", 1, 2},
	TypeI32:     {"I32", 1, 4},
	TypeI64:     {"I64", 1, 8},
	TypeF64:     {"F64", 1, 8},
	TypeIQ1_M:   {"IQ1_M", 256, 32 + 16 + 8},
	TypeBF16:    {"BF16", 1, 2},
	TypeTQ1_0:   {"TQ1_0", 256, 2 + 4 + 48},
	TypeTQ2_0:   {"TQ2_0", 256, 2 + 64},
	TypeMXFP4:   {"MXFP4", 32, 1 + 16},
}

// Known reports whether t is a type GGUF files may hold.
func (t Type) Known() bool { _, ok := types[t]; return ok }

func (t Type) String() string {
	if ti, ok := types[t]; ok {
		return ti.Name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of elements in one block (1 for plain types).
func (t Type) BlockSize() int { return types[t].BlockSize }

// BlockBytes is the size in bytes of one block.
func (t Type) BlockBytes() int { return types[t].BlockBytes }

// RowBytes is the size in bytes of n elements (n a multiple of BlockSize).
func (t Type) RowBytes(n int64) int64 {
	ti := types[t]
	if ti.BlockSize == 0 {
		return 0
	}
	return n / int64(ti.BlockSize) * int64(ti.BlockBytes)
}

// TypeByName finds a type by its name ("Q4_K"), for tools and flags.
func TypeByName(name string) (Type, bool) {
	for t, ti := range types {
		if ti.Name == name {
			return t, true
		}
	}
	return 0, false
}

// ValueType is a metadata value's type (gguf_type).
type ValueType uint32

// The metadata value types.
const (
	ValueUint8   ValueType = 0
	ValueInt8    ValueType = 1
	ValueUint16  ValueType = 2
	ValueInt16   ValueType = 3
	ValueUint32  ValueType = 4
	ValueInt32   ValueType = 5
	ValueFloat32 ValueType = 6
	ValueBool    ValueType = 7
	ValueString  ValueType = 8
	ValueArray   ValueType = 9
	ValueUint64  ValueType = 10
	ValueInt64   ValueType = 11
	ValueFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (v ValueType) String() string {
	if int(v) < len(valueTypeNames) {
		return valueTypeNames[v]
	}
	return fmt.Sprintf("value-type(%d)", uint32(v))
}

// size is the encoded size of a fixed-size value type, 0 for string/array.
func (v ValueType) size() int {
	switch v {
	case ValueUint8, ValueInt8, ValueBool:
		return 1
	case ValueUint16, ValueInt16:
		return 2
	case ValueUint32, ValueInt32, ValueFloat32:
		return 4
	case ValueUint64, ValueInt64, ValueFloat64:
		return 8
	}
	return 0
}
