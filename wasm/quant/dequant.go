// Package quant holds the tensor element types of GGUF files: their block
// layouts, dequantization of every supported type, quantization (to make
// fixture models), and dot products that run on the quantized blocks
// themselves, so weights never need a dequantized copy.
//
// In: raw block bytes as stored in a GGUF file. Out: float32 values, block
// bytes, or dot products. Layouts follow ggml-common.h (ggml-org/ggml); each
// is tested against hand-built blocks and round trips.
package quant

import (
	"encoding/binary"
	"fmt"

	"github.com/webinfer/webinfer/wasm/gguf"
)

// Supported lists the tensor types the engine computes with.
var Supported = []gguf.Type{
	gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16,
	gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_1, gguf.TypeQ5_0, gguf.TypeQ5_1,
	gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K,
}

// IsSupported reports whether t is in Supported.
func IsSupported(t gguf.Type) bool { return dequantizers[t] != nil }

// qk is the number of elements of a K-quant super-block.
const qk = 256

var dequantizers = map[gguf.Type]func(b []byte, y []float32){
	gguf.TypeF32:  dequantF32,
	gguf.TypeF16:  dequantF16,
	gguf.TypeBF16: dequantBF16,
	gguf.TypeQ8_0: dequantQ8_0,
	gguf.TypeQ4_0: dequantQ4_0,
	gguf.TypeQ4_1: dequantQ4_1,
	gguf.TypeQ5_0: dequantQ5_0,
	gguf.TypeQ5_1: dequantQ5_1,
	gguf.TypeQ2_K: dequantQ2_K,
	gguf.TypeQ3_K: dequantQ3_K,
	gguf.TypeQ4_K: dequantQ4_K,
	gguf.TypeQ5_K: dequantQ5_K,
	gguf.TypeQ6_K: dequantQ6_K,
}

// Dequantize expands the blocks in src into dst, which must hold exactly
// the elements they encode.
func Dequantize(t gguf.Type, src []byte, dst []float32) error {
	f := dequantizers[t]
	if f == nil {
		return fmt.Errorf("quant: unsupported tensor type %s", t)
	}
	bs, bb := t.BlockSize(), t.BlockBytes()
	if len(dst)%bs != 0 || len(src) != len(dst)/bs*bb {
		return fmt.Errorf("quant: %s: %d bytes do not encode %d elements", t, len(src), len(dst))
	}
	for i := 0; i < len(dst)/bs; i++ {
		f(src[i*bb:(i+1)*bb], dst[i*bs:(i+1)*bs])
	}
	return nil
}

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func f16(b []byte) float32 { return F16ToF32(le16(b)) }

func dequantF32(b []byte, y []float32)  { y[0] = float32frombits(binary.LittleEndian.Uint32(b)) }
func dequantF16(b []byte, y []float32)  { y[0] = f16(b) }
func dequantBF16(b []byte, y []float32) { y[0] = BF16ToF32(le16(b)) }

// Q8_0: d f16, qs [32]int8; x = d·q.
func dequantQ8_0(b []byte, y []float32) {
	d := f16(b)
	for j := 0; j < 32; j++ {
		y[j] = float32(int8(b[2+j])) * d
	}
}

// Q4_0: d f16, qs [16]u8; element j in the low nibble of qs[j], element
// j+16 in its high nibble; x = d·(q−8).
func dequantQ4_0(b []byte, y []float32) {
	d := f16(b)
	qs := b[2:18]
	for j := 0; j < 16; j++ {
		y[j] = float32(int(qs[j]&0xf)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

// Q4_1: d f16, m f16, qs [16]u8; x = d·q + m.
func dequantQ4_1(b []byte, y []float32) {
	d, m := f16(b), f16(b[2:])
	qs := b[4:20]
	for j := 0; j < 16; j++ {
		y[j] = float32(qs[j]&0xf)*d + m
		y[j+16] = float32(qs[j]>>4)*d + m
	}
}

// Q5_0: d f16, qh u32 (bit j: 5th bit of element j), qs [16]u8;
// x = d·(q−16).
func dequantQ5_0(b []byte, y []float32) {
	d := f16(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	qs := b[6:22]
	for j := 0; j < 16; j++ {
		h0 := byte(qh>>j<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(int(qs[j]&0xf|h0)-16) * d
		y[j+16] = float32(int(qs[j]>>4|h1)-16) * d
	}
}

// Q5_1: d f16, m f16, qh u32, qs [16]u8; x = d·q + m.
func dequantQ5_1(b []byte, y []float32) {
	d, m := f16(b), f16(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	qs := b[8:24]
	for j := 0; j < 16; j++ {
		h0 := byte(qh>>j<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(qs[j]&0xf|h0)*d + m
		y[j+16] = float32(qs[j]>>4|h1)*d + m
	}
}

// Q2_K: scales [16]u8 (low nibble scale, high nibble min, per 16
// elements), qs [64]u8 (2 bits each), d f16, dmin f16.
// Element order: two halves of 128; in each, four 2-bit planes (shift 0, 2,
// 4, 6) of qs[0:32], each plane 32 elements in two groups of 16.
func dequantQ2_K(b []byte, y []float32) {
	scales, qs := b[0:16], b[16:80]
	d, dmin := f16(b[80:]), f16(b[82:])
	is, out := 0, 0
	for half := 0; half < 2; half++ {
		q := qs[half*32 : half*32+32]
		for shift := uint(0); shift < 8; shift += 2 {
			for g := 0; g < 2; g++ {
				sc := scales[is]
				is++
				dl, ml := d*float32(sc&0xf), dmin*float32(sc>>4)
				for l := 0; l < 16; l++ {
					y[out] = dl*float32((q[g*16+l]>>shift)&3) - ml
					out++
				}
			}
		}
	}
}

// Q3KScales unpacks the 16 signed 6-bit scales of a Q3_K block (12 bytes:
// low 4 bits of scale j in byte j%8 (low nibble for j<8, high for j≥8),
// high 2 bits in byte 8+j%4 at bit 2·(j/4)).
func Q3KScales(s []byte) [16]int {
	var out [16]int
	for j := 0; j < 16; j++ {
		var lo byte
		if j < 8 {
			lo = s[j] & 0xf
		} else {
			lo = s[j-8] >> 4
		}
		hi := (s[8+j%4] >> (2 * uint(j/4))) & 3
		out[j] = int(lo|hi<<4) - 32
	}
	return out
}

// Q3_K: hmask [32]u8 (3rd bit), qs [64]u8 (low 2 bits), scales [12]u8
// (16 × 6-bit), d f16. x = d·scale·(q − (hbit ? 0 : 4)).
func dequantQ3_K(b []byte, y []float32) {
	hm, qs, sc := b[0:32], b[32:96], Q3KScales(b[96:108])
	d := f16(b[108:])
	is, out := 0, 0
	m := byte(1)
	for half := 0; half < 2; half++ {
		q := qs[half*32 : half*32+32]
		for shift := uint(0); shift < 8; shift += 2 {
			for g := 0; g < 2; g++ {
				dl := d * float32(sc[is])
				is++
				for l := 0; l < 16; l++ {
					v := int((q[g*16+l] >> shift) & 3)
					if hm[g*16+l]&m == 0 {
						v -= 4
					}
					y[out] = dl * float32(v)
					out++
				}
			}
			m <<= 1
		}
	}
}

// ScaleMinK4 unpacks scale and min j (0..7) of a Q4_K/Q5_K block's 12
// bytes of 6-bit scales and mins.
func ScaleMinK4(j int, q []byte) (sc, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// Q4_K: d f16, dmin f16, scales [12]u8, qs [128]u8. Four chunks of 64
// elements: 32 low nibbles then 32 high nibbles of qs[32·c:32·c+32], each
// 32 with their own scale and min. x = d·sc·q − dmin·m.
func dequantQ4_K(b []byte, y []float32) {
	d, dmin := f16(b), f16(b[2:])
	scales, qs := b[4:16], b[16:144]
	for c := 0; c < 4; c++ {
		sc1, m1 := ScaleMinK4(2*c, scales)
		sc2, m2 := ScaleMinK4(2*c+1, scales)
		d1, mm1 := d*float32(sc1), dmin*float32(m1)
		d2, mm2 := d*float32(sc2), dmin*float32(m2)
		q := qs[32*c : 32*c+32]
		for l := 0; l < 32; l++ {
			y[64*c+l] = d1*float32(q[l]&0xf) - mm1
			y[64*c+32+l] = d2*float32(q[l]>>4) - mm2
		}
	}
}

// Q5_K: as Q4_K plus qh [32]u8 holding the 5th bits: for chunk c, bit 2c
// of qh[l] for the low-nibble element l, bit 2c+1 for the high one.
func dequantQ5_K(b []byte, y []float32) {
	d, dmin := f16(b), f16(b[2:])
	scales, qh, qs := b[4:16], b[16:48], b[48:176]
	for c := 0; c < 4; c++ {
		sc1, m1 := ScaleMinK4(2*c, scales)
		sc2, m2 := ScaleMinK4(2*c+1, scales)
		d1, mm1 := d*float32(sc1), dmin*float32(m1)
		d2, mm2 := d*float32(sc2), dmin*float32(m2)
		u1, u2 := byte(1)<<(2*c), byte(2)<<(2*c)
		q := qs[32*c : 32*c+32]
		for l := 0; l < 32; l++ {
			lo, hi := float32(q[l]&0xf), float32(q[l]>>4)
			if qh[l]&u1 != 0 {
				lo += 16
			}
			if qh[l]&u2 != 0 {
				hi += 16
			}
			y[64*c+l] = d1*lo - mm1
			y[64*c+32+l] = d2*hi - mm2
		}
	}
}

// Q6_K: ql [128]u8 (low 4 bits), qh [64]u8 (high 2 bits), scales [16]int8,
// d f16. Two halves of 128 elements; in each, element l+32k (k=0..3) takes
// nibble k/2 of ql[l+32(k%2)] and bits 2k..2k+1 of qh[l]; x = d·sc·(q−32).
func dequantQ6_K(b []byte, y []float32) {
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	d := f16(b[208:])
	for half := 0; half < 2; half++ {
		l4, h2, s := ql[64*half:], qh[32*half:], sc[8*half:]
		out := y[128*half:]
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int(l4[l]&0xf|(h2[l]&3)<<4) - 32
			q2 := int(l4[l+32]&0xf|((h2[l]>>2)&3)<<4) - 32
			q3 := int(l4[l]>>4|((h2[l]>>4)&3)<<4) - 32
			q4 := int(l4[l+32]>>4|((h2[l]>>6)&3)<<4) - 32
			out[l] = d * float32(int8(s[is])) * float32(q1)
			out[l+32] = d * float32(int8(s[is+2])) * float32(q2)
			out[l+64] = d * float32(int8(s[is+4])) * float32(q3)
			out[l+96] = d * float32(int8(s[is+6])) * float32(q4)
		}
	}
}
