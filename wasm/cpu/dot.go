package cpu

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/quant"
)

// Activations is one input vector prepared for dot products with weights of
// every type, as llama.cpp prepares it (its vec_dot_type): quantized to
// Q8_0 blocks for Q4_0/Q5_0/Q8_0 weights, Q8_1 for Q4_1/Q5_1, Q8_K for the
// K-quants, rounded to f16 or bf16 for those weights, kept as f32 for f32.
// Doing the same keeps our logits within rounding of llama.cpp's, and the
// integer dot products are faster than float ones.
//
// Each form is made on first use; Prepare resets it for a new vector.
type Activations struct {
	X []float32
	// Exact skips the activation forms: every product dequantizes the
	// weight blocks and multiplies by X in float32. Slower; a reference for
	// backends that keep activations in f32 (WebGPU).
	Exact bool
	have  uint32 // bit per form made
	q8    []int8
	d8    []float32 // Q8_0 / Q8_1 scale per 32 (f16-rounded, as stored)
	s8    []float32 // Q8_1: d·Σq per 32 (f16-rounded)
	sum8  []int32   // Σq per 32
	// d8, sum8, dk: zero-padded to a multiple of 8 within their capacity.
	qk   []int8
	dk   []float32 // Q8_K scale per 256
	bsum []int32   // Q8_K: Σq per 16
	h    []float32 // f16- or bf16-rounded copy
	hTyp gguf.Type
	vn   []uint32 // Q8_0 packed for the VNNI kernels (dot_vnni_amd64.go)
	vnK  int32    // the correction's factor vn was packed for
}

const (
	formQ8 = 1 << iota
	formQ8K
	formHalf
	formVNNI
)

// Prepare sets the vector (not copied) and forgets earlier forms.
func (a *Activations) Prepare(x []float32) {
	a.X = x
	a.have = 0
}

// quantizeQ8Vector, where this CPU has one (dot_asm_amd64.go), is
// ensureQ8's per-element loop in vector instructions, with the same
// results bit for bit: per block of 32 of x, the largest |x| into amax,
// the quants into q and their sum into sum.
var quantizeQ8Vector func(x []float32, q []int8, amax []float32, sum []int32)

func (a *Activations) ensureQ8() {
	if a.have&formQ8 != 0 {
		return
	}
	a.have |= formQ8
	n := len(a.X)
	nb := n / 32
	a.q8 = grow(a.q8, n)
	a.d8 = growF(a.d8, nb)
	a.s8 = growF(a.s8, nb)
	a.sum8 = growI(a.sum8, nb)
	if nb == 0 {
		return
	}
	quantize := quantizeQ8Go
	if quantizeQ8Vector != nil {
		quantize = quantizeQ8Vector
	}
	quantize(a.X[:32*nb], a.q8, a.d8, a.sum8) // amax into d8, for now
	for b := range nb {
		d := a.d8[b] / 127
		a.d8[b] = quant.F16ToF32(quant.F32ToF16(d))
		a.s8[b] = quant.F16ToF32(quant.F32ToF16(d * float32(a.sum8[b])))
	}
}

// quantizeQ8Go quantizes x to Q8_0 quants as llama.cpp's x86
// quantize_row_q8_0 does: per block of 32, the largest |x| into amax,
// q = round-to-even(x · (127/amax)) into q (the inverse scale is 127/amax,
// not 1/d, which rounds differently), and Σq into sum.
func quantizeQ8Go(x []float32, q []int8, amax []float32, sum []int32) {
	for b := range len(x) / 32 {
		xb := x[32*b : 32*b+32]
		var m float32
		for _, v := range xb {
			m = max(m, abs32(v))
		}
		id := float32(0)
		if m != 0 {
			id = 127 / m
		}
		s := 0
		for j, v := range xb {
			qv := int8(math.RoundToEven(float64(v * id)))
			q[32*b+j] = qv
			s += int(qv)
		}
		amax[b], sum[b] = m, int32(s)
	}
}

func (a *Activations) ensureQ8K() {
	if a.have&formQ8K != 0 {
		return
	}
	a.have |= formQ8K
	n := len(a.X)
	a.qk = grow(a.qk, n)
	a.dk = growF(a.dk, n/256)
	a.bsum = growI(a.bsum, n/16)
	for b := 0; b < n/256; b++ {
		x := a.X[256*b : 256*b+256]
		var amax, mx float32
		for _, v := range x {
			if av := abs32(v); av > amax {
				amax, mx = av, v
			}
		}
		q := a.qk[256*b : 256*b+256]
		if amax == 0 {
			a.dk[b] = 0
			clear(q)
			clear(a.bsum[16*b : 16*b+16])
			continue
		}
		iscale := -127 / mx
		for j, v := range x {
			q[j] = int8(min(127, int(math.RoundToEven(float64(iscale*v)))))
		}
		for s := 0; s < 16; s++ {
			var sum int32
			for _, v := range q[16*s : 16*s+16] {
				sum += int32(v)
			}
			a.bsum[16*b+s] = sum
		}
		a.dk[b] = 1 / iscale
	}
}

func (a *Activations) ensureHalf(t gguf.Type) {
	if a.have&formHalf != 0 && a.hTyp == t {
		return
	}
	a.have |= formHalf
	a.hTyp = t
	a.h = growF(a.h, len(a.X))
	for i, v := range a.X {
		if t == gguf.TypeBF16 {
			a.h[i] = quant.BF16ToF32(quant.F32ToBF16(v))
		} else {
			a.h[i] = quant.F16ToF32(quant.F32ToF16(v))
		}
	}
}

// dotDequantized dequantizes one block at a time and dots it with x.
//
//go:norace
func dotDequantized(t gguf.Type, row []byte, x []float32) float32 {
	var blk [256]float32
	bs, bb := t.BlockSize(), t.BlockBytes()
	if bs == 1 { // f16, bf16: convert in runs of 256
		bs, bb = 256, 256*t.BlockBytes()
	}
	var sum float32
	for i := 0; i*bs < len(x); i++ {
		n := min(bs, len(x)-i*bs)
		y := blk[:n]
		_ = quant.Dequantize(t, row[i*bb:i*bb+n/t.BlockSize()*t.BlockBytes()], y)
		for j, v := range y {
			sum += v * x[i*bs+j]
		}
	}
	return sum
}

// prepareFor makes the form that weights of type t need. Call it before
// dotting rows from several goroutines.
func (a *Activations) prepareFor(t gguf.Type) {
	if a.Exact {
		return
	}
	switch t {
	case gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ5_0, gguf.TypeQ4_1, gguf.TypeQ5_1:
		a.ensureQ8()
	case gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K:
		a.ensureQ8K()
	case gguf.TypeF16, gguf.TypeBF16:
		a.ensureHalf(t)
	}
}

func grow(s []int8, n int) []int8 {
	if cap(s) < n {
		return make([]int8, n)
	}
	return s[:n]
}

// growF and growI return s resliced to n, reallocated when short, with
// zeros from n up to the next multiple of 8 within the capacity: the
// vector kernels load the per-block scales and sums eight at a time, and
// lanes past the last block must multiply to zero.
func growF(s []float32, n int) []float32 {
	if cap(s) < pad8(n) {
		return make([]float32, n, pad8(n))
	}
	clear(s[n:pad8(n)])
	return s[:n]
}

func growI(s []int32, n int) []int32 {
	if cap(s) < pad8(n) {
		return make([]int32, n, pad8(n))
	}
	clear(s[n:pad8(n)])
	return s[:n]
}

func pad8(n int) int { return (n + 7) &^ 7 }

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

func f16(b []byte) float32 { return quant.F16ToF32(binary.LittleEndian.Uint16(b)) }

// rowDot returns the dot product of one weight row (its blocks) with the
// activations, whose form for t must have been prepared.
//
// The block kernels below are marked go:norace: they only read a weight
// row and prepared activations that nothing writes while a product runs,
// and their per-byte instrumentation made the race-detected tests of the
// packages above (the scheduler's) ten times slower. The writers, the
// products' row ranges and everything that schedules them stay checked.
func rowDot(t gguf.Type, row []byte, a *Activations) float32 {
	if a.Exact && t != gguf.TypeF32 {
		return dotDequantized(t, row, a.X)
	}
	switch t {
	case gguf.TypeF32:
		return dotF32(row, a.X)
	case gguf.TypeF16:
		return dotHalf(row, a.h, quant.F16ToF32)
	case gguf.TypeBF16:
		return dotHalf(row, a.h, quant.BF16ToF32)
	case gguf.TypeQ8_0:
		return dotQ8_0(row, a)
	case gguf.TypeQ4_0:
		return dotQ4_0(row, a)
	case gguf.TypeQ5_0:
		return dotQ5_0(row, a)
	case gguf.TypeQ4_1:
		return dotQ4_1(row, a)
	case gguf.TypeQ5_1:
		return dotQ5_1(row, a)
	case gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K:
		return dotK(t, row, a)
	}
	panic(fmt.Sprintf("cpu: no dot product for %s", t)) // callers check quant.IsSupported
}

//go:norace
func dotF32(row []byte, x []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		b := row[4*i : 4*i+16]
		s0 += math.Float32frombits(binary.LittleEndian.Uint32(b[0:])) * x[i]
		s1 += math.Float32frombits(binary.LittleEndian.Uint32(b[4:])) * x[i+1]
		s2 += math.Float32frombits(binary.LittleEndian.Uint32(b[8:])) * x[i+2]
		s3 += math.Float32frombits(binary.LittleEndian.Uint32(b[12:])) * x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += math.Float32frombits(binary.LittleEndian.Uint32(row[4*i:])) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

//go:norace
func dotHalf(row []byte, h []float32, conv func(uint16) float32) float32 {
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(h); i += 2 {
		s0 += conv(binary.LittleEndian.Uint16(row[2*i:])) * h[i]
		s1 += conv(binary.LittleEndian.Uint16(row[2*i+2:])) * h[i+1]
	}
	for ; i < len(h); i++ {
		s0 += conv(binary.LittleEndian.Uint16(row[2*i:])) * h[i]
	}
	return s0 + s1
}

//go:norace
func dotQ8_0(row []byte, a *Activations) float32 {
	var sum float32
	nb := len(a.X) / 32
	row = row[:34*nb]
	for b := 0; b < nb; b++ {
		blk := row[34*b : 34*b+34]
		sum += float32(dot32((*[32]byte)(blk[2:34]), (*[32]int8)(a.q8[32*b:32*b+32]))) * (f16(blk) * a.d8[b])
	}
	return sum
}

// dot32 is Σ int8(w[i])·q[i]; fixed-size arrays let the compiler drop the
// bounds checks, and four partial sums shorten the dependency chain.
//
//go:norace
func dot32(w *[32]byte, q *[32]int8) int32 {
	var s0, s1, s2, s3 int32
	for j := 0; j < 32; j += 4 {
		s0 += int32(int8(w[j])) * int32(q[j])
		s1 += int32(int8(w[j+1])) * int32(q[j+1])
		s2 += int32(int8(w[j+2])) * int32(q[j+2])
		s3 += int32(int8(w[j+3])) * int32(q[j+3])
	}
	return (s0 + s1) + (s2 + s3)
}

//go:norace
func dotQ4_0(row []byte, a *Activations) float32 {
	var sum float32
	nb := len(a.X) / 32
	row = row[:18*nb]
	for b := 0; b < nb; b++ {
		blk := row[18*b : 18*b+18]
		qs := (*[16]byte)(blk[2:18])
		q := (*[32]int8)(a.q8[32*b : 32*b+32])
		var s0, s1 int32
		for j := 0; j < 16; j++ {
			c := qs[j]
			s0 += int32(c&0xf) * int32(q[j])
			s1 += int32(c>>4) * int32(q[j+16])
		}
		// Σ(n−8)·q = Σn·q − 8·Σq
		sum += float32(s0+s1-8*a.sum8[b]) * (f16(blk) * a.d8[b])
	}
	return sum
}

//go:norace
func dotQ5_0(row []byte, a *Activations) float32 {
	var sum float32
	for b := 0; b < len(a.X)/32; b++ {
		blk := row[22*b : 22*b+22]
		qh := binary.LittleEndian.Uint32(blk[2:])
		q := a.q8[32*b : 32*b+32]
		var isum int32
		for j := 0; j < 16; j++ {
			c := blk[6+j]
			lo := int32(c&0xf) | int32(qh>>j&1)<<4
			hi := int32(c>>4) | int32(qh>>(j+16)&1)<<4
			isum += (lo-16)*int32(q[j]) + (hi-16)*int32(q[j+16])
		}
		sum += float32(isum) * (f16(blk) * a.d8[b])
	}
	return sum
}

// Q4_1 and Q5_1 against Q8_1: Σ(d·q + m)·(da·a) = d·da·Σq·a + m·(da·Σa).
//
//go:norace
func dotQ4_1(row []byte, a *Activations) float32 {
	var sum float32
	for b := 0; b < len(a.X)/32; b++ {
		blk := row[20*b : 20*b+20]
		q := a.q8[32*b : 32*b+32]
		var isum int32
		for j := 0; j < 16; j++ {
			c := blk[4+j]
			isum += int32(c&0xf)*int32(q[j]) + int32(c>>4)*int32(q[j+16])
		}
		sum += float32(isum)*(f16(blk)*a.d8[b]) + f16(blk[2:])*a.s8[b]
	}
	return sum
}

//go:norace
func dotQ5_1(row []byte, a *Activations) float32 {
	var sum float32
	for b := 0; b < len(a.X)/32; b++ {
		blk := row[24*b : 24*b+24]
		qh := binary.LittleEndian.Uint32(blk[4:])
		q := a.q8[32*b : 32*b+32]
		var isum int32
		for j := 0; j < 16; j++ {
			c := blk[8+j]
			lo := int32(c&0xf) | int32(qh>>j&1)<<4
			hi := int32(c>>4) | int32(qh>>(j+16)&1)<<4
			isum += lo*int32(q[j]) + hi*int32(q[j+16])
		}
		sum += float32(isum)*(f16(blk)*a.d8[b]) + f16(blk[2:])*a.s8[b]
	}
	return sum
}

// kBlock is a K-quant super-block unpacked to integers: element i is
// d·scale[i/16]·q[i] − dmin·min[i/16].
type kBlock struct {
	q          [256]int8
	scale, min [16]int32
	d, dmin    float32
}

// unpackK decodes a K-quant block into k (layouts as in package quant).
//
//go:norace
func unpackK(t gguf.Type, b []byte, k *kBlock) {
	switch t {
	case gguf.TypeQ2_K:
		scales, qs := b[0:16], b[16:80]
		k.d, k.dmin = f16(b[80:]), f16(b[82:])
		for s := 0; s < 16; s++ {
			k.scale[s], k.min[s] = int32(scales[s]&0xf), int32(scales[s]>>4)
			half, shift, g := s/8, uint(2*((s%8)/2)), s%2
			for l := 0; l < 16; l++ {
				k.q[16*s+l] = int8((qs[32*half+16*g+l] >> shift) & 3)
			}
		}
	case gguf.TypeQ3_K:
		hm, qs := b[0:32], b[32:96]
		k.d, k.dmin = f16(b[108:]), 0
		sc := quant.Q3KScales(b[96:108])
		for s := 0; s < 16; s++ {
			k.scale[s], k.min[s] = int32(sc[s]), 0
			half, plane, g := s/8, uint((s%8)/2), s%2
			for l := 0; l < 16; l++ {
				v := int8((qs[32*half+16*g+l] >> (2 * plane)) & 3)
				if hm[16*g+l]&(1<<(4*uint(half)+plane)) == 0 {
					v -= 4
				}
				k.q[16*s+l] = v
			}
		}
	case gguf.TypeQ4_K, gguf.TypeQ5_K:
		k.d, k.dmin = f16(b), f16(b[2:])
		scales := b[4:16]
		var qh, qs []byte
		if t == gguf.TypeQ4_K {
			qs = b[16:144]
		} else {
			qh, qs = b[16:48], b[48:176]
		}
		for c := 0; c < 4; c++ {
			sc1, m1 := quant.ScaleMinK4(2*c, scales)
			sc2, m2 := quant.ScaleMinK4(2*c+1, scales)
			k.scale[4*c], k.scale[4*c+1], k.min[4*c], k.min[4*c+1] = int32(sc1), int32(sc1), int32(m1), int32(m1)
			k.scale[4*c+2], k.scale[4*c+3], k.min[4*c+2], k.min[4*c+3] = int32(sc2), int32(sc2), int32(m2), int32(m2)
			for l := 0; l < 32; l++ {
				lo, hi := qs[32*c+l]&0xf, qs[32*c+l]>>4
				if qh != nil {
					lo |= (qh[l] >> (2 * uint(c)) & 1) << 4
					hi |= (qh[l] >> (2*uint(c) + 1) & 1) << 4
				}
				k.q[64*c+l], k.q[64*c+32+l] = int8(lo), int8(hi)
			}
		}
	case gguf.TypeQ6_K:
		ql, qh, sc := b[0:128], b[128:192], b[192:208]
		k.d, k.dmin = f16(b[208:]), 0
		for s := 0; s < 16; s++ {
			k.scale[s], k.min[s] = int32(int8(sc[s])), 0
		}
		for half := 0; half < 2; half++ {
			l4, h2 := ql[64*half:], qh[32*half:]
			q := k.q[128*half:]
			for l := 0; l < 32; l++ {
				q[l] = int8(l4[l]&0xf|(h2[l]&3)<<4) - 32
				q[l+32] = int8(l4[l+32]&0xf|((h2[l]>>2)&3)<<4) - 32
				q[l+64] = int8(l4[l]>>4|((h2[l]>>4)&3)<<4) - 32
				q[l+96] = int8(l4[l+32]>>4|((h2[l]>>6)&3)<<4) - 32
			}
		}
	}
}

// dotK is a K-quant row against Q8_K activations:
// Σ_s d·da·scale_s·Σ q·a − dmin·da·min_s·Σ a, with integer inner sums.
//
//go:norace
func dotK(t gguf.Type, row []byte, a *Activations) float32 {
	bb := t.BlockBytes()
	var k kBlock
	var sum float32
	for b := 0; b < len(a.X)/256; b++ {
		unpackK(t, row[bb*b:bb*b+bb], &k)
		aq := a.qk[256*b : 256*b+256]
		var isum, msum int32
		for s := 0; s < 16; s++ {
			var dot int32
			for l := 16 * s; l < 16*s+16; l++ {
				dot += int32(k.q[l]) * int32(aq[l])
			}
			isum += k.scale[s] * dot
			msum += k.min[s] * a.bsum[16*b+s]
		}
		da := a.dk[b]
		sum += k.d*da*float32(isum) - k.dmin*da*float32(msum)
	}
	return sum
}
