//go:build goexperiment.simd && amd64

package cpu

import (
	"simd/archsimd"
	"unsafe"
)

// AVX2 kernels for the hot types of decode (Q8_0, Q4_0), built with
// GOEXPERIMENT=simd (Go's experimental simd/archsimd) and chosen at run
// time when the CPU has AVX2. They compute the same integer block sums as
// the portable code (exactly), then scale and add them in 8 float32 lanes,
// so only the order of the float additions differs.

var haveAVX2 = archsimd.X86.AVX2()

// SIMD reports which vector kernels this build uses, for benchmarks.
func SIMD() string {
	if haveAVX2 {
		return "avx2"
	}
	return "none"
}

var ones16 = archsimd.BroadcastInt16x16(1)

// dotI8 is Σ x[i]·y[i] over 32 signed bytes, in 8 int32 lanes: |x|·sign(y,x)
// with VPMADDUBSW, then pairs of int16 to int32 with VPMADDWD (llama.cpp's
// mul_sum_i8_pairs). No saturation: |x| ≤ 128 and |y| ≤ 127.
func dotI8(x, y archsimd.Int8x32) archsimd.Int32x8 {
	return x.Abs().AsUint8x32().DotProductPairsSaturated(y.CopySign(x)).DotProductPairs(ones16)
}

// dotU8 is Σ x[i]·y[i] for unsigned x (< 128) and signed y.
func dotU8(x archsimd.Uint8x32, y archsimd.Int8x32) archsimd.Int32x8 {
	return x.DotProductPairsSaturated(y).DotProductPairs(ones16)
}

func hsum(v archsimd.Float32x8) float32 {
	var a [8]float32
	v.Store(&a)
	return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

func i8s(b []byte) *[32]int8 { return (*[32]int8)(unsafe.Pointer(&b[0])) }

func dotQ8_0SIMD(row []byte, a *Activations) (float32, bool) {
	if !haveAVX2 {
		return 0, false
	}
	nb := len(a.X) / 32
	row = row[:34*nb]
	q := a.q8[:32*nb]
	acc := archsimd.BroadcastFloat32x8(0)
	for b := 0; b < nb; b++ {
		blk := row[34*b : 34*b+34]
		w := archsimd.LoadInt8x32(i8s(blk[2:]))
		x := archsimd.LoadInt8x32((*[32]int8)(q[32*b : 32*b+32]))
		s := archsimd.BroadcastFloat32x8(f16(blk) * a.d8[b])
		acc = dotI8(w, x).ConvertToFloat32().MulAdd(s, acc)
	}
	return hsum(acc), true
}

var nibbleMask = archsimd.BroadcastUint8x16(0x0f)

func dotQ4_0SIMD(row []byte, a *Activations) (float32, bool) {
	if !haveAVX2 {
		return 0, false
	}
	nb := len(a.X) / 32
	row = row[:18*nb]
	q := a.q8[:32*nb]
	acc := archsimd.BroadcastFloat32x8(0)
	var w archsimd.Uint8x32
	for b := 0; b < nb; b++ {
		blk := row[18*b : 18*b+18]
		qs := archsimd.LoadUint8x16((*[16]uint8)(blk[2:18]))
		w = w.SetLo(qs.And(nibbleMask)).SetHi(qs.AsUint16x8().ShiftAllRight(4).AsUint8x16().And(nibbleMask))
		x := archsimd.LoadInt8x32((*[32]int8)(q[32*b : 32*b+32]))
		// Σ(n−8)·a = Σn·a − 8·Σa: the nibbles stay unsigned for VPMADDUBSW.
		s := archsimd.BroadcastFloat32x8(f16(blk) * a.d8[b])
		corr := archsimd.BroadcastInt32x8(-a.sum8[b])
		acc = dotU8(w, x).Add(corr).ConvertToFloat32().MulAdd(s, acc)
	}
	return hsum(acc), true
}
