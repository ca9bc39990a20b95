package jsutil

import "unsafe"

// uint32Bytes views words as their little-endian bytes without copying
// (WASM and every platform we build for are little-endian).
func uint32Bytes(words []uint32) []byte {
	if len(words) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*4)
}
