package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/quant"
)

// activationValues is what the prepared activations stand for: the exact
// values the integer kernels multiply by.
func activationValues(t gguf.Type, a *Activations) []float64 {
	out := make([]float64, len(a.X))
	a.prepareFor(t)
	for i := range out {
		switch t {
		case gguf.TypeF32:
			out[i] = float64(a.X[i])
		case gguf.TypeF16, gguf.TypeBF16:
			out[i] = float64(a.h[i])
		case gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K:
			out[i] = float64(a.qk[i]) * float64(a.dk[i/256])
		default:
			out[i] = float64(a.q8[i]) * float64(a.d8[i/32])
		}
	}
	return out
}

// TestMatVecEveryTypeAgainstReference checks each type's product, with
// the kernel chosen on this CPU, against the plain reference.
func TestMatVecEveryTypeAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const rows, cols = 37, 512
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, typ := range quant.Supported {
		t.Run(typ.String(), func(t *testing.T) {
			w := randomWeight(t, rng, typ, rows, cols)
			var a Activations
			a.Prepare(x)
			y := make([]float32, rows)
			MatVec(y, w, &a)
			assertMatchesReference(t, w, &a, y, 0, rows)

			// Batched rows give the same numbers.
			var b Activations
			b.Prepare(x)
			ys := [][]float32{make([]float32, rows), make([]float32, rows)}
			MatMul(ys, w, []*Activations{&a, &b})
			assert.Equal(t, y, ys[0])
			assert.Equal(t, y, ys[1])
		})
	}
}

// assertMatchesReference checks rows lo to hi of y = w·a against the
// dequantized weights times the values the prepared activations stand for,
// summed in float64. The difference is float32 rounding only, so DotBound
// applies.
func assertMatchesReference(t *testing.T, w Weight, a *Activations, y []float32, lo, hi int) {
	t.Helper()
	av := activationValues(w.Type, a)
	deq := make([]float32, w.Cols)
	for r := lo; r < hi; r++ {
		require.NoError(t, w.DequantizeRow(r, deq))
		var want, abs float64
		for c := range deq {
			p := float64(deq[c]) * av[c]
			want += p
			abs += math.Abs(p)
		}
		// Per-block scales are multiplied before summing, which adds a
		// few roundings per block on top of the dot product's own.
		bound := kernels.DotBound(w.Cols, abs, float32(want)) * 4
		assert.InDelta(t, want, float64(y[r]), bound, "%s row %d", w.Type, r)
	}
}

// randomBatch is n tokens of cols normal activations drawn from rng (each
// token's in turn), prepared as vectors, and a result row of rows for each.
func randomBatch(rng *rand.Rand, n, rows, cols int) ([]*Activations, [][]float32) {
	as := make([]*Activations, n)
	ys := make([][]float32, n)
	for i := range as {
		x := make([]float32, cols)
		for j := range x {
			x[j] = float32(rng.NormFloat64())
		}
		as[i] = &Activations{}
		as[i].Prepare(x)
		ys[i] = make([]float32, rows)
	}
	return as, ys
}

// randomWeight is a rows×cols weight of type typ quantized from normal
// values of deviation 0.1 drawn from rng.
func randomWeight(t *testing.T, rng *rand.Rand, typ gguf.Type, rows, cols int) Weight {
	t.Helper()
	wf := make([]float32, rows*cols)
	for i := range wf {
		wf[i] = float32(rng.NormFloat64() * 0.1)
	}
	data, err := quant.Quantize(typ, wf)
	require.NoError(t, err)
	w, err := NewWeight("w", typ, rows, cols, data)
	require.NoError(t, err)
	return w
}

func TestNewWeightErrors(t *testing.T) {
	_, err := NewWeight("blk.0.attn_q.weight", gguf.TypeIQ2_XS, 1, 256, make([]byte, 74))
	assert.EqualError(t, err, "unsupported tensor type IQ2_XS for blk.0.attn_q.weight")
	_, err = NewWeight("w", gguf.TypeQ8_0, 1, 33, nil)
	assert.ErrorContains(t, err, "block size")
	_, err = NewWeight("w", gguf.TypeQ8_0, 2, 32, make([]byte, 34))
	assert.ErrorContains(t, err, "want 68")
}

// TestExactActivations checks the f32-activation path (the reference for
// WebGPU) against dequantized weights times the unquantized input.
func TestExactActivations(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const rows, cols = 9, 512
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, typ := range quant.Supported {
		w := randomWeight(t, rng, typ, rows, cols)
		a := Activations{Exact: true}
		a.Prepare(x)
		y := make([]float32, rows)
		MatVec(y, w, &a)
		deq := make([]float32, cols)
		for r := 0; r < rows; r++ {
			require.NoError(t, w.DequantizeRow(r, deq))
			want, abs := kernels.MatVecRef(deq, x, 1, cols)
			assert.InDelta(t, want[0], y[r], kernels.DotBound(cols, abs[0], want[0]), "%s row %d", typ, r)
		}
	}
}

// TestQuantizeQ8VectorIsExact checks the vector Q8_0 quantizer, where
// this CPU has one, against the Go loop bit for bit: random blocks, an
// all-zero block, halves that must round to even, and a block whose
// largest value is negative.
func TestQuantizeQ8VectorIsExact(t *testing.T) {
	if quantizeQ8Vector == nil {
		t.Skip("no vector quantizer on this CPU")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const nb = 40
	x := make([]float32, 32*nb)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(i%7-3)))
	}
	clear(x[32:64])
	for j := range 32 { // amax 127: x·id is x itself, so halves stay halves
		x[64+j] = float32(j) - 15.5
	}
	x[64+31] = 127
	x[96] = -1e3
	q1, q2 := make([]int8, len(x)), make([]int8, len(x))
	a1, a2 := make([]float32, nb), make([]float32, nb)
	s1, s2 := make([]int32, nb), make([]int32, nb)
	quantizeQ8Go(x, q1, a1, s1)
	quantizeQ8Vector(x, q2, a2, s2)
	assert.Equal(t, q1, q2)
	assert.Equal(t, a1, a2)
	assert.Equal(t, s1, s2)
	assert.Equal(t, int8(-16), q1[64+0], "−15.5 rounds to even")
	assert.Equal(t, int8(-14), q1[64+1], "−14.5 rounds to even")
}
