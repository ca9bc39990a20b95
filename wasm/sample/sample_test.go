package sample

import (
	"testing"

	"github.com/stretchr/testify/assert"
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
