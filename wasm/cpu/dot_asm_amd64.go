//go:build amd64

package cpu

import (
	"unsafe"

	"github.com/webinfer/webinfer/wasm/gguf"
	"golang.org/x/sys/cpu"
)

// Assembly kernels for the two types that carry decode (Q8_0, Q4_0), in
// every amd64 build, registered beside the simd/archsimd ones and timed
// against them at start-up like every vector kernel. Why assembly where
// the rest is Go: the compiler's register allocation spills loop counters
// and addresses inside archsimd loops and has no F16C, so the same
// instruction recipe ran at about half its speed in Go; here each block
// is 13–17 instructions with no spills, as in llama.cpp's AVX2 code.

//go:noescape
func q8_0RowsAVX2(y *float32, w *byte, x *int8, d *float32, rows, nb int)

//go:noescape
func q4_0RowsAVX2(y *float32, w *byte, x *int8, d *float32, rows, nb int)

func init() {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA || !cpu.X86.HasF16C {
		return
	}
	vectorKernels = append(vectorKernels,
		vectorKernel{gguf.TypeQ8_0, "asm-avx2", asmRows(q8_0RowsAVX2, 34)},
		vectorKernel{gguf.TypeQ4_0, "asm-avx2", asmRows(q4_0RowsAVX2, 18)},
	)
}

// asmRows adapts an assembly kernel over blocks of bb bytes to a
// rowsKernel, checking the bounds the assembly does not.
func asmRows(k func(y *float32, w *byte, x *int8, d *float32, rows, nb int), bb int) rowsKernel {
	return func(y []float32, w Weight, lo, hi int, a *Activations) {
		nb := w.Cols / 32
		if hi <= lo {
			return
		}
		if nb == 0 {
			clear(y[lo:hi])
			return
		}
		rb := bb * nb
		_ = y[hi-1]
		_ = w.Data[hi*rb-1]
		_, _ = a.q8[32*nb-1], a.d8[nb-1]
		k(&y[lo], (*byte)(unsafe.Pointer(&w.Data[lo*rb])), &a.q8[0], &a.d8[0], hi-lo, nb)
	}
}
