//go:build js

package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
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

// TestPoolAttendEqualsGo: attention on the pool, over a cache in its
// memory that each row writes its key and value into, equals the Go loops
// over the same cache in Go's memory bit for bit: a prefill of 70 rows
// (past one call's poolMaxTokens), a decode row, a batch of two
// sequences, a position written again (a truncated sequence), and after
// the cache grew (its rows kept); a head dim with a tail (not a multiple
// of four) too.
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
		// seq is a sequence's cache twice: in Go's memory (the reference's)
		// and in the pool's.
		type seq struct {
			K, V [][]float32
			kv   *PoolKV
		}
		newSeq := func() *seq {
			s := &seq{K: make([][]float32, layers), V: make([][]float32, layers), kv: NewPoolKV(layers, positions, stride)}
			require.NotNil(t, s.kv)
			for l := range layers {
				s.K[l], s.V[l] = make([]float32, 2*positions*stride), make([]float32, 2*positions*stride)
			}
			return s
		}
		// check runs rows of layer, row i of sequence seqs[i] at position
		// pos[i], writing a new key and value there, against the reference.
		check := func(what string, layer int, seqs []*seq, pos []int) {
			rows := make([]AttendRow, len(pos))
			for i, p := range pos {
				s := seqs[i]
				q := make([]float32, heads*headDim)
				randomize(q)
				k, v := s.K[layer][p*stride:(p+1)*stride], s.V[layer][p*stride:(p+1)*stride]
				randomize(k)
				randomize(v)
				rows[i] = AttendRow{Q: q, Out: make([]float32, len(q)), NewK: k, NewV: v, Pos: p, KV: s.kv, End: p + 1}
			}
			require.True(t, PoolAttend(layer, heads, group, headDim, stride, scale, rows), what)
			for i, r := range rows {
				want := make([]float32, len(r.Q))
				s := seqs[i]
				attendGo(want, r.Q, s.K[layer], s.V[layer], r.End, heads, group, headDim, stride, scale)
				for e := range want {
					if math.Float32bits(want[e]) != math.Float32bits(r.Out[e]) {
						t.Fatalf("%s (head dim %d), row %d, element %d: %g on the pool, %g in Go", what, headDim, i, e, r.Out[e], want[e])
					}
				}
			}
		}
		a, b := newSeq(), newSeq()
		pos := make([]int, 70)
		seqs := make([]*seq, 70)
		for i := range pos {
			pos[i], seqs[i] = i, a
		}
		for l := range layers {
			check("a prefill of 70", l, seqs, pos)
		}
		check("a decode row", 1, []*seq{a}, []int{70})
		check("two sequences", 1, []*seq{a, b}, []int{71, 0})
		check("a position written again", 1, []*seq{a}, []int{40})
		require.True(t, a.kv.Grow(2*positions, 72))
		assert.Equal(t, 2*positions, a.kv.Positions())
		check("the grown cache", 1, []*seq{a}, []int{41})
		pos, seqs = pos[:0], seqs[:0]
		for p := 72; p < 140; p++ { // every position up to there written, as a forward pass does
			pos, seqs = append(pos, p), append(seqs, a)
		}
		check("past the old room", 1, seqs, pos)
		a.kv.Free()
		b.kv.Free()
		require.False(t, PoolAttend(0, heads, group, headDim, stride, scale, []AttendRow{{Q: make([]float32, heads*headDim), Out: make([]float32, heads*headDim), KV: a.kv, End: 1}}),
			"a freed cache is not used")
	}
}

// TestPoolKVFreeGivesMemoryBack checks that a freed cache's memory is the
// pool's again at once (a page serving request after request must not
// wait for Go's collector, which does not see the pool's memory): the
// next cache of its size takes the same place, and freeing twice, or a
// nil cache, is harmless.
func TestPoolKVFreeGivesMemoryBack(t *testing.T) {
	if !PoolAttends() {
		t.Skip("no CPU pool here: ", poolWhy)
	}
	a := NewPoolKV(4, 256, 96)
	require.NotNil(t, a)
	off := a.off
	a.Free()
	a.Free()
	assert.Zero(t, a.Positions())
	b := NewPoolKV(4, 256, 96)
	require.NotNil(t, b)
	defer b.Free()
	assert.Equal(t, off, b.off, "the freed memory is taken again first")
	var none *PoolKV
	none.Free()
}
