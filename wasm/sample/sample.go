// Package sample picks the next token from logits: greedy, or temperature
// with top-k, top-p and min-p, after repetition, frequency and presence
// penalties; with a seeded random generator, so the same seed and inputs
// give the same tokens on every platform.
//
// In: a logits vector per step (not modified). Out: a token id.
// The order of the steps follows llama.cpp's default sampler chain:
// penalties, top-k, top-p, min-p, temperature, then a draw.
package sample

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Params configures a Sampler. The zero value is greedy with no penalties.
type Params struct {
	Temperature      float32 // ≤ 0: greedy
	TopK             int     // ≤ 0: off
	TopP             float32 // ≥ 1 or ≤ 0: off
	MinP             float32 // ≤ 0: off
	RepeatPenalty    float32 // 1 or 0: off
	FrequencyPenalty float32
	PresencePenalty  float32
	RepeatLastN      int // how many recent tokens the penalties see (0: 64)
	Seed             uint64
}

// Sampler holds a generation's random state and recent tokens.
type Sampler struct {
	p       Params
	rng     *rand.Rand
	recent  []int32
	scratch []candidate
}

type candidate struct {
	id    int32
	logit float32
	p     float64
}

// New returns a Sampler.
func New(p Params) *Sampler {
	if p.RepeatLastN == 0 {
		p.RepeatLastN = 64
	}
	return &Sampler{p: p, rng: rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15))}
}

// Accept records a token (prompt or generated) for the penalties.
func (s *Sampler) Accept(id int32) {
	s.recent = append(s.recent, id)
	if len(s.recent) > s.p.RepeatLastN {
		s.recent = s.recent[len(s.recent)-s.p.RepeatLastN:]
	}
}

// Sample picks the next token. It does not Accept it.
func (s *Sampler) Sample(logits []float32) int32 {
	c := s.scratch[:0]
	for i, l := range logits {
		c = append(c, candidate{id: int32(i), logit: l})
	}
	s.scratch = c
	s.penalize(c)
	if s.p.Temperature <= 0 {
		return argmax(c)
	}
	sort.Slice(c, func(i, j int) bool {
		if c[i].logit != c[j].logit {
			return c[i].logit > c[j].logit
		}
		return c[i].id < c[j].id
	})
	if k := s.p.TopK; k > 0 && k < len(c) {
		c = c[:k]
	}
	softmax(c, 1)
	if p := s.p.TopP; p > 0 && p < 1 {
		var cum float64
		for i := range c {
			cum += c[i].p
			if cum >= float64(p) {
				c = c[:i+1]
				break
			}
		}
	}
	if mp := s.p.MinP; mp > 0 && len(c) > 0 {
		floor := c[0].p * float64(mp)
		n := 1
		for n < len(c) && c[n].p >= floor {
			n++
		}
		c = c[:n]
	}
	softmax(c, s.p.Temperature)
	r := s.rng.Float64()
	var cum float64
	for _, x := range c {
		cum += x.p
		if r < cum {
			return x.id
		}
	}
	return c[len(c)-1].id
}

// penalize applies llama.cpp's penalties: a repeated token's logit is
// divided by RepeatPenalty when positive (multiplied when negative), then
// lowered by count·FrequencyPenalty + PresencePenalty.
func (s *Sampler) penalize(c []candidate) {
	if len(s.recent) == 0 || (s.p.RepeatPenalty == 0 || s.p.RepeatPenalty == 1) && s.p.FrequencyPenalty == 0 && s.p.PresencePenalty == 0 {
		return
	}
	counts := map[int32]int{}
	for _, id := range s.recent {
		counts[id]++
	}
	for id, n := range counts {
		if id < 0 || int(id) >= len(c) {
			continue
		}
		l := &c[id].logit
		if rp := s.p.RepeatPenalty; rp != 0 && rp != 1 {
			if *l > 0 {
				*l /= rp
			} else {
				*l *= rp
			}
		}
		*l -= float32(n)*s.p.FrequencyPenalty + s.p.PresencePenalty
	}
}

// argmax is the first candidate with the largest logit.
func argmax(c []candidate) int32 {
	best := 0
	for i := range c {
		if c[i].logit > c[best].logit {
			best = i
		}
	}
	return c[best].id
}

// softmax sets p of the (sorted) candidates from logit/temp.
func softmax(c []candidate, temp float32) {
	if len(c) == 0 {
		return
	}
	mx := c[0].logit
	for _, x := range c {
		mx = max(mx, x.logit)
	}
	var sum float64
	for i := range c {
		c[i].p = math.Exp(float64((c[i].logit - mx) / temp))
		sum += c[i].p
	}
	for i := range c {
		c[i].p /= sum
	}
}
