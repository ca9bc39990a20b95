package kernels

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMatVecRefSmall(t *testing.T) {
	// [1 2; 3 4] · [1, -1] = [-1, -1]
	y, abs := MatVecRef([]float32{1, 2, 3, 4}, []float32{1, -1}, 2, 2)
	assert.Equal(t, []float32{-1, -1}, y)
	assert.Equal(t, []float64{3, 7}, abs)
}

func TestCompareMatVecCatchesWrongResults(t *testing.T) {
	want, abs := MatVecRef([]float32{1, 2, 3, 4}, []float32{1, -1}, 2, 2)
	assert.True(t, CompareMatVec(want, want, abs, 2).OK())
	off := []float32{-1, -1.001}
	c := CompareMatVec(off, want, abs, 2)
	assert.False(t, c.OK())
	assert.Equal(t, 1, c.Failures)
	assert.Equal(t, 1, c.WorstRow)
	assert.False(t, CompareMatVec(want[:1], want, abs, 2).OK(), "length mismatch must fail")
}

func TestDotBoundScalesWithLengthAndMagnitude(t *testing.T) {
	assert.Less(t, DotBound(10, 1, 0), DotBound(1000, 1, 0))
	assert.Less(t, DotBound(10, 1, 0), DotBound(10, 100, 0))
	// 1000 terms of magnitude ~1: about 6e-5, well under float32 noise of a
	// wrong index or a dropped tile (order 1).
	assert.InDelta(t, 1000.0/(1<<24), DotBound(1000, 1, 0), 1e-7)
}

func TestMatVecF32Kernel(t *testing.T) {
	k, err := MatVecF32(64)
	require.NoError(t, err)
	assert.Equal(t, "main", k.EntryPoint)
	assert.Equal(t, 64.0, k.Constants["WORKGROUP_SIZE"])
	assert.True(t, strings.Contains(k.WGSL, "override WORKGROUP_SIZE"))
	for _, bad := range []int{0, 3, 512} {
		_, err := MatVecF32(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, []byte{3, 0, 0, 0, 0, 1, 0, 0}, MatVecParams(3, 256))
}

func TestGrid(t *testing.T) {
	cases := []struct {
		name          string
		n, wg, maxDim int
		wantX, wantY  uint32
	}{
		{"empty still dispatches one", 0, 64, 65535, 1, 1},
		{"exact", 128, 64, 65535, 2, 1},
		{"partial", 129, 64, 65535, 3, 1},
		{"spills into y", 70000, 1, 65535, 65535, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, y := Grid(tc.n, tc.wg, tc.maxDim)
			assert.Equal(t, tc.wantX, x)
			assert.Equal(t, tc.wantY, y)
			assert.GreaterOrEqual(t, int(x)*int(y)*tc.wg, tc.n)
		})
	}
}
