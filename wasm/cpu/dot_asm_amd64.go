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
func q8_0RowsAVX2(y *float32, w *byte, x *int8, d *float32, sum *int32, rows, nb int)

//go:noescape
func q4_0RowsAVX2(y *float32, w *byte, x *int8, d *float32, sum *int32, rows, nb int)

// The two-token products (dot_tile_amd64.s): rows of w for the
// activations x0/d0 into y0 and x1/d1 into y1, each bit for bit what the
// one-token kernel gives it.
//
//go:noescape
func q8_0Rows2AVX2(y0, y1 *float32, w *byte, x0, x1 *int8, d0, d1 *float32, sum0, sum1 *int32, rows, nb int)

//go:noescape
func q4_0Rows2AVX2(y0, y1 *float32, w *byte, x0, x1 *int8, d0, d1 *float32, sum0, sum1 *int32, rows, nb int)

//go:noescape
func quantizeQ8AVX2(x *float32, q *int8, amax *float32, sum *int32, nb int)

func init() {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA || !cpu.X86.HasF16C {
		return
	}
	// Not timed like the products: it is one pass over a vector per
	// product (a product is rows passes over a matrix), and exact.
	quantizeQ8Vector = func(x []float32, q []int8, amax []float32, sum []int32) {
		nb := len(x) / 32
		_, _, _ = q[32*nb-1], amax[nb-1], sum[nb-1]
		quantizeQ8AVX2(&x[0], &q[0], &amax[0], &sum[0], nb)
	}
	vectorKernels = append(vectorKernels,
		vectorKernel{typ: gguf.TypeQ8_0, isa: "asm-avx2", rows: asmRows(q8_0RowsAVX2, 34), tile: asmTile(q8_0RowsAVX2, q8_0Rows2AVX2, 34)},
		vectorKernel{typ: gguf.TypeQ4_0, isa: "asm-avx2", rows: asmRows(q4_0RowsAVX2, 18), tile: asmTile(q4_0RowsAVX2, q4_0Rows2AVX2, 18)},
	)
}

// asmRows adapts an assembly kernel over blocks of bb bytes to a
// rowsKernel, checking the bounds the assembly does not.
func asmRows(k func(y *float32, w *byte, x *int8, d *float32, sum *int32, rows, nb int), bb int) rowsKernel {
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
		_, _, _ = a.q8[32*nb-1], a.d8[nb-1], a.sum8[nb-1]
		k(&y[lo], (*byte)(unsafe.Pointer(&w.Data[lo*rb])), &a.q8[0], &a.d8[0], &a.sum8[0], hi-lo, nb)
	}
}

// asmTile adapts a two-token assembly kernel over blocks of bb bytes to a
// tileKernel: tokens in pairs over the rows (the second pair finds the
// rows in cache), a third of three through the one-token kernel.
//
// Why pairs and not fours: a pair's per-block sums fill thirteen of the
// sixteen AVX2 registers; four tokens would spill them.
func asmTile(one func(y *float32, w *byte, x *int8, d *float32, sum *int32, rows, nb int),
	two func(y0, y1 *float32, w *byte, x0, x1 *int8, d0, d1 *float32, sum0, sum1 *int32, rows, nb int), bb int) tileKernel {
	single := asmRows(one, bb)
	return func(ys [4][]float32, w Weight, lo, hi int, as [4]*Activations, n int) {
		nb := w.Cols / 32
		if hi <= lo {
			return
		}
		if nb == 0 {
			for t := range n {
				clear(ys[t][lo:hi])
			}
			return
		}
		rb := bb * nb
		_ = w.Data[hi*rb-1]
		for t := 0; t+1 < n; t += 2 {
			a0, a1 := as[t], as[t+1]
			_, _ = ys[t][hi-1], ys[t+1][hi-1]
			_, _, _ = a0.q8[32*nb-1], a0.d8[nb-1], a0.sum8[nb-1]
			_, _, _ = a1.q8[32*nb-1], a1.d8[nb-1], a1.sum8[nb-1]
			two(&ys[t][lo], &ys[t+1][lo], (*byte)(unsafe.Pointer(&w.Data[lo*rb])),
				&a0.q8[0], &a1.q8[0], &a0.d8[0], &a1.d8[0], &a0.sum8[0], &a1.sum8[0], hi-lo, nb)
		}
		if n%2 == 1 {
			single(ys[n-1], w, lo, hi, as[n-1])
		}
	}
}
