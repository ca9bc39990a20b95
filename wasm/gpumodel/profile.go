package gpumodel

import (
	"context"
	"fmt"
	"time"
)

// Timing: wall time of steps, and GPU time per kernel (timestamp-query).

// Timings splits the wall time of steps: preparing inputs on the CPU and
// writing them, recording and submitting the command list, and waiting for
// what is read back (GPU work not yet done, plus the read itself).
type Timings struct {
	Prepare, Submit, Wait time.Duration
	Steps                 int
}

// Timings returns the accumulated Timings and resets them.
func (r *Runner) Timings() Timings {
	t := r.timings
	r.timings = Timings{}
	return t
}

// Profile runs one step of tokens (at positions Pos() …, which it
// advances; greedy, with the argmax, for one token) with every dispatch
// timed by the GPU (timestamp-query; else webgpu.ErrUnsupported), and
// returns the GPU time per kernel, summed over the step's dispatches of
// that kernel, and how many there were. tokens must fit one batch.
func (r *Runner) Profile(ctx context.Context, tokens []int32) (map[string]OpTime, error) {
	T := len(tokens)
	if T == 0 || T > r.maxBatch {
		return nil, fmt.Errorf("gpumodel: profile %d tokens: 1 to %d", T, r.maxBatch)
	}
	how := pickNone
	if T == 1 {
		how = pickArgmax
	}
	return r.profile(ctx, tokens, r.seq0[:T], shape{T: T}, how)
}

// ProfileBatch is Profile for a batched decode step (StepBatch's: tokens[i]
// of sequence seqs[i], greedy), which it advances.
func (r *Runner) ProfileBatch(ctx context.Context, seqs []int, tokens []int32) (map[string]OpTime, error) {
	if len(seqs) == 0 || len(seqs) != len(tokens) || len(seqs) > r.seqs {
		return nil, fmt.Errorf("gpumodel: profile a batch of %d sequences and %d tokens (room for %d)", len(seqs), len(tokens), r.seqs)
	}
	return r.profile(ctx, tokens, seqs, shape{T: len(seqs), all: true}, pickArgmax)
}

func (r *Runner) profile(ctx context.Context, tokens []int32, seqs []int, s shape, how pick) (map[string]OpTime, error) {
	if err := r.prepare(tokens, seqs, &s, nil); err != nil {
		return nil, err
	}
	r.encode(s, how, nil, true)
	names := r.cmdNames
	times, err := r.dev.SubmitProfiled(ctx, &r.cl)
	if err != nil {
		return nil, err
	}
	for _, q := range seqs {
		r.pos[q]++
	}
	out := map[string]OpTime{}
	for i, d := range times {
		if i < len(names) {
			o := out[names[i]]
			o.GPU += d
			o.Count++
			out[names[i]] = o
		}
	}
	return out, nil
}

// ProfileDecode times one decode step of token on sequence 0 (as Profile)
// and then undoes it: Pos is as before, and the cache row it wrote is
// overwritten by the next step. For telemetry after a generation.
func (r *Runner) ProfileDecode(ctx context.Context, token int32) (map[string]OpTime, error) {
	pos := r.pos[0]
	ops, err := r.Profile(ctx, []int32{token})
	r.pos[0] = pos
	return ops, err
}

// OpTime is one kernel's GPU time in a profiled step, over Count dispatches.
type OpTime struct {
	GPU   time.Duration
	Count int
}

// Dispatches is the number of dispatches and copies in the last step.
func (r *Runner) Dispatches() int { return r.cl.Len() }
