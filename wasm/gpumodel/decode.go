package gpumodel

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/webinfer/webinfer/wasm/webgpu"
)

// Single-sequence steps: the logits, or a token picked on the GPU, with
// the next step queued before this one is read (engine.Decoder).

// Forward runs tokens at positions Pos(), Pos()+1, ... and returns the
// logits of the last one: the inputs are written (token ids, the RoPE
// table, the spans, the uniform blocks), the whole step is one submit,
// and the logits are one read.
func (r *Runner) Forward(ctx context.Context, tokens []int32) ([]float32, error) {
	if err := r.step(tokens, pickNone, false); err != nil {
		return nil, err
	}
	t2 := time.Now()
	raw, err := r.dev.Read(ctx, r.logits, 0, f32n(r.m.Vocab))
	if err != nil {
		return nil, err
	}
	r.timings.Wait += time.Since(t2)
	return webgpu.BytesToFloat32(raw), nil
}

// ForwardArgmax is Forward for greedy decoding: the argmax is taken on the
// GPU and the step reads back 4 bytes (the token id) instead of the logits.
func (r *Runner) ForwardArgmax(ctx context.Context, tokens []int32) (int32, error) {
	if err := r.step(tokens, pickArgmax, false); err != nil {
		return 0, err
	}
	ids, err := r.wait(ctx, r.dev.ReadAsync(r.best, 0, 4))
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// wait waits for a read of token ids.
func (r *Runner) wait(ctx context.Context, p *webgpu.PendingRead) ([]int32, error) {
	t := time.Now()
	raw, err := p.Wait(ctx)
	r.timings.Wait += time.Since(t)
	if err != nil {
		return nil, err
	}
	ids := make([]int32, len(raw)/4)
	for i := range ids {
		ids[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return ids, nil
}

// Queue feeds tokens to sequence 0 and queues the pick of the next
// token on the GPU, as SetSampling set for sequence 0 (the argmax when it
// is greedy or never set), and returns it, to be waited for
// (engine.Decoder). The k-th pick since SetSampling draws
// sample.Uniform(p.Seed, k), so the tokens are those of sample.Pick on
// the GPU's logits.
func (r *Runner) Queue(ctx context.Context, tokens []int32) (func(context.Context) (int32, error), error) {
	if err := r.step(tokens, r.pick0(), false); err != nil {
		return nil, err
	}
	return r.pending(), nil
}

// QueueFromPick queues a step of sequence 0 whose input is the pick of
// the step queued last, copied on the GPU, so that it is queued before
// that pick is read back: the read and the CPU's work overlap the GPU's.
// False when it cannot: the embedding lookup runs on the CPU, or the
// cache is full.
func (r *Runner) QueueFromPick(ctx context.Context) (func(context.Context) (int32, error), bool, error) {
	if r.embed == nil || r.pos[0] >= r.ctx {
		return nil, false, nil
	}
	if err := r.step(nil, r.pick0(), true); err != nil {
		return nil, false, err
	}
	return r.pending(), true, nil
}

// Unqueue undoes the step of sequence 0 queued last, once its pick has
// been waited for: Pos is as if it never ran (its cache row is
// overwritten by the next step).
func (r *Runner) Unqueue() { r.pos[0]-- }

// pick0 is how sequence 0's next token is picked.
func (r *Runner) pick0() pick {
	if r.seqGreedy[0] {
		return pickArgmax
	}
	return pickSample
}

// pending starts reading the pick of the step submitted last.
func (r *Runner) pending() func(context.Context) (int32, error) {
	read := r.dev.ReadAsync(r.best, 0, 4)
	return func(ctx context.Context) (int32, error) {
		ids, err := r.wait(ctx, read)
		if err != nil {
			return 0, err
		}
		return ids[0], nil
	}
}
