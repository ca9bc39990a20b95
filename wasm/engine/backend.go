package engine

import (
	"context"
	"fmt"

	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/sample"
)

// The primitives a backend offers. Backends never call back into the
// engine: the loops that drive a Sequence (Generate, RunBatch) live here.

// Backend runs a model's forward passes for one sequence at a time.
// Reset starts a new sequence of up to ctx positions; Forward feeds tokens
// and returns the last one's logits.
type Backend interface {
	Reset(ctx int) error
	Forward(ctx context.Context, tokens []int32) ([]float32, error)
}

// Pick is a token being picked on a backend: Wait blocks until it is
// known (a read back from the GPU).
type Pick = func(ctx context.Context) (int32, error)

// Decoder is a backend that picks tokens itself (the GPU's sampler or
// argmax) and lets the caller queue step t+1 before step t's token has
// been read back, so that the read and the CPU's work overlap the
// device's. It works on one sequence (Reset's).
type Decoder interface {
	Backend
	// SetSampling sets how sequence seq's next tokens are picked: as
	// sample.Pick picks with p, recent being the tokens the penalties see
	// before the next pick, the k-th pick drawing sample.Uniform(p.Seed,
	// k). An error wrapping sample.ErrBackend says, before anything ran,
	// that the backend cannot sample so (the caller samples on the CPU).
	SetSampling(ctx context.Context, seq int, p sample.Params, recent []int32) error
	// Queue submits a step feeding tokens and picking the next token.
	Queue(ctx context.Context, tokens []int32) (Pick, error)
	// QueueFromPick submits a step whose one input is the pick of the
	// step queued last, which stays on the device; false when the backend
	// cannot (the caller then waits for that pick and Queues it).
	QueueFromPick(ctx context.Context) (Pick, bool, error)
	// Unqueue undoes the step queued last, once its pick has been waited
	// for: its position is free again, as if it never ran.
	Unqueue()
}

// Batcher is a backend holding several sequences (slots 0 … n−1), each
// with its own cache, sampling settings and position, that runs one
// token of each of several of them in one step and picks their next
// tokens itself.
type Batcher interface {
	// ResetSeq empties slot seq.
	ResetSeq(seq int)
	// Truncate keeps the first n positions of slot seq (at most those it
	// holds) and forgets the rest: the next token goes to position n. A
	// prompt that begins with tokens already in a slot reuses their rows.
	Truncate(seq, n int)
	// SetSampling is Decoder's, for slot seq.
	SetSampling(ctx context.Context, seq int, p sample.Params, recent []int32) error
	// Prefill feeds tokens to slot seq without picking a token.
	Prefill(ctx context.Context, seq int, tokens []int32) error
	// StepBatch feeds tokens[i] to slot seqs[i] (distinct slots) in one
	// step and returns each one's next token.
	StepBatch(ctx context.Context, seqs []int, tokens []int32) ([]int32, error)
}

// Chunk is part of a sequence's prompt for a mixed step: Tokens fed to
// slot Seq; with Pick, the last one's next token is picked too (the
// prompt's end, which then decodes).
type Chunk struct {
	Seq    int
	Tokens []int32
	Pick   bool
}

// MixedStepper is a Batcher that runs prompt chunks and decode tokens in
// one step, reading each weight once for all of them (the CPU): the
// scheduler's chunked prefill then costs its decoding sequences no extra
// pass over the weights.
type MixedStepper interface {
	Batcher
	// StepMixed feeds each chunk to its slot and tokens[i] to slot
	// seqs[i] (all slots distinct) in one pass, and returns the next
	// token of each chunk with Pick, in order, then of each seqs[i].
	StepMixed(ctx context.Context, chunks []Chunk, seqs []int, tokens []int32) ([]int32, error)
}

// BatchPick is the picks of a queued batched step, one per sequence in
// the step's order: Wait blocks until they are known.
type BatchPick = func(ctx context.Context) ([]int32, error)

// BatchQueuer is a Batcher that lets the caller queue step t+1 before
// step t's picks have been read back (the GPU), as a Decoder does for one
// sequence: the read and the CPU's work overlap the device's. The caller
// waits for step t, then queues step t+2, never more than one ahead.
type BatchQueuer interface {
	Batcher
	// QueueBatch submits a step feeding slot seqs[i] tokens[i], or, where
	// from[i] >= 0, the pick in column from[i] of the step queued last,
	// which stays on the device (from nil: every token is given). False,
	// and nothing queued, when it cannot take picks so: the caller waits
	// for them and gives them as tokens.
	QueueBatch(ctx context.Context, seqs []int, tokens []int32, from []int) (BatchPick, bool, error)
	// UnqueueSeq undoes slot seq's part of the step queued last, once the
	// step before has been waited for: the slot leaves (a sequence that
	// ended one step late), its position as if the step never ran.
	// SetSampling comes before the slot is used again.
	UnqueueSeq(seq int)
}

// KVFreer is a backend whose KV caches can be given back at once when
// it is done with (FreeKV; it must not be used after): the CPU path's,
// which may live in the browser's CPU pool, whose memory Go's collector
// does not see.
type KVFreer interface{ FreeKV() }

// KVHolder is a backend that says how much memory its KV caches hold
// now. Call it from the goroutine that drives the backend.
type KVHolder interface{ KVBytes() int64 }

// CPUBackend returns the CPU path as a Backend.
func CPUBackend(m *model.Model) Backend { return &cpuBackend{m: m} }

// cpuBackend is model.Forward on a fresh KV cache per sequence.
type cpuBackend struct {
	m  *model.Model
	st *model.State
}

func (b *cpuBackend) Reset(n int) error {
	b.st.Free() // now: its memory may be the CPU pool's
	b.st = b.m.NewState(n)
	return nil
}

func (b *cpuBackend) Forward(_ context.Context, tokens []int32) ([]float32, error) {
	return b.m.Forward(b.st, tokens)
}

// CPUBatch returns the CPU path as a Batcher of n slots of ctx positions
// each. A step is one model.ForwardBatch, reading each weight once for
// all the slots in it (the same logits as each slot's own Forward); each
// slot picks with a sampler seeded from the recent tokens SetSampling
// was given, as the GPU's ring is.
func CPUBatch(m *model.Model, n, ctx int) Batcher {
	b := &cpuBatch{m: m, ctx: ctx, states: make([]*model.State, n), samplers: make([]*sample.Sampler, n)}
	for i := range b.states {
		b.ResetSeq(i)
	}
	return b
}

type cpuBatch struct {
	m        *model.Model
	ctx      int
	states   []*model.State
	samplers []*sample.Sampler
}

// KVBytes is the memory the slots' caches hold now (engine.KVHolder).
func (b *cpuBatch) KVBytes() int64 {
	var n int64
	for _, st := range b.states {
		if st != nil {
			n += st.Bytes()
		}
	}
	return n
}

// FreeKV gives every slot's cache back now (engine.KVFreer); the
// batcher must not be used after.
func (b *cpuBatch) FreeKV() {
	for i, st := range b.states {
		st.Free()
		b.states[i] = nil
	}
}

func (b *cpuBatch) slot(seq int) error {
	if seq < 0 || seq >= len(b.states) {
		return fmt.Errorf("engine: slot %d of %d", seq, len(b.states))
	}
	if b.states[seq] == nil {
		return fmt.Errorf("engine: slot %d: the batcher's caches were freed", seq)
	}
	return nil
}

func (b *cpuBatch) ResetSeq(seq int) {
	if seq >= 0 && seq < len(b.states) {
		b.states[seq].Free() // now: its memory may be the CPU pool's
		b.states[seq] = b.m.NewState(b.ctx)
		b.samplers[seq] = sample.New(sample.Params{})
	}
}

func (b *cpuBatch) Truncate(seq, n int) {
	if b.slot(seq) == nil {
		b.states[seq].Pos = max(0, min(n, b.states[seq].Pos))
	}
}

func (b *cpuBatch) SetSampling(_ context.Context, seq int, p sample.Params, recent []int32) error {
	if err := b.slot(seq); err != nil {
		return err
	}
	s := sample.New(p)
	for _, id := range recent {
		s.Accept(id)
	}
	b.samplers[seq] = s
	return nil
}

func (b *cpuBatch) Prefill(_ context.Context, seq int, tokens []int32) error {
	if err := b.slot(seq); err != nil {
		return err
	}
	_, err := b.m.Forward(b.states[seq], tokens)
	return err
}

func (b *cpuBatch) StepMixed(_ context.Context, chunks []Chunk, seqs []int, tokens []int32) ([]int32, error) {
	if len(seqs) != len(tokens) {
		return nil, fmt.Errorf("engine: a batch of %d slots and %d tokens", len(seqs), len(tokens))
	}
	parts := make([]model.Part, 0, len(chunks)+len(seqs))
	var picked []int // the slot of each part with logits, in order
	for _, c := range chunks {
		if err := b.slot(c.Seq); err != nil {
			return nil, err
		}
		parts = append(parts, model.Part{St: b.states[c.Seq], Tokens: c.Tokens, Logits: c.Pick})
		if c.Pick {
			picked = append(picked, c.Seq)
		}
	}
	for i, seq := range seqs {
		if err := b.slot(seq); err != nil {
			return nil, err
		}
		parts = append(parts, model.Part{St: b.states[seq], Tokens: tokens[i : i+1], Logits: true})
		picked = append(picked, seq)
	}
	logits, err := b.m.ForwardMixed(parts)
	if err != nil {
		return nil, err
	}
	out := make([]int32, 0, len(picked))
	for i, p := range parts {
		if p.Logits {
			seq := picked[len(out)]
			t := b.samplers[seq].Sample(logits[i])
			b.samplers[seq].Accept(t)
			out = append(out, t)
		}
	}
	return out, nil
}

func (b *cpuBatch) StepBatch(_ context.Context, seqs []int, tokens []int32) ([]int32, error) {
	if len(seqs) != len(tokens) {
		return nil, fmt.Errorf("engine: a batch of %d slots and %d tokens", len(seqs), len(tokens))
	}
	sts := make([]*model.State, len(seqs))
	for i, seq := range seqs {
		if err := b.slot(seq); err != nil {
			return nil, err
		}
		sts[i] = b.states[seq]
	}
	logits, err := b.m.ForwardBatch(sts, tokens)
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(seqs))
	for i, seq := range seqs {
		out[i] = b.samplers[seq].Sample(logits[i])
		b.samplers[seq].Accept(out[i])
	}
	return out, nil
}
