package gguf

import (
	"fmt"
	"math"
)

// Value is one metadata value. Arrays hold their elements in Array (of
// ArrayType); every other type holds its value in a Go type of the same
// width: uint8, int8, uint16, ..., float64, bool, string.
type Value struct {
	Type      ValueType
	ArrayType ValueType // element type, for arrays
	Scalar    any       // for non-arrays
	Array     any       // for arrays: []uint8, []int8, ..., []string (nested arrays: []Value)
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// String renders a value for people; long arrays are elided.
func (v Value) String() string {
	if v.Type != ValueArray {
		return fmt.Sprint(v.Scalar)
	}
	n := v.Len()
	if n > 8 {
		return fmt.Sprintf("[%d × %s]", n, v.ArrayType)
	}
	return fmt.Sprint(v.Array)
}

// Len is the number of elements of an array value (0 for scalars).
func (v Value) Len() int {
	switch a := v.Array.(type) {
	case []uint8:
		return len(a)
	case []int8:
		return len(a)
	case []uint16:
		return len(a)
	case []int16:
		return len(a)
	case []uint32:
		return len(a)
	case []int32:
		return len(a)
	case []float32:
		return len(a)
	case []bool:
		return len(a)
	case []string:
		return len(a)
	case []uint64:
		return len(a)
	case []int64:
		return len(a)
	case []float64:
		return len(a)
	case []Value:
		return len(a)
	}
	return 0
}

// Int returns an integer scalar (any width, signed or not) as int64.
func (v Value) Int() (int64, bool) {
	switch x := v.Scalar.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// Float returns a numeric scalar as float64.
func (v Value) Float() (float64, bool) {
	switch x := v.Scalar.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if i, ok := v.Int(); ok {
		return float64(i), true
	}
	return 0, false
}

// Str returns a string scalar.
func (v Value) Str() (string, bool) {
	s, ok := v.Scalar.(string)
	return s, ok
}

// Bool returns a bool scalar.
func (v Value) Bool() (bool, bool) {
	b, ok := v.Scalar.(bool)
	return b, ok
}

// Strings returns an array of strings.
func (v Value) Strings() ([]string, bool) {
	s, ok := v.Array.([]string)
	return s, ok
}

// Float32s returns an array of float32 (e.g. tokenizer scores).
func (v Value) Float32s() ([]float32, bool) {
	s, ok := v.Array.([]float32)
	return s, ok
}

// Ints returns an integer array of any width as []int64.
func (v Value) Ints() ([]int64, bool) {
	var out []int64
	switch a := v.Array.(type) {
	case []int32:
		out = make([]int64, len(a))
		for i, x := range a {
			out[i] = int64(x)
		}
	case []uint32:
		out = make([]int64, len(a))
		for i, x := range a {
			out[i] = int64(x)
		}
	case []int8:
		out = make([]int64, len(a))
		for i, x := range a {
			out[i] = int64(x)
		}
	case []uint8:
		out = make([]int64, len(a))
		for i, x := range a {
			out[i] = int64(x)
		}
	case []int16:
		out = make([]int64, len(a))
		for i, x := range a {
			out[i] = int64(x)
		}
	case []uint16:
		out = make([]int64, len(a))
		for i, x := range a {
			out[i] = int64(x)
		}
	case []int64:
		out = append(out, a...)
	case []uint64:
		out = make([]int64, len(a))
		for i, x := range a {
			out[i] = int64(x)
		}
	default:
		return nil, false
	}
	return out, true
}

// JSON returns the value as plain Go data for encoding/json (arrays of more
// than maxArray elements are summarised as {"type","len"}).
func (v Value) JSON(maxArray int) any {
	if v.Type != ValueArray {
		if f, ok := v.Scalar.(float32); ok {
			return float64(f)
		}
		return v.Scalar
	}
	if n := v.Len(); n > maxArray {
		return map[string]any{"type": "array[" + v.ArrayType.String() + "]", "len": n}
	}
	if vals, ok := v.Array.([]Value); ok {
		out := make([]any, len(vals))
		for i, x := range vals {
			out[i] = x.JSON(maxArray)
		}
		return out
	}
	return v.Array
}
