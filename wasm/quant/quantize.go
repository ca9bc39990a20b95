package quant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/webinfer/webinfer/wasm/gguf"
)

// Quantize encodes src (a whole number of blocks) as type t. The 32-element
// types follow llama.cpp's reference quantizers (quantize_row_*_ref), so a
// model we quantize matches one it would; the K-quants use a plain
// min/max fit per sub-block (valid blocks of the same layout, without
// llama.cpp's search for the best scales: good enough for fixtures).
func Quantize(t gguf.Type, src []float32) ([]byte, error) {
	f := quantizers[t]
	if f == nil {
		return nil, fmt.Errorf("quant: cannot quantize to %s", t)
	}
	bs, bb := t.BlockSize(), t.BlockBytes()
	if len(src)%bs != 0 {
		return nil, fmt.Errorf("quant: %s: %d elements is not a whole number of %d-element blocks", t, len(src), bs)
	}
	out := make([]byte, len(src)/bs*bb)
	for i := 0; i < len(src)/bs; i++ {
		f(src[i*bs:(i+1)*bs], out[i*bb:(i+1)*bb])
	}
	return out, nil
}

var quantizers = map[gguf.Type]func(x []float32, b []byte){
	gguf.TypeF32:  func(x []float32, b []byte) { binary.LittleEndian.PutUint32(b, math.Float32bits(x[0])) },
	gguf.TypeF16:  func(x []float32, b []byte) { binary.LittleEndian.PutUint16(b, F32ToF16(x[0])) },
	gguf.TypeBF16: func(x []float32, b []byte) { binary.LittleEndian.PutUint16(b, F32ToBF16(x[0])) },
	gguf.TypeQ8_0: quantQ8_0,
	gguf.TypeQ4_0: quantQ4_0,
	gguf.TypeQ4_1: quantQ4_1,
	gguf.TypeQ5_0: quantQ5_0,
	gguf.TypeQ5_1: quantQ5_1,
	gguf.TypeQ2_K: quantQ2_K,
	gguf.TypeQ3_K: quantQ3_K,
	gguf.TypeQ4_K: quantQ4_K,
	gguf.TypeQ5_K: quantQ5_K,
	gguf.TypeQ6_K: quantQ6_K,
}

func put16(b []byte, v float32) { binary.LittleEndian.PutUint16(b, F32ToF16(v)) }

// roundf rounds half away from zero, as C's roundf.
func roundf(x float32) int { return int(math.Round(float64(x))) }

func inv(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

// signedAbsMax returns the element of largest magnitude, with its sign.
func signedAbsMax(x []float32) float32 {
	var amax, max float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, max = a, v
		}
	}
	return max
}

func minMax(x []float32) (lo, hi float32) {
	lo, hi = x[0], x[0]
	for _, v := range x[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

func quantQ8_0(x []float32, b []byte) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	id := inv(d)
	put16(b, d)
	for j, v := range x {
		b[2+j] = byte(int8(roundf(v * id)))
	}
}

func quantQ4_0(x []float32, b []byte) {
	d := signedAbsMax(x) / -8
	id := inv(d)
	put16(b, d)
	for j := 0; j < 16; j++ {
		q0 := min(15, int(int8(x[j]*id+8.5)))
		q1 := min(15, int(int8(x[j+16]*id+8.5)))
		b[2+j] = byte(q0) | byte(q1)<<4
	}
}

func quantQ4_1(x []float32, b []byte) {
	lo, hi := minMax(x)
	d := (hi - lo) / 15
	id := inv(d)
	put16(b, d)
	put16(b[2:], lo)
	for j := 0; j < 16; j++ {
		q0 := min(15, int(int8((x[j]-lo)*id+0.5)))
		q1 := min(15, int(int8((x[j+16]-lo)*id+0.5)))
		b[4+j] = byte(q0) | byte(q1)<<4
	}
}

func quantQ5_0(x []float32, b []byte) {
	d := signedAbsMax(x) / -16
	id := inv(d)
	put16(b, d)
	var qh uint32
	for j := 0; j < 16; j++ {
		q0 := min(31, int(int8(x[j]*id+16.5)))
		q1 := min(31, int(int8(x[j+16]*id+16.5)))
		b[6+j] = byte(q0&0xf) | byte(q1&0xf)<<4
		qh |= uint32(q0>>4&1)<<j | uint32(q1>>4&1)<<(j+16)
	}
	binary.LittleEndian.PutUint32(b[2:], qh)
}

func quantQ5_1(x []float32, b []byte) {
	lo, hi := minMax(x)
	d := (hi - lo) / 31
	id := inv(d)
	put16(b, d)
	put16(b[2:], lo)
	var qh uint32
	for j := 0; j < 16; j++ {
		q0 := min(31, int(int8((x[j]-lo)*id+0.5)))
		q1 := min(31, int(int8((x[j+16]-lo)*id+0.5)))
		b[8+j] = byte(q0&0xf) | byte(q1&0xf)<<4
		qh |= uint32(q0>>4&1)<<j | uint32(q1>>4&1)<<(j+16)
	}
	binary.LittleEndian.PutUint32(b[4:], qh)
}

func clamp(v, lo, hi int) int { return max(lo, min(hi, v)) }

// fitMin fits n-level unsigned quants with a min to each sub-block of
// size sub: it returns per-sub-block scales and (non-negative) mins such
// that x ≈ scale·q − min.
func fitMin(x []float32, sub, levels int) (scales, mins []float32) {
	for s := 0; s < len(x)/sub; s++ {
		lo, hi := minMax(x[s*sub : (s+1)*sub])
		lo = min(lo, 0)
		scales = append(scales, (hi-lo)/float32(levels))
		mins = append(mins, -lo)
	}
	return scales, mins
}

// superScale returns d with v ≈ d·k for k in 0..levels.
func superScale(v []float32, levels int) float32 {
	var m float32
	for _, s := range v {
		m = max(m, s)
	}
	return m / float32(levels)
}

// quantWithMin quantizes x with the decoded scale and min, unsigned to levels.
func quantWithMin(x, scale, mn float32, levels int) int {
	if scale == 0 {
		return 0
	}
	return clamp(roundf((x+mn)/scale), 0, levels)
}

func quantQ2_K(x []float32, b []byte) {
	scales, mins := fitMin(x, 16, 3)
	d, dmin := superScale(scales, 15), superScale(mins, 15)
	put16(b[80:], d)
	put16(b[82:], dmin)
	d, dmin = f16(b[80:]), f16(b[82:])
	qs := b[16:80]
	clear(qs)
	for s := 0; s < 16; s++ {
		sc := clamp(roundf(scales[s]*inv(d)), 0, 15)
		m := clamp(roundf(mins[s]*inv(dmin)), 0, 15)
		b[s] = byte(sc) | byte(m)<<4
		dl, ml := d*float32(sc), dmin*float32(m)
		// Sub-block s holds elements 16s..16s+15: half s/8, plane (s%8)/2, group s%2.
		half, shift, g := s/8, uint(2*((s%8)/2)), s%2
		for l := 0; l < 16; l++ {
			q := quantWithMin(x[16*s+l], dl, ml, 3)
			qs[32*half+16*g+l] |= byte(q) << shift
		}
	}
}

func quantQ3_K(x []float32, b []byte) {
	var scales [16]float32
	for s := 0; s < 16; s++ {
		scales[s] = signedAbsMax(x[16*s:16*s+16]) / -4
	}
	d := signedAbsMax(scales[:]) / -32
	put16(b[108:], d)
	d = f16(b[108:])
	hm, qs, sb := b[0:32], b[32:96], b[96:108]
	clear(hm)
	clear(qs)
	clear(sb)
	for s := 0; s < 16; s++ {
		sc := clamp(roundf(scales[s]*inv(d)), -32, 31)
		u := byte(sc + 32)
		if s < 8 {
			sb[s] |= u & 0xf
		} else {
			sb[s-8] |= (u & 0xf) << 4
		}
		sb[8+s%4] |= (u >> 4) << (2 * uint(s/4))
		dl := d * float32(sc)
		half, plane, g := s/8, (s%8)/2, s%2
		for l := 0; l < 16; l++ {
			q := 0
			if dl != 0 {
				q = clamp(roundf(x[16*s+l]/dl), -4, 3)
			}
			u := q + 4 // 0..7: low 2 bits in qs, bit 2 in hmask
			qs[32*half+16*g+l] |= byte(u&3) << (2 * uint(plane))
			if u&4 != 0 {
				hm[16*g+l] |= 1 << uint(4*half+plane)
			}
		}
	}
}

// packScaleMinK4 is the inverse of ScaleMinK4: 8 six-bit scales and mins
// into 12 bytes.
func packScaleMinK4(sc, m [8]int, q []byte) {
	clear(q[:12])
	for j := 0; j < 8; j++ {
		if j < 4 {
			q[j] = byte(sc[j])
			q[j+4] = byte(m[j])
		} else {
			q[j+4] = byte(sc[j]&0xf) | byte(m[j]&0xf)<<4
			q[j-4] |= byte(sc[j]>>4) << 6
			q[j] |= byte(m[j]>>4) << 6
		}
	}
}

// quantK4K5 is Q4_K (levels 15) and Q5_K (levels 31): 8 sub-blocks of 32.
func quantK4K5(x []float32, levels int) (d, dmin float32, sc, m [8]int, q [256]int) {
	scales, mins := fitMin(x, 32, levels)
	d, dmin = F16ToF32(F32ToF16(superScale(scales, 63))), F16ToF32(F32ToF16(superScale(mins, 63)))
	for s := 0; s < 8; s++ {
		sc[s] = clamp(roundf(scales[s]*inv(d)), 0, 63)
		m[s] = clamp(roundf(mins[s]*inv(dmin)), 0, 63)
		dl, ml := d*float32(sc[s]), dmin*float32(m[s])
		for l := 0; l < 32; l++ {
			q[32*s+l] = quantWithMin(x[32*s+l], dl, ml, levels)
		}
	}
	return
}

func quantQ4_K(x []float32, b []byte) {
	d, dmin, sc, m, q := quantK4K5(x, 15)
	put16(b, d)
	put16(b[2:], dmin)
	packScaleMinK4(sc, m, b[4:16])
	qs := b[16:144]
	for c := 0; c < 4; c++ {
		for l := 0; l < 32; l++ {
			qs[32*c+l] = byte(q[64*c+l]) | byte(q[64*c+32+l])<<4
		}
	}
}

func quantQ5_K(x []float32, b []byte) {
	d, dmin, sc, m, q := quantK4K5(x, 31)
	put16(b, d)
	put16(b[2:], dmin)
	packScaleMinK4(sc, m, b[4:16])
	qh, qs := b[16:48], b[48:176]
	clear(qh)
	for c := 0; c < 4; c++ {
		for l := 0; l < 32; l++ {
			lo, hi := q[64*c+l], q[64*c+32+l]
			qs[32*c+l] = byte(lo&0xf) | byte(hi&0xf)<<4
			qh[l] |= byte(lo>>4&1)<<(2*c) | byte(hi>>4&1)<<(2*c+1)
		}
	}
}

func quantQ6_K(x []float32, b []byte) {
	var scales [16]float32
	for s := 0; s < 16; s++ {
		scales[s] = signedAbsMax(x[16*s:16*s+16]) / -32
	}
	d := signedAbsMax(scales[:]) / -128
	put16(b[208:], d)
	d = f16(b[208:])
	ql, qh, sb := b[0:128], b[128:192], b[192:208]
	clear(ql)
	clear(qh)
	var q [256]int
	for s := 0; s < 16; s++ {
		sc := clamp(roundf(scales[s]*inv(d)), -128, 127)
		sb[s] = byte(int8(sc))
		dl := d * float32(sc)
		for l := 0; l < 16; l++ {
			v := 0
			if dl != 0 {
				v = clamp(roundf(x[16*s+l]/dl), -32, 31)
			}
			q[16*s+l] = v + 32
		}
	}
	for half := 0; half < 2; half++ {
		for l := 0; l < 32; l++ {
			base := 128 * half
			q1, q2, q3, q4 := q[base+l], q[base+l+32], q[base+l+64], q[base+l+96]
			ql[64*half+l] = byte(q1&0xf) | byte(q3&0xf)<<4
			ql[64*half+l+32] = byte(q2&0xf) | byte(q4&0xf)<<4
			qh[32*half+l] = byte(q1>>4) | byte(q2>>4)<<2 | byte(q3>>4)<<4 | byte(q4>>4)<<6
		}
	}
}
