package gpumodel

import (
	"context"
	"fmt"

	"github.com/webinfer/webinfer/wasm/engine"
)

// Several sequences: prefill of one, a step of one token of each.

// Prefill feeds tokens to sequence seq without picking a token (their
// logits are not computed): a prompt but its last token, before the
// sequence joins StepBatch.
func (r *Runner) Prefill(ctx context.Context, seq int, tokens []int32) error {
	for len(tokens) > 0 {
		n := min(len(tokens), r.maxBatch)
		seqs := make([]int, n) // prefill: once a chunk, not a hot path
		for i := range seqs {
			seqs[i] = seq
		}
		if err := r.submit(tokens[:n], seqs, shape{T: n}, pickNone, nil); err != nil {
			return err
		}
		tokens = tokens[n:]
	}
	return nil
}

// StepBatch runs one token of each of several sequences (seqs distinct,
// tokens[i] of seqs[i], each at its own next position) in one step, and
// returns each one's next token, picked as SetSampling set for its
// sequence (greedy when never set). A batch of one computes what Decode
// does.
func (r *Runner) StepBatch(ctx context.Context, seqs []int, tokens []int32) ([]int32, error) {
	wait, _, err := r.QueueBatch(ctx, seqs, tokens, nil)
	if err != nil {
		return nil, err
	}
	return wait(ctx)
}

// QueueBatch submits StepBatch's step without waiting for it
// (engine.BatchQueuer): sequence seqs[i] is fed tokens[i], or, where
// from[i] >= 0, the pick in column from[i] of the step queued last,
// copied on the GPU, so that this step is queued before that one's picks
// are read back. False, and nothing queued, when a token should come
// from a pick but the embedding lookup runs on the CPU. It returns the
// picks, to be waited for.
func (r *Runner) QueueBatch(ctx context.Context, seqs []int, tokens []int32, from []int) (engine.BatchPick, bool, error) {
	T := len(seqs)
	if T == 0 || T != len(tokens) || T > r.seqs || (from != nil && len(from) != T) {
		return nil, false, fmt.Errorf("gpumodel: a batch of %d sequences and %d tokens (room for %d)", T, len(tokens), r.seqs)
	}
	seen := map[int]bool{}
	for i, s := range seqs {
		if s < 0 || s >= r.seqs || seen[s] {
			return nil, false, fmt.Errorf("gpumodel: sequence %d is out of range or repeated in the batch", s)
		}
		seen[s] = true
		if from != nil && from[i] >= r.seqs {
			return nil, false, fmt.Errorf("gpumodel: column %d of the last picks (room for %d)", from[i], r.seqs)
		}
		if from != nil && from[i] >= 0 && r.embed == nil {
			return nil, false, nil
		}
	}
	// All greedy: the argmax. Else the sampler, each column with its
	// sequence's parameters.
	how := pickArgmax
	for _, s := range seqs {
		if !r.seqGreedy[s] {
			how = pickSample
		}
	}
	if how == pickSample {
		if err := r.makeSampler(ctx); err != nil {
			return nil, false, err
		}
		cols := growBytes(&r.colsBuf, 48*T)
		for i, s := range seqs {
			copy(cols[48*i:], r.seqSample[s].Bytes())
			r.seqSample[s].Draw++
		}
		if err := r.dev.WriteBuffer(r.sampleCols, 0, cols); err != nil {
			return nil, false, err
		}
	}
	if err := r.submit(tokens, seqs, shape{T: T, all: true}, how, from); err != nil {
		return nil, false, err
	}
	read := r.dev.ReadAsync(r.best, 0, int64(4*T))
	return func(ctx context.Context) ([]int32, error) { return r.wait(ctx, read) }, true, nil
}

// UnqueueSeq undoes sequence seq's part of the step queued last, once the
// step before it has been waited for: its position is as if the step
// never ran and its draw counter set back (the recent tokens its sampler
// keeps on the GPU are not: SetSampling sets them before the slot is
// used again).
func (r *Runner) UnqueueSeq(seq int) {
	if seq < 0 || seq >= r.seqs || r.pos[seq] == 0 {
		return
	}
	r.pos[seq]--
	if !r.seqGreedy[seq] {
		r.seqSample[seq].Draw--
	}
}

// The runner queues batched steps ahead as the scheduler drives them.
var (
	_ engine.BatchQueuer = (*Runner)(nil)
	_ engine.KVHolder    = (*Runner)(nil)
)

// KVBytes is the memory the KV caches hold (engine.KVHolder): every
// sequence's whole context, allocated at New.
func (r *Runner) KVBytes() int64 {
	return 2 * int64(len(r.kc)) * r.actBytes(r.seqs*r.ctx*r.m.Config.KVDim())
}
