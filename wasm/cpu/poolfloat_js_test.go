//go:build js

package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// siluGo is wasm/model's SiLU·up loop, the reference the pool's must equal.
func siluGo(gate, up []float32) {
	for i, g := range gate {
		gate[i] = g / (1 + float32(math.Exp(float64(-g)))) * up[i]
	}
}

// TestPoolSiLUEqualsGo: the pool's SiLU·up equals the Go loop bit for bit
// on a spread of values (around zero, where Go's exp takes its near-zero
// branch, and far out, where exp overflows or underflows), and past one
// call's poolSiLUChunk.
func TestPoolSiLUEqualsGo(t *testing.T) {
	if !PoolAttends() {
		t.Skip("no CPU pool here: ", poolWhy)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	n := poolSiLUChunk + 1000
	gate, up := make([]float32, n), make([]float32, n)
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-9, -1e-9, 3e-8, 88, -88, 89, -89, 104, -104, 740, -740, 1e30, -1e30,
		float32(math.Inf(1)), float32(math.Inf(-1)), 1.5, -2.25}
	for i := range gate {
		switch {
		case i < len(special):
			gate[i] = special[i]
		case i%3 == 0:
			gate[i] = float32(rng.NormFloat64() * 1e-3)
		default:
			gate[i] = float32(rng.NormFloat64() * 8)
		}
		up[i] = float32(rng.NormFloat64())
	}
	want := append([]float32(nil), gate...)
	siluGo(want, up)
	require.True(t, PoolSiLU(gate, up))
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(gate[i]) {
			t.Fatalf("element %d: SiLU(%g)·%g is %g on the pool, %g in Go", i, special[min(i, len(special)-1)], up[i], gate[i], want[i])
		}
	}
}

// attendGo is wasm/model's attention loop for one row, the reference the
// pool's must equal: each head's scaled scores, softmax (exp in float64,
// the sum in float64), and the weighted sum of values.
func attendGo(out, q, K, V []float32, end, heads, group, headDim, stride int, scale float32) {
	scores := make([]float32, end)
	for h := 0; h < heads; h++ {
		kvh := h / group
		qh := q[h*headDim : (h+1)*headDim]
		scoresGo(scores, qh, K[kvh*headDim:], stride)
		mx := float32(math.Inf(-1))
		for p := range scores {
			scores[p] *= scale
			mx = max(mx, scores[p])
		}
		var sum float64
		for p := range scores {
			e := float32(math.Exp(float64(scores[p] - mx)))
			scores[p] = e
			sum += float64(e)
		}
		inv := float32(1 / sum)
		o := out[h*headDim : (h+1)*headDim]
		clear(o)
		for p := range scores {
			scores[p] *= inv
		}
		addVGo(o, scores, V[kvh*headDim:], stride)
	}
}

// TestPoolAttendEqualsGo: attention on the pool equals the Go loops bit
// for bit, for a decode row, a prefill of 70 rows (past one call's
// poolMaxTokens) and a batch of two sequences; after positions are
// rewritten (a truncated sequence) the pool's copy of the cache follows
// Go's; a head dim with a tail (not a multiple of four) too.
func TestPoolAttendEqualsGo(t *testing.T) {
	if !PoolAttends() {
		t.Skip("no CPU pool here: ", poolWhy)
	}
	rng := rand.New(rand.NewPCG(13, 14))
	randomize := func(s []float32) {
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
	}
	for _, shape := range [][3]int{{9, 3, 64}, {4, 4, 18}} { // heads, KV heads, head dim
		heads, kvHeads, headDim := shape[0], shape[1], shape[2]
		group, stride, layers, positions := heads/kvHeads, kvHeads*headDim, 3, 128
		scale := 1 / float32(math.Sqrt(float64(headDim)))
		type seq struct {
			K, V [][]float32
			kv   *PoolKV
		}
		newSeq := func() *seq {
			s := &seq{K: make([][]float32, layers), V: make([][]float32, layers), kv: NewPoolKV(layers, positions, stride)}
			require.NotNil(t, s.kv)
			for l := range layers {
				s.K[l], s.V[l] = make([]float32, positions*stride), make([]float32, positions*stride)
			}
			return s
		}
		// write fills positions [from, to) of every layer, as the forward pass does.
		write := func(s *seq, from, to int) {
			for l := range layers {
				randomize(s.K[l][from*stride : to*stride])
				randomize(s.V[l][from*stride : to*stride])
				for p := from; p < to; p++ {
					s.kv.Wrote(l, p)
				}
			}
		}
		check := func(what string, layer int, seqs []*seq, ends []int) {
			rows := make([]AttendRow, len(ends))
			want := make([][]float32, len(ends))
			for i, end := range ends {
				s := seqs[i]
				q := make([]float32, heads*headDim)
				randomize(q)
				rows[i] = AttendRow{Q: q, Out: make([]float32, len(q)), K: s.K[layer], V: s.V[layer], KV: s.kv, End: end}
				want[i] = make([]float32, len(q))
				attendGo(want[i], q, s.K[layer], s.V[layer], end, heads, group, headDim, stride, scale)
			}
			require.True(t, PoolAttend(layer, heads, group, headDim, stride, scale, rows), what)
			for i := range rows {
				for e := range want[i] {
					if math.Float32bits(want[i][e]) != math.Float32bits(rows[i].Out[e]) {
						t.Fatalf("%s (head dim %d), row %d, element %d: %g on the pool, %g in Go", what, headDim, i, e, rows[i].Out[e], want[i][e])
					}
				}
			}
		}
		a, b := newSeq(), newSeq()
		write(a, 0, 70)
		ends := make([]int, 70)
		seqs := make([]*seq, 70)
		for i := range ends {
			ends[i], seqs[i] = i+1, a
		}
		for l := range layers {
			check("a prefill of 70", l, seqs, ends)
		}
		write(a, 70, 71)
		check("a decode row", 1, []*seq{a}, []int{71})
		write(b, 0, 5)
		check("two sequences", 2, []*seq{a, b}, []int{71, 5})
		write(a, 40, 41) // truncated to 40, then a new token there
		check("a rewritten position", 2, []*seq{a}, []int{41})
		a.kv.Free()
		b.kv.Free()
		require.False(t, PoolAttend(0, heads, group, headDim, stride, scale, []AttendRow{{Q: make([]float32, heads*headDim), Out: make([]float32, heads*headDim), K: a.K[0], V: a.V[0], KV: a.kv, End: 1}}),
			"a freed copy is not used")
	}
}
