// Package sample picks the next token from logits: greedy, or temperature
// with top-k, top-p and min-p, after repetition, frequency and presence
// penalties; with a counter-based random generator, so the same seed and
// inputs give the same tokens on every platform and on every backend (the
// GPU's sampler, wasm/kernels/sample.wgsl, follows Pick step for step).
//
// In: a logits vector per step (not modified). Out: a token id.
// The order of the steps follows llama.cpp's default sampler chain:
// penalties, top-k, top-p, min-p, temperature, then a draw. Two rules make
// the chain computable on a GPU without sorting the vocabulary, and Pick
// keeps them too:
//   - top-k and top-p look at the MaxCandidates likeliest tokens at most
//     (a GPU workgroup sorts them in its memory); min-p and temperature
//     alone see the whole vocabulary;
//   - the draw walks the surviving candidates in token-id order (as
//     llama.cpp's dist sampler does when nothing has sorted them).
package sample

import (
	"cmp"
	"errors"
	"math"
	"slices"
)

// ErrBackend is wrapped by a backend's sampler (the GPU's) when it cannot
// sample with the parameters given; it says so before running anything,
// and the caller samples on the CPU instead.
var ErrBackend = errors.New("sample: the backend cannot sample with these parameters")

// MaxCandidates bounds the tokens that top-k and top-p consider.
const MaxCandidates = 1024

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
	// FirstDraw is the counter of the first pick's random number: 0 for a
	// fresh sequence; a sequence resumed on another backend goes on from
	// the picks it has made.
	FirstDraw uint32
}

// Defaults are the sampling settings everything uses unless told
// otherwise (the CLI's flags, the page, the JS API): temperature 0.8,
// top-k 40, top-p 0.95, min-p 0.05, no penalties, seed 0.
var Defaults = Params{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05}

// WithSeed returns p with its seed set.
func (p Params) WithSeed(seed uint64) Params {
	p.Seed = seed
	return p
}

// Normalized returns p with RepeatLastN's default filled in.
func (p Params) Normalized() Params {
	if p.RepeatLastN <= 0 {
		p.RepeatLastN = 64
	}
	return p
}

// Penalized says whether any penalty is on.
func (p Params) Penalized() bool {
	return p.RepeatPenalty != 0 && p.RepeatPenalty != 1 || p.FrequencyPenalty != 0 || p.PresencePenalty != 0
}

// Greedy says whether p picks the argmax of the raw logits (no
// temperature, no penalty).
func (p Params) Greedy() bool { return p.Temperature <= 0 && !p.Penalized() }

// Sampler holds a generation's draw counter and recent tokens.
type Sampler struct {
	p       Params
	draws   uint32
	recent  []int32
	scratch []candidate
}

type candidate struct {
	id    int32
	logit float32
	p     float64
}

// New returns a Sampler.
func New(p Params) *Sampler { return &Sampler{p: p.Normalized(), draws: p.FirstDraw} }

// Accept records a token (prompt or generated) for the penalties.
func (s *Sampler) Accept(id int32) {
	s.recent = append(s.recent, id)
	if len(s.recent) > s.p.RepeatLastN {
		s.recent = s.recent[len(s.recent)-s.p.RepeatLastN:]
	}
}

// Recent returns the tokens the penalties see (the last RepeatLastN
// accepted), oldest first.
func (s *Sampler) Recent() []int32 { return s.recent }

// Draws is the number of Sample calls so far: the counter of the next
// draw's random number.
func (s *Sampler) Draws() uint32 { return s.draws }

// Sample picks the next token, with the random number Uniform(Seed,
// Draws()). It does not Accept it.
func (s *Sampler) Sample(logits []float32) int32 {
	u := Uniform(s.p.Seed, s.draws)
	s.draws++
	var id int32
	id, s.scratch = pick(logits, s.recent, s.p, u, s.scratch)
	return id
}

// Pick is one sampling step as a pure function: logits (not modified),
// the recent tokens the penalties see, and the draw's uniform number u in
// [0, 1).
func Pick(logits []float32, recent []int32, p Params, u float32) int32 {
	id, _ := pick(logits, recent, p.Normalized(), u, nil)
	return id
}

func pick(logits []float32, recent []int32, p Params, u float32, scratch []candidate) (int32, []candidate) {
	c := scratch[:0]
	for i, l := range logits {
		c = append(c, candidate{id: int32(i), logit: l})
	}
	scratch = c
	penalize(c, recent, p)
	if p.Temperature <= 0 {
		return argmax(c), scratch
	}
	if p.TopK > 0 || p.TopP > 0 && p.TopP < 1 {
		k := min(len(c), MaxCandidates)
		if p.TopK > 0 {
			k = min(k, p.TopK)
		}
		c = topK(c, k)
		softmax(c, 1)
		if tp := p.TopP; tp > 0 && tp < 1 {
			var cum float64
			for i := range c {
				cum += c[i].p
				if cum >= float64(tp) {
					c = c[:i+1]
					break
				}
			}
		}
		if mp := p.MinP; mp > 0 {
			floor := c[0].p * float64(mp)
			n := 1
			for n < len(c) && c[n].p >= floor {
				n++
			}
			c = c[:n]
		}
		slices.SortFunc(c, func(a, b candidate) int { return cmp.Compare(a.id, b.id) })
	} else if mp := p.MinP; mp > 0 {
		// min-p over the whole vocabulary: p ≥ p_max·MinP, that is
		// exp(l − max) ≥ MinP; the largest logits always.
		mx := c[argmaxIndex(c)].logit
		kept := c[:0]
		for _, x := range c {
			if x.logit >= mx || math.Exp(float64(x.logit-mx)) >= float64(mp) {
				kept = append(kept, x)
			}
		}
		c = kept
	}
	softmax(c, p.Temperature)
	r := float64(u)
	var cum float64
	for _, x := range c {
		cum += x.p
		if r < cum {
			return x.id, scratch
		}
	}
	return c[len(c)-1].id, scratch
}

// better orders candidates likeliest first: by logit, ties by id.
func better(a, b candidate) bool {
	if a.logit != b.logit {
		return a.logit > b.logit
	}
	return a.id < b.id
}

// topK moves the k best candidates of c (better's order) to c[:k], sorted,
// and returns c[:k]: what sorting all of c and cutting it gives, without
// sorting a whole vocabulary per token. A heap of the k best so far,
// whose root is the worst of them, rejects most candidates with one
// comparison.
func topK(c []candidate, k int) []candidate {
	if k <= 0 {
		return c[:0]
	}
	h := c[:0:k] // the heap grows in place over the candidates already seen
	siftDown := func(i int) {
		for {
			l, w := 2*i+1, i
			if l < len(h) && better(h[w], h[l]) {
				w = l
			}
			if r := l + 1; r < len(h) && better(h[w], h[r]) {
				w = r
			}
			if w == i {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for i := range c {
		x := c[i]
		if len(h) < k {
			h = append(h, x)
			for j := len(h) - 1; j > 0; { // sift up
				parent := (j - 1) / 2
				if !better(h[parent], h[j]) {
					break
				}
				h[parent], h[j] = h[j], h[parent]
				j = parent
			}
			continue
		}
		if better(x, h[0]) {
			h[0] = x
			siftDown(0)
		}
	}
	slices.SortFunc(h, func(a, b candidate) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	return h
}

// Uniform is the n-th random number in [0, 1) of a seed: 24 bits of a
// hash of (seed, n), so that a GPU computes the same number in 32-bit
// integer arithmetic.
func Uniform(seed uint64, n uint32) float32 {
	h := hash32(uint32(seed) ^ hash32(uint32(seed>>32)^hash32(n^0x9e3779b9)))
	return float32(h>>8) / (1 << 24)
}

// hash32 is Chris Wellons' lowbias32 integer hash.
func hash32(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x7feb352d
	x ^= x >> 15
	x *= 0x846ca68b
	x ^= x >> 16
	return x
}

// penalize applies llama.cpp's penalties: a repeated token's logit is
// divided by RepeatPenalty when positive (multiplied when negative), then
// lowered by count·FrequencyPenalty + PresencePenalty.
func penalize(c []candidate, recent []int32, p Params) {
	if len(recent) == 0 || !p.Penalized() {
		return
	}
	if len(recent) > p.RepeatLastN {
		recent = recent[len(recent)-p.RepeatLastN:]
	}
	counts := map[int32]int{}
	for _, id := range recent {
		counts[id]++
	}
	for id, n := range counts {
		if id < 0 || int(id) >= len(c) {
			continue
		}
		l := &c[id].logit
		if rp := p.RepeatPenalty; rp != 0 && rp != 1 {
			if *l > 0 {
				*l /= rp
			} else {
				*l *= rp
			}
		}
		*l -= float32(n)*p.FrequencyPenalty + p.PresencePenalty
	}
}

// argmax is the first candidate with the largest logit.
func argmax(c []candidate) int32 { return c[argmaxIndex(c)].id }

func argmaxIndex(c []candidate) int {
	best := 0
	for i := range c {
		if c[i].logit > c[best].logit {
			best = i
		}
	}
	return best
}

// softmax sets p of the candidates from logit/temp.
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
