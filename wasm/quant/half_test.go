package quant

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestF16RoundTripsEveryValue(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		assert.Equal(t, uint16(h), F32ToF16(f), "h=%#04x f=%g", h, f)
	}
}

func TestF32ToF16Rounding(t *testing.T) {
	cases := []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3c00},
		{"max", 65504, 0x7bff},
		{"overflow", 65520, 0x7c00},
		{"smallest subnormal", 5.960464477539063e-08, 0x0001},
		{"below half the smallest subnormal", 2.9e-08, 0x0000},
		{"tie to even (down)", 1 + 1.0/2048, 0x3c00},
		{"tie to even (up)", 1 + 3.0/2048, 0x3c02},
		{"negative", -2, 0xc000},
		{"inf", float32(math.Inf(1)), 0x7c00},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, F32ToF16(tc.in))
		})
	}
	assert.True(t, math.IsNaN(float64(F16ToF32(F32ToF16(float32(math.NaN()))))))
}

func TestBF16(t *testing.T) {
	assert.Equal(t, uint16(0x3f80), F32ToBF16(1))
	assert.Equal(t, float32(1), BF16ToF32(0x3f80))
	assert.Equal(t, uint16(0x3f80), F32ToBF16(1+1.0/256), "tie rounds to even")
	assert.Equal(t, uint16(0x3f82), F32ToBF16(1+3.0/256))
	assert.True(t, math.IsNaN(float64(BF16ToF32(F32ToBF16(float32(math.NaN()))))))
}
