package gpumodel

import (
	"context"
	"fmt"
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
		if err := r.submit(tokens[:n], seqs, shape{T: n}, pickNone, false); err != nil {
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
	T := len(seqs)
	if T == 0 || T != len(tokens) || T > r.seqs {
		return nil, fmt.Errorf("gpumodel: a batch of %d sequences and %d tokens (room for %d)", T, len(tokens), r.seqs)
	}
	seen := map[int]bool{}
	for _, s := range seqs {
		if s < 0 || s >= r.seqs || seen[s] {
			return nil, fmt.Errorf("gpumodel: sequence %d is out of range or repeated in the batch", s)
		}
		seen[s] = true
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
			return nil, err
		}
		cols := growBytes(&r.colsBuf, 48*T)
		for i, s := range seqs {
			copy(cols[48*i:], r.seqSample[s].Bytes())
			r.seqSample[s].Draw++
		}
		if err := r.dev.WriteBuffer(r.sampleCols, 0, cols); err != nil {
			return nil, err
		}
	}
	if err := r.submit(tokens, seqs, shape{T: T, all: true}, how, false); err != nil {
		return nil, err
	}
	return r.wait(ctx, r.dev.ReadAsync(r.best, 0, int64(4*T)))
}
