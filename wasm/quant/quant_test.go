package quant

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
)

func randomRow(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// maxRelErr is the worst error of each type's round trip on N(0,1) data,
// relative to the block's largest magnitude: about half a quantization step
// (range / levels / 2), with room for the sub-block scales' own rounding.
var maxRelErr = map[gguf.Type]float64{
	gguf.TypeF32:  0,
	gguf.TypeF16:  1e-3,
	gguf.TypeBF16: 8e-3,
	gguf.TypeQ8_0: 1.0 / 127,
	gguf.TypeQ4_0: 1.0 / 8,
	gguf.TypeQ4_1: 0.08,
	gguf.TypeQ5_0: 1.0 / 16,
	gguf.TypeQ5_1: 0.04,
	gguf.TypeQ2_K: 0.45,
	gguf.TypeQ3_K: 0.25,
	gguf.TypeQ4_K: 0.12,
	gguf.TypeQ5_K: 0.06,
	gguf.TypeQ6_K: 0.04,
}

func TestRoundTripEveryType(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, typ := range Supported {
		t.Run(typ.String(), func(t *testing.T) {
			x := randomRow(rng, 4*256)
			b, err := Quantize(typ, x)
			require.NoError(t, err)
			require.Len(t, b, int(typ.RowBytes(int64(len(x)))))
			y := make([]float32, len(x))
			require.NoError(t, Dequantize(typ, b, y))
			bs := max(typ.BlockSize(), 32)
			worst := 0.0
			for blk := 0; blk < len(x)/bs; blk++ {
				var amax float64
				for _, v := range x[blk*bs : (blk+1)*bs] {
					amax = math.Max(amax, math.Abs(float64(v)))
				}
				for i := blk * bs; i < (blk+1)*bs; i++ {
					worst = math.Max(worst, math.Abs(float64(y[i]-x[i]))/amax)
				}
			}
			t.Logf("%s: worst error %.4f of the block's max", typ, worst)
			assert.LessOrEqual(t, worst, maxRelErr[typ])

			// Quantizing what was dequantized gives the same blocks back
			// (exactly for the 32-element types; the K-quants refit scales).
			if typ.BlockSize() == 32 || typ.BlockSize() == 1 {
				b2, err := Quantize(typ, y)
				require.NoError(t, err)
				y2 := make([]float32, len(x))
				require.NoError(t, Dequantize(typ, b2, y2))
				assert.Equal(t, y, y2)
			}
		})
	}
}

func TestHandBuiltBlocks(t *testing.T) {
	one := F32ToF16(1)
	half := F32ToF16(0.5)
	t.Run("Q4_0 nibble order", func(t *testing.T) {
		b := make([]byte, 18)
		b[0], b[1] = byte(one), byte(one>>8)
		b[2] = 0x21 // element 0: 1−8, element 16: 2−8
		for i := 3; i < 18; i++ {
			b[i] = 0x88
		}
		y := make([]float32, 32)
		require.NoError(t, Dequantize(gguf.TypeQ4_0, b, y))
		assert.Equal(t, float32(-7), y[0])
		assert.Equal(t, float32(-6), y[16])
		assert.Equal(t, float32(0), y[1])
	})
	t.Run("Q5_0 high bits", func(t *testing.T) {
		b := make([]byte, 22)
		b[0], b[1] = byte(one), byte(one>>8)
		b[2] = 1    // qh bit 0: 5th bit of element 0
		b[5] = 0x80 // qh bit 31: 5th bit of element 31
		y := make([]float32, 32)
		require.NoError(t, Dequantize(gguf.TypeQ5_0, b, y))
		assert.Equal(t, float32(0), y[0])   // 16−16
		assert.Equal(t, float32(-16), y[1]) // 0−16
		assert.Equal(t, float32(0), y[31])
	})
	t.Run("Q8_0 scale", func(t *testing.T) {
		b := make([]byte, 34)
		b[0], b[1] = byte(half), byte(half>>8)
		b[2], b[33] = 0xfe, 100 // −2, 100
		y := make([]float32, 32)
		require.NoError(t, Dequantize(gguf.TypeQ8_0, b, y))
		assert.Equal(t, float32(-1), y[0])
		assert.Equal(t, float32(50), y[31])
	})
	t.Run("Q6_K element order", func(t *testing.T) {
		b := make([]byte, 210)
		b[208], b[209] = byte(one), byte(one>>8)
		for s := 0; s < 16; s++ {
			b[192+s] = byte(s + 1) // scale of sub-block s is s+1
		}
		// All quants 32 (zero) except element 64+5 (ql[5] high nibble) = 33.
		for i := 0; i < 128; i++ {
			b[i] = 0x00
		}
		for i := 128; i < 192; i++ {
			b[i] = 0xaa // high bits 2 for every element: q = 32 + low
		}
		b[5] = 0x10
		y := make([]float32, 256)
		require.NoError(t, Dequantize(gguf.TypeQ6_K, b, y))
		for i, v := range y {
			if i == 69 {
				assert.Equal(t, float32(5), v, "element 69 is in sub-block 4 (scale 5), q=1")
			} else {
				assert.Equal(t, float32(0), v, "element %d", i)
			}
		}
	})
}

func TestErrors(t *testing.T) {
	_, err := Quantize(gguf.TypeIQ2_XS, make([]float32, 256))
	assert.ErrorContains(t, err, "cannot quantize to IQ2_XS")
	_, err = Quantize(gguf.TypeQ4_0, make([]float32, 31))
	assert.ErrorContains(t, err, "whole number")
	assert.ErrorContains(t, Dequantize(gguf.TypeIQ2_XS, nil, nil), "unsupported tensor type IQ2_XS")
	assert.ErrorContains(t, Dequantize(gguf.TypeQ8_0, make([]byte, 33), make([]float32, 32)), "do not encode")
	assert.False(t, IsSupported(gguf.TypeIQ4_NL))
	assert.True(t, IsSupported(gguf.TypeQ3_K))
}
