package sample

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGreedy(t *testing.T) {
	s := New(Params{})
	assert.Equal(t, int32(2), s.Sample([]float32{0.1, -3, 5, 4.9}))
	assert.Equal(t, int32(0), s.Sample([]float32{1, 1, 1}), "ties: lowest id")
}

func TestPenalties(t *testing.T) {
	s := New(Params{RepeatPenalty: 2})
	s.Accept(0)
	assert.Equal(t, int32(1), s.Sample([]float32{3, 2}), "3/2 < 2")
	s = New(Params{RepeatPenalty: 2})
	s.Accept(1)
	assert.Equal(t, int32(0), s.Sample([]float32{-1.5, -1}), "-1·2 < -1.5")
	s = New(Params{FrequencyPenalty: 1, PresencePenalty: 0.5})
	s.Accept(0)
	s.Accept(0)
	assert.Equal(t, int32(1), s.Sample([]float32{3, 0.6}), "3 − 2 − 0.5 < 0.6")
	s = New(Params{RepeatPenalty: 2, RepeatLastN: 1})
	s.Accept(0)
	s.Accept(1)
	assert.Equal(t, int32(0), s.Sample([]float32{3, 2}), "token 0 fell out of the window")
}

func TestSeededSamplingIsReproducible(t *testing.T) {
	logits := []float32{1, 2, 3, 2.5, 0, -1, 2.9}
	draw := func(seed uint64) []int32 {
		s := New(Params{Temperature: 1, Seed: seed})
		var out []int32
		for range 50 {
			out = append(out, s.Sample(logits))
		}
		return out
	}
	assert.Equal(t, draw(7), draw(7))
	assert.NotEqual(t, draw(7), draw(8))
}

func TestTruncation(t *testing.T) {
	logits := []float32{10, 9.9, 0, -5}
	for seed := uint64(0); seed < 100; seed++ {
		s := New(Params{Temperature: 1, TopK: 2, Seed: seed})
		assert.Less(t, s.Sample(logits), int32(2), "top-k 2")
		s = New(Params{Temperature: 1, TopP: 0.5, Seed: seed})
		assert.Equal(t, int32(0), s.Sample(logits), "top-p 0.5 keeps only the top token")
		s = New(Params{Temperature: 1, MinP: 0.5, Seed: seed})
		assert.Less(t, s.Sample(logits), int32(2), "min-p drops tokens far below the top")
	}
	// Low temperature concentrates on the top token.
	hits := 0
	for seed := uint64(0); seed < 200; seed++ {
		if New(Params{Temperature: 0.01, Seed: seed}).Sample([]float32{1, 1.5, 0}) == 1 {
			hits++
		}
	}
	assert.Equal(t, 200, hits)
}

func TestUniform(t *testing.T) {
	var sum float64
	seen := map[float32]bool{}
	for n := uint32(0); n < 100000; n++ {
		u := Uniform(42, n)
		assert.True(t, u >= 0 && u < 1)
		sum += float64(u)
		seen[u] = true
	}
	assert.InDelta(t, 0.5, sum/100000, 0.005)
	assert.Greater(t, len(seen), 99000, "24-bit numbers: few repeats")
	assert.NotEqual(t, Uniform(1, 0), Uniform(1<<32, 0), "the seed's high half counts")
	assert.Equal(t, Uniform(7, 3), Uniform(7, 3))
}

func TestGPURules(t *testing.T) {
	// The draw walks candidates in id order: with two equal candidates,
	// u < 0.5 picks the lower id whatever the logits' order.
	assert.Equal(t, int32(1), Pick([]float32{-9, 2, 2}, nil, Params{Temperature: 1, TopK: 2}, 0.25))
	assert.Equal(t, int32(2), Pick([]float32{-9, 2, 2}, nil, Params{Temperature: 1, TopK: 2}, 0.75))
	// top-p without top-k sees MaxCandidates tokens at most: on a flat
	// distribution the pick stays among the first MaxCandidates ids (ties
	// sort by id).
	flat := make([]float32, 3*MaxCandidates)
	for u := float32(0); u < 1; u += 0.01 {
		assert.Less(t, Pick(flat, nil, Params{Temperature: 1, TopP: 0.99}, u), int32(MaxCandidates))
	}
	// Temperature alone sees everything.
	assert.Equal(t, int32(3*MaxCandidates-1), Pick(flat, nil, Params{Temperature: 1}, 0.99999))
	// min-p above 1 keeps the top token.
	assert.Equal(t, int32(1), Pick([]float32{0, 3, 1}, nil, Params{Temperature: 1, MinP: 2}, 0.9))
}

// TestTopKIsSortAndCut: the heap selection gives what sorting every
// candidate and cutting gives, ties (repeated logits) included.
func TestTopKIsSortAndCut(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 5, 100, 5000} {
		for _, k := range []int{1, 3, 40, 1024, n} {
			c := make([]candidate, n)
			for i := range c {
				c[i] = candidate{id: int32(i), logit: float32(rng.IntN(50))}
			}
			want := slices.Clone(c)
			slices.SortFunc(want, func(a, b candidate) int {
				if better(a, b) {
					return -1
				}
				return 1
			})
			want = want[:min(k, n)]
			require.Equal(t, want, topK(c, min(k, n)), "n=%d k=%d", n, k)
		}
	}
}
