package gpumodel

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// The sampler on the GPU (kernels.Sample): each sequence's parameters,
// draw counter and ring of recent tokens.

// recentRing is how many recent tokens the GPU sampler keeps per
// sequence: the largest repeat-penalty window it takes.
const recentRing = 256

// SetSampling sets how StepBatch (and Queue, for sequence 0) picks
// sequence seq's tokens: p, with recent as the tokens its penalties see
// before the next pick, and its draw counter at p.FirstDraw. A repeat-penalty
// window over recentRing tokens is refused with sample.ErrBackend.
// Greedy settings need no sampler (the argmax picks; in a batch with
// sampled sequences the sampler's greedy column does).
func (r *Runner) SetSampling(ctx context.Context, seq int, p sample.Params, recent []int32) error {
	if seq < 0 || seq >= r.seqs {
		return fmt.Errorf("gpumodel: sequence %d of %d", seq, r.seqs)
	}
	p = p.Normalized()
	if p.Penalized() && p.RepeatLastN > recentRing {
		return fmt.Errorf("gpumodel: %w: a repeat-penalty window of %d tokens (the GPU keeps %d)", sample.ErrBackend, p.RepeatLastN, recentRing)
	}
	r.seqGreedy[seq] = p.Greedy()
	r.seqSample[seq] = kernels.SampleColumn{Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP, MinP: p.MinP,
		RepeatPenalty: p.RepeatPenalty, FrequencyPenalty: p.FrequencyPenalty, PresencePenalty: p.PresencePenalty,
		LastN: min(p.RepeatLastN, recentRing), Seed: p.Seed, Draw: p.FirstDraw, Row: uint32(seq)}
	if p.Greedy() {
		return nil
	}
	if err := r.makeSampler(ctx); err != nil {
		return err
	}
	if len(recent) > recentRing {
		recent = recent[len(recent)-recentRing:]
	}
	row := make([]byte, 4*(1+recentRing))
	binary.LittleEndian.PutUint32(row, uint32(len(recent)))
	for i, id := range recent {
		binary.LittleEndian.PutUint32(row[4*(1+i):], uint32(id))
	}
	return r.dev.WriteBuffer(r.recent, int64(seq*len(row)), row)
}

// makeSampler makes the sampler's pipeline, buffers and bind group once.
func (r *Runner) makeSampler(ctx context.Context) error {
	if r.sampler != nil {
		return nil
	}
	pipe, err := r.pipeline(ctx, kernels.Sample())
	if err != nil {
		return err
	}
	if r.sampleCols, err = r.buf(int64(48*r.seqs), "sample.cols"); err != nil {
		return err
	}
	if r.recent, err = r.buf(int64(4*r.seqs*(1+recentRing)), "sample.recent"); err != nil {
		return err
	}
	u, err := r.dev.CreateBuffer(16, webgpu.UsageUniform|webgpu.UsageCopyDst, "sample.params")
	if err != nil {
		return err
	}
	r.allBufs = append(r.allBufs, u)
	if err := r.dev.WriteBuffer(u, 0, kernels.SampleParams(r.m.Vocab, recentRing)); err != nil {
		return err
	}
	bg, err := r.dev.BindGroup(pipe, r.logits, r.best, r.sampleCols, r.recent, u)
	if err != nil {
		return err
	}
	r.sampler = func(cl *webgpu.CommandList, cols int) { cl.Dispatch(pipe, bg, uint32(cols), 1, 1) }
	return nil
}
