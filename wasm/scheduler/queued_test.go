package scheduler

import (
	"context"

	"github.com/webinfer/webinfer/wasm/engine"
)

// queued makes a Batcher queue its steps ahead as the GPU runner does
// (engine.BatchQueuer), so that the scheduler's queued path runs natively
// on the real CPU backend: a queued step computes at once, its tokens
// taken from the last step's picks where the scheduler says so, and its
// picks (or its error, as WebGPU's error scope reports it: at the read)
// are handed over when waited for; UnqueueSeq sets the slot's position
// back. The GPU runner's own queue is tested in wasm/gpumodel.
type queued struct {
	engine.Batcher
	pos  []int
	last []int32 // the picks of the step queued last
}

func newQueued(b engine.Batcher, slots int) engine.Batcher {
	return &queued{Batcher: b, pos: make([]int, slots)}
}

// way is one way the scheduler drives a backend.
type way struct {
	name string
	wrap func(b engine.Batcher, slots int) engine.Batcher
}

// ways are the two ways the scheduler drives the backends it has: a step
// at a time with prompt chunks and decode tokens in one pass (the CPU,
// engine.MixedStepper), and queued one step ahead (the GPU).
var ways = []way{
	{"mixed", func(b engine.Batcher, _ int) engine.Batcher { return b }},
	{"queued ahead", newQueued},
}

// stepwise is the third, for a backend that is neither: a prompt chunk,
// then a step of the decoding sequences.
var stepwise = way{"stepwise", func(b engine.Batcher, _ int) engine.Batcher { return plain{b} }}

// plain hides every method of a Batcher but its own (and KVBytes).
type plain struct{ engine.Batcher }

func (p plain) KVBytes() int64 {
	if h, ok := p.Batcher.(engine.KVHolder); ok {
		return h.KVBytes()
	}
	return 0
}

func (q *queued) ResetSeq(seq int) { q.pos[seq] = 0; q.Batcher.ResetSeq(seq) }

func (q *queued) Truncate(seq, n int) {
	q.pos[seq] = max(0, min(n, q.pos[seq]))
	q.Batcher.Truncate(seq, n)
}

func (q *queued) Prefill(ctx context.Context, seq int, tokens []int32) error {
	err := q.Batcher.Prefill(ctx, seq, tokens)
	if err == nil {
		q.pos[seq] += len(tokens)
	}
	return err
}

func (q *queued) StepBatch(ctx context.Context, seqs []int, tokens []int32) ([]int32, error) {
	wait, _, err := q.QueueBatch(ctx, seqs, tokens, nil)
	if err != nil {
		return nil, err
	}
	return wait(ctx)
}

func (q *queued) QueueBatch(ctx context.Context, seqs []int, tokens []int32, from []int) (engine.BatchPick, bool, error) {
	in := append([]int32(nil), tokens...)
	for i, f := range from {
		if f >= 0 {
			in[i] = q.last[f]
		}
	}
	picks, err := q.Batcher.StepBatch(ctx, seqs, in)
	if err == nil {
		for _, seq := range seqs {
			q.pos[seq]++
		}
		q.last = picks
	} else {
		q.last = make([]int32, len(seqs)) // a failed step's picks: garbage (zeros)
	}
	return func(context.Context) ([]int32, error) { return picks, err }, true, nil
}

func (q *queued) UnqueueSeq(seq int) { q.Truncate(seq, q.pos[seq]-1) }

func (q *queued) KVBytes() int64 {
	if h, ok := q.Batcher.(engine.KVHolder); ok {
		return h.KVBytes()
	}
	return 0
}
