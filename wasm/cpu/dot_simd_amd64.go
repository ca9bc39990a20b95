//go:build goexperiment.simd && amd64

package cpu

import (
	"encoding/binary"
	"simd/archsimd"
	"unsafe"

	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/quant"
)

// AVX2 kernels, built with GOEXPERIMENT=simd (Go's experimental
// simd/archsimd), registered when the CPU has AVX2 and FMA, and used for a
// type only where they beat the portable kernel when timed at start-up
// (kernels.go). They compute the same integer block sums as the portable
// code (exactly) and differ only in the order of the float additions.
//
// The rule that makes them fast on every x86 we have met: no scalar float
// code and no calls inside the loops. Go compiles scalar float32 code to
// legacy-SSE instructions, and mixing those into 256-bit AVX loops costs
// hundreds of cycles per switch on some CPUs (measured: a Q8_0 loop at 26
// GB/s alone ran at 0.24 GB/s with one scalar multiply inside). So the
// per-block f16 scales are read as integers, eight blocks at a time, and
// converted and multiplied in a vector (halfToFloat); each block takes its
// lane with a permute; each row's sum is reduced with the rows of its
// group of eight and stored as a vector.

func init() {
	if !archsimd.X86.AVX2() || !archsimd.X86.FMA() {
		return
	}
	vectorKernels = append(vectorKernels,
		vectorKernel{typ: gguf.TypeF32, isa: "avx2", rows: rowsF32AVX2},
		vectorKernel{typ: gguf.TypeF16, isa: "avx2", rows: rowsF16AVX2},
		vectorKernel{typ: gguf.TypeQ8_0, isa: "avx2", rows: rowsQ8_0AVX2},
		vectorKernel{typ: gguf.TypeQ4_0, isa: "avx2", rows: rowsQ4_0AVX2},
		vectorKernel{typ: gguf.TypeQ4_K, isa: "avx2", rows: rowsQ4_KAVX2},
		vectorKernel{typ: gguf.TypeQ6_K, isa: "avx2", rows: rowsQ6_KAVX2},
	)
}

// halfConsts are halfToFloat's masks and multiplier, made once per call
// (broadcasts from integer registers: no float code).
type halfConsts struct{ sign, mag, pow112 archsimd.Uint32x8 }

func newHalfConsts() halfConsts {
	return halfConsts{archsimd.BroadcastUint32x8(0x8000), archsimd.BroadcastUint32x8(0x7fff), archsimd.BroadcastUint32x8(0x77800000)}
}

// halfToFloat converts eight f16 bit patterns (one per 32-bit lane) to
// float32: the exponent and mantissa moved into place and scaled by 2^112
// (2^(127−15)), which is exact for normal and subnormal halves; the sign
// ORed back. Infinities and NaNs, which no weight scale holds, come out as
// large finite numbers.
func halfToFloat(h archsimd.Uint32x8, c halfConsts) archsimd.Float32x8 {
	sign := h.And(c.sign).ShiftAllLeft(16)
	mag := h.And(c.mag).ShiftAllLeft(13).AsFloat32x8().Mul(c.pow112.AsFloat32x8())
	return mag.AsUint32x8().Or(sign).AsFloat32x8()
}

// lane returns v's lane j in every lane.
func lane(v archsimd.Float32x8, j int) archsimd.Float32x8 {
	return v.Permute(archsimd.BroadcastUint32x8(uint32(j)))
}

// rowSums holds the lane sums of up to eight rows; store reduces each row's
// eight lanes to one float and writes the rows as one vector, in the order
// ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)).
type rowSums [8][8]float32

func (p *rowSums) set(i int, acc archsimd.Float32x8) { acc.Store(&p[i]) }

func (p *rowSums) store(y []float32) {
	v0, v1 := archsimd.LoadFloat32x8(&p[0]), archsimd.LoadFloat32x8(&p[1])
	v2, v3 := archsimd.LoadFloat32x8(&p[2]), archsimd.LoadFloat32x8(&p[3])
	v4, v5 := archsimd.LoadFloat32x8(&p[4]), archsimd.LoadFloat32x8(&p[5])
	v6, v7 := archsimd.LoadFloat32x8(&p[6]), archsimd.LoadFloat32x8(&p[7])
	// Each 128-bit half: [r0 pairs, r1 pairs], then [r0, r1, r2, r3] sums.
	h0123 := v0.AddPairsGrouped(v1).AddPairsGrouped(v2.AddPairsGrouped(v3))
	h4567 := v4.AddPairsGrouped(v5).AddPairsGrouped(v6.AddPairsGrouped(v7))
	// Low halves of rows 0–7 plus their high halves.
	sum := h0123.SetHi(h4567.GetLo()).Add(h4567.SetLo(h0123.GetHi()))
	sum.StoreSlicePart(y)
}

// shr16 shifts each 16-bit lane of x right by n, arithmetically: callers
// mask the bits they keep, so the sign bits shifted in do not matter. Go
// 1.26 compiles the logical shift (VPSRLW) with its count moved through a
// legacy-SSE MOVQ, which is what must stay out of these loops; VPSRAW
// takes the count as an immediate.
func shr16(x archsimd.Uint8x32, n uint64) archsimd.Uint8x32 {
	return x.AsInt16x16().ShiftAllRight(n).AsUint8x32()
}

func i8s(b []byte) *[32]int8  { return (*[32]int8)(unsafe.Pointer(&b[0])) }
func u8s(b []byte) *[32]uint8 { return (*[32]uint8)(unsafe.Pointer(&b[0])) }

// le16 is a little-endian uint16 as a uint32 (integer code only).
func le16(b []byte) uint32 { return uint32(binary.LittleEndian.Uint16(b)) }

// halfScales gathers the f16 at offset off of blocks b to b+7 (bb bytes
// each; zero past block nb) into sc and returns them as float32.
func halfScales(sc *[8]uint32, row []byte, b, nb, bb, off int, c halfConsts) archsimd.Float32x8 {
	for j := range 8 {
		if b+j < nb {
			sc[j] = le16(row[bb*(b+j)+off:])
		} else {
			sc[j] = 0
		}
	}
	return halfToFloat(archsimd.LoadUint32x8(sc), c)
}

// reduce8 sums each of eight vectors' lanes: lane j of the result is
// v_j's sum. VPHADDD pairs within 128-bit halves, twice, leaves each
// vector's low-half and high-half sums; one cross-half add finishes.
func reduce8(v0, v1, v2, v3, v4, v5, v6, v7 archsimd.Int32x8) archsimd.Int32x8 {
	h0123 := v0.AddPairsGrouped(v1).AddPairsGrouped(v2.AddPairsGrouped(v3))
	h4567 := v4.AddPairsGrouped(v5).AddPairsGrouped(v6.AddPairsGrouped(v7))
	return h0123.SetHi(h4567.GetLo()).Add(h4567.SetLo(h0123.GetHi()))
}

// at is p+off as a pointer to n bytes (n fixed by the caller's cast): the
// unrolled loops address blocks through it, their bounds checked once per
// row instead of once per load.
func at(p unsafe.Pointer, off int) unsafe.Pointer { return unsafe.Add(p, off) }

// gather8 reads the f16 at p, p+stride, …, p+7·stride into eight lanes.
func gather8(sc *[8]uint32, p unsafe.Pointer, stride int, c halfConsts) archsimd.Float32x8 {
	sc[0] = uint32(*(*uint16)(p))
	sc[1] = uint32(*(*uint16)(at(p, stride)))
	sc[2] = uint32(*(*uint16)(at(p, 2*stride)))
	sc[3] = uint32(*(*uint16)(at(p, 3*stride)))
	sc[4] = uint32(*(*uint16)(at(p, 4*stride)))
	sc[5] = uint32(*(*uint16)(at(p, 5*stride)))
	sc[6] = uint32(*(*uint16)(at(p, 6*stride)))
	sc[7] = uint32(*(*uint16)(at(p, 7*stride)))
	return halfToFloat(archsimd.LoadUint32x8(sc), c)
}

// q8Dot is Σ w·x over one Q8_0 block at p (its 32 quants after the f16
// scale) and 32 activation quants at x, in eight int32 lanes: |w|·(x·sign
// w) with VPMADDUBSW, then pairs to int32 with VPMADDWD (llama.cpp's
// mul_sum_i8_pairs); no saturation: |w| ≤ 128, |x| ≤ 127.
func q8Dot(p, x unsafe.Pointer, ones archsimd.Int16x16) archsimd.Int32x8 {
	w := archsimd.LoadInt8x32((*[32]int8)(at(p, 2)))
	v := archsimd.LoadInt8x32((*[32]int8)(x))
	return w.Abs().AsUint8x32().DotProductPairsSaturated(v.CopySign(w)).DotProductPairs(ones)
}

// q4Dot is Σ n·x over one Q4_0 block at p (16 bytes of nibble pairs after
// the f16 scale: element j the low nibble of byte j, element j+16 its high
// one), the nibbles n unsigned; the caller subtracts 8·Σx.
func q4Dot(p, x unsafe.Pointer, nibble archsimd.Uint8x32, ones archsimd.Int16x16) archsimd.Int32x8 {
	qs := archsimd.LoadUint8x16((*[16]uint8)(at(p, 2)))
	var w archsimd.Uint8x32
	w = w.SetLo(qs).SetHi(qs.AsInt16x8().ShiftAllRight(4).AsUint8x16()).And(nibble)
	return w.DotProductPairsSaturated(archsimd.LoadInt8x32((*[32]int8)(x))).DotProductPairs(ones)
}

// tailScales is gather8 for the last blocks b to nb−1 of a row that
// starts data: lanes past nb read the next row's bytes, if there are any,
// which the caller multiplies by the activations' zero padding; for the
// last row of a weight it reads only what is there (halfScales).
func tailScales(sc *[8]uint32, data []byte, b, nb, bb, off int, c halfConsts) archsimd.Float32x8 {
	if bb*(b+8)+off+2 <= len(data) {
		return gather8(sc, unsafe.Pointer(&data[bb*b+off]), bb, c)
	}
	return halfScales(sc, data, b, nb, bb, off, c)
}

// rowsQ8_0AVX2 takes eight blocks a step, unrolled: their integer sums
// reduced to one vector (lane j block j), converted, and multiplied by
// the eight blocks' scales in one FMA. A last partial step takes its
// blocks one at a time, each with its lane of the scales.
//
//go:norace
func rowsQ8_0AVX2(y []float32, w Weight, lo, hi int, a *Activations) {
	nb := w.Cols / 32
	rb := 34 * nb
	_ = w.Data[:hi*rb]
	q := a.q8[:32*nb]
	d8 := a.d8[:pad8(nb)]
	c := newHalfConsts()
	ones := archsimd.BroadcastInt16x16(1)
	var sc [8]uint32
	var sums rowSums
	for r0 := lo; r0 < hi; r0 += 8 {
		for i := 0; i < min(8, hi-r0); i++ {
			row := w.Data[(r0+i)*rb : (r0+i+1)*rb]
			rp, xp, dp := unsafe.Pointer(&row[0]), unsafe.Pointer(&q[0]), unsafe.Pointer(&d8[0])
			var acc archsimd.Float32x8
			b := 0
			for ; b+8 <= nb; b += 8 {
				p, x := at(rp, 34*b), at(xp, 32*b)
				s := gather8(&sc, p, 34, c).Mul(archsimd.LoadFloat32x8((*[8]float32)(at(dp, 4*b))))
				sum := reduce8(q8Dot(p, x, ones), q8Dot(at(p, 34), at(x, 32), ones),
					q8Dot(at(p, 68), at(x, 64), ones), q8Dot(at(p, 102), at(x, 96), ones),
					q8Dot(at(p, 136), at(x, 128), ones), q8Dot(at(p, 170), at(x, 160), ones),
					q8Dot(at(p, 204), at(x, 192), ones), q8Dot(at(p, 238), at(x, 224), ones))
				acc = sum.ConvertToFloat32().MulAdd(s, acc)
			}
			if b < nb {
				s := tailScales(&sc, w.Data[(r0+i)*rb:], b, nb, 34, 0, c).Mul(archsimd.LoadFloat32x8Slice(d8[b : b+8]))
				for j := 0; j < nb-b; j++ {
					dot := q8Dot(at(rp, 34*(b+j)), at(xp, 32*(b+j)), ones)
					acc = dot.ConvertToFloat32().MulAdd(lane(s, j), acc)
				}
			}
			sums.set(i, acc)
		}
		sums.store(y[r0:min(r0+8, hi)])
	}
	archsimd.ClearAVXUpperBits()
}

// rowsQ4_0AVX2 is rowsQ8_0AVX2's loop for Q4_0, with Σ(n−8)·x = Σn·x −
// 8·Σx: the nibbles stay unsigned for VPMADDUBSW, and the correction is
// one vector per eight blocks.
//
//go:norace
func rowsQ4_0AVX2(y []float32, w Weight, lo, hi int, a *Activations) {
	nb := w.Cols / 32
	rb := 18 * nb
	_ = w.Data[:hi*rb]
	q := a.q8[:32*nb]
	d8 := a.d8[:pad8(nb)]
	sum8 := a.sum8[:pad8(nb)]
	c := newHalfConsts()
	ones := archsimd.BroadcastInt16x16(1)
	nibble := archsimd.BroadcastUint8x32(0x0f)
	var sc [8]uint32
	var sums rowSums
	for r0 := lo; r0 < hi; r0 += 8 {
		for i := 0; i < min(8, hi-r0); i++ {
			row := w.Data[(r0+i)*rb : (r0+i+1)*rb]
			rp, xp := unsafe.Pointer(&row[0]), unsafe.Pointer(&q[0])
			dp, sp := unsafe.Pointer(&d8[0]), unsafe.Pointer(&sum8[0])
			var acc archsimd.Float32x8
			b := 0
			for ; b+8 <= nb; b += 8 {
				p, x := at(rp, 18*b), at(xp, 32*b)
				s := gather8(&sc, p, 18, c).Mul(archsimd.LoadFloat32x8((*[8]float32)(at(dp, 4*b))))
				sum := reduce8(q4Dot(p, x, nibble, ones), q4Dot(at(p, 18), at(x, 32), nibble, ones),
					q4Dot(at(p, 36), at(x, 64), nibble, ones), q4Dot(at(p, 54), at(x, 96), nibble, ones),
					q4Dot(at(p, 72), at(x, 128), nibble, ones), q4Dot(at(p, 90), at(x, 160), nibble, ones),
					q4Dot(at(p, 108), at(x, 192), nibble, ones), q4Dot(at(p, 126), at(x, 224), nibble, ones))
				sum = sum.Sub(archsimd.LoadInt32x8((*[8]int32)(at(sp, 4*b))).ShiftAllLeft(3))
				acc = sum.ConvertToFloat32().MulAdd(s, acc)
			}
			if b < nb {
				s := tailScales(&sc, w.Data[(r0+i)*rb:], b, nb, 18, 0, c).Mul(archsimd.LoadFloat32x8Slice(d8[b : b+8]))
				corr := archsimd.LoadInt32x8Slice(sum8[b : b+8]).ShiftAllLeft(3).ConvertToFloat32().Mul(s)
				acc = acc.Sub(corr)
				for j := 0; j < nb-b; j++ {
					dot := q4Dot(at(rp, 18*(b+j)), at(xp, 32*(b+j)), nibble, ones)
					acc = dot.ConvertToFloat32().MulAdd(lane(s, j), acc)
				}
			}
			sums.set(i, acc)
		}
		sums.store(y[r0:min(r0+8, hi)])
	}
	archsimd.ClearAVXUpperBits()
}

//go:norace
func rowsF32AVX2(y []float32, w Weight, lo, hi int, a *Activations) {
	n := w.Cols
	if n%32 != 0 {
		portableRows(y, w, lo, hi, a)
		return
	}
	x := a.X[:n]
	var sums rowSums
	for r0 := lo; r0 < hi; r0 += 8 {
		for i := 0; i < min(8, hi-r0); i++ {
			rowb := w.Data[(r0+i)*4*n : (r0+i+1)*4*n]
			row := unsafe.Slice((*float32)(unsafe.Pointer(&rowb[0])), n)
			var a0, a1, a2, a3 archsimd.Float32x8
			for c := 0; c < n; c += 32 {
				a0 = archsimd.LoadFloat32x8Slice(row[c:]).MulAdd(archsimd.LoadFloat32x8Slice(x[c:]), a0)
				a1 = archsimd.LoadFloat32x8Slice(row[c+8:]).MulAdd(archsimd.LoadFloat32x8Slice(x[c+8:]), a1)
				a2 = archsimd.LoadFloat32x8Slice(row[c+16:]).MulAdd(archsimd.LoadFloat32x8Slice(x[c+16:]), a2)
				a3 = archsimd.LoadFloat32x8Slice(row[c+24:]).MulAdd(archsimd.LoadFloat32x8Slice(x[c+24:]), a3)
			}
			sums.set(i, a0.Add(a1).Add(a2.Add(a3)))
		}
		sums.store(y[r0:min(r0+8, hi)])
	}
	archsimd.ClearAVXUpperBits()
}

//go:norace
func rowsF16AVX2(y []float32, w Weight, lo, hi int, a *Activations) {
	n := w.Cols
	if n%32 != 0 {
		portableRows(y, w, lo, hi, a)
		return
	}
	h := a.h[:n]
	c := newHalfConsts()
	var sums rowSums
	for r0 := lo; r0 < hi; r0 += 8 {
		for i := 0; i < min(8, hi-r0); i++ {
			rowb := w.Data[(r0+i)*2*n : (r0+i+1)*2*n]
			row := unsafe.Slice((*uint16)(unsafe.Pointer(&rowb[0])), n)
			var a0, a1, a2, a3 archsimd.Float32x8
			for k := 0; k < n; k += 32 {
				a0 = halfToFloat(archsimd.LoadUint16x8Slice(row[k:]).ExtendToUint32(), c).MulAdd(archsimd.LoadFloat32x8Slice(h[k:]), a0)
				a1 = halfToFloat(archsimd.LoadUint16x8Slice(row[k+8:]).ExtendToUint32(), c).MulAdd(archsimd.LoadFloat32x8Slice(h[k+8:]), a1)
				a2 = halfToFloat(archsimd.LoadUint16x8Slice(row[k+16:]).ExtendToUint32(), c).MulAdd(archsimd.LoadFloat32x8Slice(h[k+16:]), a2)
				a3 = halfToFloat(archsimd.LoadUint16x8Slice(row[k+24:]).ExtendToUint32(), c).MulAdd(archsimd.LoadFloat32x8Slice(h[k+24:]), a3)
			}
			sums.set(i, a0.Add(a1).Add(a2.Add(a3)))
		}
		sums.store(y[r0:min(r0+8, hi)])
	}
	archsimd.ClearAVXUpperBits()
}

// rowsQ4_KAVX2: each super-block is d·dk·Σ_s sc_s·Σ q·x − dmin·dk·Σ_s m_s·Σx
// over its eight 32-element groups (quant's layout: group 2c is the low
// nibbles of qs[32c:32c+32], group 2c+1 the high ones). The integer sums
// go through VPMADDUBSW and a VPMADDWD by the group's scale; the mins term
// is integer code; the floats are scaled eight super-blocks at a time.
//
//go:norace
func rowsQ4_KAVX2(y []float32, w Weight, lo, hi int, a *Activations) {
	nb := w.Cols / 256
	rb := 144 * nb
	qk := a.qk[:256*nb]
	bsum := a.bsum[:16*nb]
	dk := a.dk[:pad8(nb)]
	c := newHalfConsts()
	nibble := archsimd.BroadcastUint8x32(0x0f)
	var sc, scMin [8]uint32
	var msum [8]int32
	var sums rowSums
	for r0 := lo; r0 < hi; r0 += 8 {
		for i := 0; i < min(8, hi-r0); i++ {
			row := w.Data[(r0+i)*rb : (r0+i+1)*rb]
			var acc archsimd.Float32x8
			for b := 0; b < nb; b += 8 {
				dkv := archsimd.LoadFloat32x8Slice(dk[b : b+8])
				s := halfScales(&sc, row, b, nb, 144, 0, c).Mul(dkv)
				m := halfScales(&scMin, row, b, nb, 144, 2, c).Mul(dkv)
				for j := range 8 {
					msum[j] = 0
				}
				for j := 0; j < min(8, nb-b); j++ {
					blk := row[144*(b+j) : 144*(b+j)+144]
					x := qk[256*(b+j) : 256*(b+j)+256]
					bs := bsum[16*(b+j) : 16*(b+j)+16]
					var isum archsimd.Int32x8
					var ms int32
					for g := 0; g < 4; g++ {
						sc0, m0 := quant.ScaleMinK4(2*g, blk[4:16])
						sc1, m1 := quant.ScaleMinK4(2*g+1, blk[4:16])
						ms += int32(m0)*(bs[4*g]+bs[4*g+1]) + int32(m1)*(bs[4*g+2]+bs[4*g+3])
						qs := archsimd.LoadUint8x32(u8s(blk[16+32*g:]))
						lo4 := qs.And(nibble)
						hi4 := shr16(qs, 4).And(nibble)
						x0 := archsimd.LoadInt8x32((*[32]int8)(x[64*g : 64*g+32]))
						x1 := archsimd.LoadInt8x32((*[32]int8)(x[64*g+32 : 64*g+64]))
						isum = isum.Add(lo4.DotProductPairsSaturated(x0).DotProductPairs(archsimd.BroadcastInt16x16(int16(sc0))))
						isum = isum.Add(hi4.DotProductPairsSaturated(x1).DotProductPairs(archsimd.BroadcastInt16x16(int16(sc1))))
					}
					msum[j] = ms
					acc = isum.ConvertToFloat32().MulAdd(lane(s, j), acc)
				}
				acc = acc.Sub(archsimd.LoadInt32x8(&msum).ConvertToFloat32().Mul(m))
			}
			sums.set(i, acc)
		}
		sums.store(y[r0:min(r0+8, hi)])
	}
	archsimd.ClearAVXUpperBits()
}

// rowsQ6_KAVX2: a super-block is d·dk·Σ_s sc_s·Σ (u−32)·x over sixteen
// groups of 16, with u the unsigned 6-bit value (low nibble from ql, two
// high bits from qh); Σ(u−32)·x = Σu·x − 32·Σx keeps u unsigned for
// VPMADDUBSW, and the correction is integer code on the Q8_K group sums.
//
//go:norace
func rowsQ6_KAVX2(y []float32, w Weight, lo, hi int, a *Activations) {
	nb := w.Cols / 256
	rb := 210 * nb
	qk := a.qk[:256*nb]
	bsum := a.bsum[:16*nb]
	dk := a.dk[:pad8(nb)]
	c := newHalfConsts()
	nibble := archsimd.BroadcastUint8x32(0x0f)
	high := archsimd.BroadcastUint8x32(0x30)
	var sc [8]uint32
	var corr [8]int32
	var sums rowSums
	for r0 := lo; r0 < hi; r0 += 8 {
		for i := 0; i < min(8, hi-r0); i++ {
			row := w.Data[(r0+i)*rb : (r0+i+1)*rb]
			var acc archsimd.Float32x8
			for b := 0; b < nb; b += 8 {
				s := halfScales(&sc, row, b, nb, 210, 208, c).Mul(archsimd.LoadFloat32x8Slice(dk[b : b+8]))
				for j := range 8 {
					corr[j] = 0
				}
				for j := 0; j < min(8, nb-b); j++ {
					blk := row[210*(b+j) : 210*(b+j)+210]
					scales := blk[192:208]
					x := qk[256*(b+j) : 256*(b+j)+256]
					bs := bsum[16*(b+j) : 16*(b+j)+16]
					var cs int32
					for k := range 16 {
						cs += int32(int8(scales[k])) * bs[k]
					}
					corr[j] = 32 * cs
					var isum archsimd.Int32x8
					for half := 0; half < 2; half++ {
						ql0 := archsimd.LoadUint8x32(u8s(blk[64*half:]))
						ql1 := archsimd.LoadUint8x32(u8s(blk[64*half+32:]))
						qh := archsimd.LoadUint8x32(u8s(blk[128+32*half:]))
						// The four 32-element quarters of this half, as quant lays them out.
						u0 := ql0.And(nibble).Or(qh.AsUint16x16().ShiftAllLeft(4).AsUint8x32().And(high))
						u1 := ql1.And(nibble).Or(qh.AsUint16x16().ShiftAllLeft(2).AsUint8x32().And(high))
						u2 := shr16(ql0, 4).And(nibble).Or(qh.And(high))
						u3 := shr16(ql1, 4).And(nibble).Or(shr16(qh, 2).And(high))
						xs := x[128*half:]
						sg := scales[8*half:]
						isum = isum.Add(q6Group(u0, xs[0:32], sg[0], sg[1]))
						isum = isum.Add(q6Group(u1, xs[32:64], sg[2], sg[3]))
						isum = isum.Add(q6Group(u2, xs[64:96], sg[4], sg[5]))
						isum = isum.Add(q6Group(u3, xs[96:128], sg[6], sg[7]))
					}
					acc = isum.ConvertToFloat32().MulAdd(lane(s, j), acc)
				}
				acc = acc.Sub(archsimd.LoadInt32x8(&corr).ConvertToFloat32().Mul(s))
			}
			sums.set(i, acc)
		}
		sums.store(y[r0:min(r0+8, hi)])
	}
	archsimd.ClearAVXUpperBits()
}

// q6Group is Σ u·x over 32 elements whose first 16 have scale s0 and last
// 16 scale s1, in eight int32 lanes: VPMADDUBSW gives pair sums (lanes 0–7
// the first 16 elements), VPMADDWD multiplies them by their scale.
func q6Group(u archsimd.Uint8x32, x []int8, s0, s1 byte) archsimd.Int32x8 {
	var scale archsimd.Int16x16
	scale = scale.SetLo(archsimd.BroadcastInt16x8(int16(int8(s0)))).SetHi(archsimd.BroadcastInt16x8(int16(int8(s1))))
	return u.DotProductPairsSaturated(archsimd.LoadInt8x32((*[32]int8)(x))).DotProductPairs(scale)
}
