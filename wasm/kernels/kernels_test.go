package kernels

import (
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

func TestPlanProduct(t *testing.T) {
	one := []Part{{Row0: 0, Rows: 96}}
	cpu, err := PlanProduct("Q8_0", Fusion{Norm: true}, one, Target{})
	require.NoError(t, err)
	assert.Equal(t, []Form{FormRow}, cpu.Forms)
	assert.Equal(t, "main_row", cpu.Kernels[0].EntryPoint)
	for _, T := range []int{1, 5, 100} {
		k, x, y, z := cpu.Choose(one[0], T)
		assert.Equal(t, 0, k, "CPU adapters: the row form for every step")
		assert.Equal(t, [3]uint32{2, uint32(T), 1}, [3]uint32{x, y, z})
	}

	gpu, err := PlanProduct("Q8_0", Fusion{Norm: true, Gated: true}, one, Target{Workgroups: true, Subgroups: true, MaxPerDim: 65535})
	require.NoError(t, err)
	assert.Equal(t, []Form{FormWG, FormBatch, FormTile}, gpu.Forms)
	assert.Equal(t, "matmul_q8_0+norm+gated+sg", gpu.Name)
	assert.NotContains(t, gpu.Kernels[2].Name, "+sg", "the tiles never use subgroups")
	for _, c := range []struct {
		T    int
		form Form
	}{{1, FormWG}, {2, FormBatch}, {MatMulBatchMax, FormBatch}, {MatMulBatchMax + 1, FormTile}, {512, FormTile}} {
		k, _, _, _ := gpu.Choose(one[0], c.T)
		assert.Equal(t, c.form, gpu.Forms[k], "T=%d", c.T)
	}
	_, x, _, z := gpu.Choose(one[0], 1)
	assert.Equal(t, uint32(96/2/MatMulRowsPerWorkgroup), x, "gated: half the rows are outputs")
	assert.Equal(t, uint32(1), z)

	// The transposed form for batched steps of products of enough rows,
	// where subgroups reduce and three tokens stage.
	wide := Target{Workgroups: true, Subgroups: true, MaxPerDim: 65535, StageTokens: 8, TransposedRows: 40}
	tr, err := PlanProduct("Q8_0", Fusion{Norm: true, Gated: true}, one, wide)
	require.NoError(t, err)
	assert.Equal(t, []Form{FormWG, FormBatch, FormTile, FormTransposed}, tr.Forms)
	assert.Equal(t, "main_wgt", tr.Kernels[3].EntryPoint)
	k, x, _, z := tr.Choose(one[0], 4)
	assert.Equal(t, FormTransposed, tr.Forms[k], "48 outputs: at least 40")
	assert.Equal(t, [2]uint32{3, 1}, [2]uint32{x, z}, "16 gated outputs a workgroup")
	k, _, _, _ = tr.Choose(Part{Rows: 64}, 4)
	assert.Equal(t, FormBatch, tr.Forms[k], "32 outputs: too few")
	k, _, _, _ = tr.Choose(one[0], 1)
	assert.Equal(t, FormWG, tr.Forms[k], "one token: main_wg")
	for _, t2 := range []Target{{Workgroups: true, StageTokens: 8, TransposedRows: 40}, {Workgroups: true, Subgroups: true, StageTokens: 2, TransposedRows: 40}} {
		p, err := PlanProduct("Q8_0", Fusion{Norm: true}, one, t2)
		require.NoError(t, err)
		assert.NotContains(t, p.Forms, FormTransposed, "without subgroups or room for three tokens")
	}

	parts := Parts(10, 100, 350)
	assert.Equal(t, []Part{{0, 3}, {3, 3}, {6, 3}, {9, 1}}, parts)
	assert.Equal(t, []Part{{0, 1}, {1, 1}, {2, 1}, {3, 1}}, Parts(4, 1000, 10), "at least a row a part")
	_, err = PlanProduct("Q8_0", Fusion{Bias: true}, parts, Target{})
	assert.Error(t, err, "a biased product cannot be split")
	_, err = PlanProduct("IQ2_XS", Fusion{}, one, Target{})
	assert.Error(t, err)

	assert.Equal(t, 256, AttentionWorkgroup(Target{Workgroups: true}))
	assert.Equal(t, 64, AttentionWorkgroup(Target{}))
	assert.True(t, ArgmaxSplits(Target{Workgroups: true}, 128256))
	assert.False(t, ArgmaxSplits(Target{}, 128256))
	assert.False(t, ArgmaxSplits(Target{Workgroups: true}, 4096))
}
