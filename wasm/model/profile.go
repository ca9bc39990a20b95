package model

import (
	"strconv"
	"sync/atomic"
	"time"
)

// Phase is a part of the CPU forward pass that a StepProfile times.
type Phase int

// The phases of a pass, in the order PhaseNames lists them.
const (
	PhaseEmbed     Phase = iota // the tokens' embedding rows, dequantized
	PhaseNorm                   // RMS norms before attention and the FFN
	PhaseProducts               // the layers' weight products (activation quantization in them)
	PhaseRope                   // RoPE angles, biases, rotations, the new keys and values written to the cache
	PhaseAttention              // scores, softmax and the weighted values over the cache
	PhaseFFNAct                 // SiLU(gate)·up
	PhaseResidual               // the residual additions
	PhaseLogits                 // the output norm and product onto the vocabulary
	numPhases
)

// PhaseNames are the phases' names in reports, by Phase.
var PhaseNames = [numPhases]string{"embed", "norm", "products", "rope_kv", "attention", "ffn_act", "residual", "logits"}

// StepProfile accumulates where the CPU forward passes of decode steps
// (one new token for each sequence of the pass) spend their time, and
// the weight bytes their layer products read: what the report's CPU
// section shows (its step_ms), to tell the products' share of a step
// from the rest. Prefill passes are left out: their cost per token is
// another thing. Safe for concurrent use; the zero value is empty.
type StepProfile struct {
	phases [numPhases]atomic.Int64 // nanoseconds
	total  atomic.Int64            // the passes' wall time, nanoseconds
	tokens atomic.Int64            // tokens of the timed passes
	passes atomic.Int64
	bytes  atomic.Int64 // weight bytes the layer products read
	// byBatch is the same per batch size (tokens of the pass; the last
	// holds maxBatchSlot and more), to tell what a batch's extra tokens
	// cost from what one token costs.
	byBatch [maxBatchSlot + 1]struct {
		phases [numPhases]atomic.Int64
		total  atomic.Int64
		passes atomic.Int64
	}
}

// maxBatchSlot is the largest batch size the profile keeps apart.
const maxBatchSlot = 8

// StepTimes is a StepProfile's summary: the mean milliseconds a decode
// token spends in each phase and in all, and the layer products' GB/s.
type StepTimes struct {
	Passes     int64              `json:"passes"`
	Tokens     int64              `json:"tokens"`
	MsPerToken map[string]float64 `json:"ms_per_token"` // by PhaseNames, and "pass": the whole pass
	// ProductGBs is the layers' weight bytes over the products' time: a
	// pass of several tokens reads each weight once for all of them.
	ProductGBs float64 `json:"product_gb_s"`
	// ByBatch is, per batch size ("1" to "8", "8" counting larger ones
	// too), the passes ("passes") and the mean milliseconds of a whole
	// pass ("pass") and of each phase in it (by PhaseNames).
	ByBatch map[string]map[string]float64 `json:"by_batch,omitempty"`
}

// Times summarizes the profile (nil: nothing recorded yet).
func (p *StepProfile) Times() *StepTimes {
	if p == nil || p.tokens.Load() == 0 {
		return nil
	}
	tok := float64(p.tokens.Load())
	t := &StepTimes{Passes: p.passes.Load(), Tokens: p.tokens.Load(), MsPerToken: map[string]float64{}}
	for i, name := range PhaseNames {
		t.MsPerToken[name] = float64(p.phases[i].Load()) / 1e6 / tok
	}
	t.MsPerToken["pass"] = float64(p.total.Load()) / 1e6 / tok
	if ns := p.phases[PhaseProducts].Load(); ns > 0 {
		t.ProductGBs = float64(p.bytes.Load()) / float64(ns)
	}
	for n := 1; n <= maxBatchSlot; n++ {
		b := &p.byBatch[n]
		passes := float64(b.passes.Load())
		if passes == 0 {
			continue
		}
		ms := map[string]float64{"passes": passes, "pass": float64(b.total.Load()) / 1e6 / passes}
		for i, name := range PhaseNames {
			ms[name] = float64(b.phases[i].Load()) / 1e6 / passes
		}
		if t.ByBatch == nil {
			t.ByBatch = map[string]map[string]float64{}
		}
		t.ByBatch[strconv.Itoa(n)] = ms
	}
	return t
}

// passTimer times one pass's phases into a profile; the zero value (no
// profile, or a pass not timed) reads no clock.
type passTimer struct {
	p     *StepProfile
	start time.Time
	local [numPhases]time.Duration
	bytes int64
}

// newPassTimer starts timing a pass into p when p is not nil and the
// pass is a decode step.
func newPassTimer(p *StepProfile, decode bool) passTimer {
	if p == nil || !decode {
		return passTimer{}
	}
	return passTimer{p: p, start: time.Now()}
}

// now is the clock when timing, the zero time when not.
func (t *passTimer) now() time.Time {
	if t.p == nil {
		return time.Time{}
	}
	return time.Now()
}

// since charges the time from start to now to phase and returns now,
// the next phase's start.
func (t *passTimer) since(phase Phase, start time.Time) time.Time {
	if t.p == nil {
		return start
	}
	now := time.Now()
	t.local[phase] += now.Sub(start)
	return now
}

// read counts weight bytes read by a layer product.
func (t *passTimer) read(n int64) {
	if t.p != nil {
		t.bytes += n
	}
}

// done adds the pass, of tokens tokens, to the profile.
func (t *passTimer) done(tokens int) {
	if t.p == nil {
		return
	}
	b := &t.p.byBatch[min(tokens, maxBatchSlot)]
	total := time.Since(t.start)
	for i, d := range t.local {
		t.p.phases[i].Add(int64(d))
		b.phases[i].Add(int64(d))
	}
	t.p.total.Add(int64(total))
	b.total.Add(int64(total))
	b.passes.Add(1)
	t.p.tokens.Add(int64(tokens))
	t.p.passes.Add(1)
	t.p.bytes.Add(t.bytes)
}
