// Package scheduler batches concurrent generation requests onto one
// backend (continuous batching): requests join and leave between steps;
// each step runs one token of every decoding sequence and, when there is
// room, a chunk of a newly admitted request's prompt (chunked prefill, so a
// long prompt does not stall the others); each sequence keeps its own
// sampling settings, seed, stop strings and position (an engine.Sequence);
// tokens reach each request's callback as they come; an aborted request
// frees its slot at the next step. A Controller sizes the batch and the
// prefill chunk from the measured step latency.
//
// In: an engine.Batcher (gpumodel's Runner with Sequences, or
// engine.CPUBatch) and requests. Out: each request's tokens and Result,
// exactly those it gets alone (greedy or seeded).
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// Config tunes a Scheduler.
type Config struct {
	Slots    int           // sequences the Batcher holds
	Ctx      int           // positions each slot holds
	MaxChunk int           // most prompt tokens one prefill takes (0: 64)
	Target   time.Duration // inter-token latency target (0: twice the single-sequence step)
	// KVBudget bounds the KV cache memory of the running sequences, in
	// bytes (0: no bound but the slots); PositionBytes is what one
	// position of a sequence takes. A request is admitted only when its
	// prompt and all its output fit beside the others' (it waits until
	// they do); one that could never fit fails at once (context-full).
	KVBudget, PositionBytes int64
	// Now is the clock the controller's latencies are read from (tests
	// give a simulated one); nil: time.Now.
	Now func() time.Time
}

// ErrClosed is returned for requests after the scheduler stopped.
var ErrClosed = errors.New("scheduler: closed")

// Scheduler runs requests on a Batcher from one goroutine (Run).
type Scheduler struct {
	m      *model.Model
	b      engine.Batcher
	cfg    Config
	ctrl   *Controller
	wake   chan struct{} // a request was queued
	mu     sync.Mutex    // guards queue, closed and stats
	queue  []*job        // submitted, not yet taken by Run
	closed bool
	stats  Stats
}

// Stats are the scheduler's counters, for telemetry.
type Stats struct {
	Submitted  int        // requests submitted
	Steps      int        // decode steps run
	Prefills   int        // prefill chunks run
	Running    int        // sequences in the last step
	Waiting    int        // requests waiting for a slot
	Reused     int        // prompt tokens not prefilled: their rows were in a slot already
	Preempted  int        // sequences sent back to wait (out of memory), to be prefilled again
	KVReserved int64      // KV memory reserved by the running sequences (worst case: all their positions)
	KVBytes    int64      // KV memory the backend's caches hold (an engine.KVHolder's; else KVReserved)
	Decisions  []Decision // the controller's changes
}

// job is one request in the scheduler.
type job struct {
	ctx  context.Context
	seq  *engine.Sequence
	emit func(engine.Token) error
	done chan outcome
	slot int
	// feed is what the slot is fed before decoding: the prompt, or after
	// a preemption the prompt and the tokens generated so far.
	feed []int32
	fed  int // feed tokens prefilled (all but the last are)
	// admitted is the step it took its slot at.
	admitted int
	next     int32
	// rows are the tokens whose keys and values are in the slot, in order
	// (the prompt as prefilled, then each step's input).
	rows []int32
}

type outcome struct {
	res engine.Result
	err error
}

// New makes a scheduler for m on b; Run must be running for requests to
// progress.
func New(m *model.Model, b engine.Batcher, cfg Config) *Scheduler {
	if cfg.MaxChunk <= 0 {
		cfg.MaxChunk = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Slots = max(cfg.Slots, 1)
	return &Scheduler{m: m, b: b, cfg: cfg, ctrl: NewController(cfg.Slots, cfg.MaxChunk, cfg.Target),
		wake: make(chan struct{}, 1)}
}

// Generate runs req among the other requests, calling emit (from the
// scheduler's goroutine) for each token in order, and returns when it
// ends: its Result, or an error (req's own, ctx's when it was aborted, the
// backend's, or emit's). req.Ctx must not exceed the slots' positions.
func (s *Scheduler) Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
	if req.Ctx <= 0 || req.Ctx > s.cfg.Ctx {
		req.Ctx = s.cfg.Ctx
	}
	seq, err := engine.NewSequence(s.m, req)
	if err != nil {
		return engine.Result{}, err
	}
	if need, have := positions(seq), s.budgetPositions(); need > have {
		return engine.Result{}, fmt.Errorf("scheduler: the KV memory budget of %d MiB holds %d positions: %w",
			s.cfg.KVBudget>>20, have, model.ContextFullError{Need: need, Have: have})
	}
	j := &job{ctx: ctx, seq: seq, emit: emit, done: make(chan outcome, 1), slot: -1, feed: seq.Prompt()}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return engine.Result{}, ErrClosed
	}
	s.queue = append(s.queue, j)
	s.stats.Submitted++
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // Run is already awake
	}
	o := <-j.done
	return o.res, o.err
}

// Stats returns the counters so far.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Decisions = append([]Decision(nil), st.Decisions...)
	return st
}

// positions is the most positions seq fills: its prompt and its output.
func positions(seq *engine.Sequence) int { return len(seq.Prompt()) + seq.Limit() }

// budgetPositions is the positions the KV budget holds in all (every
// slot's, without a budget).
func (s *Scheduler) budgetPositions() int {
	if s.cfg.KVBudget <= 0 || s.cfg.PositionBytes <= 0 {
		return s.cfg.Slots * s.cfg.Ctx
	}
	return int(s.cfg.KVBudget / s.cfg.PositionBytes)
}

// Run schedules until ctx ends; requests still running then end with
// ErrClosed.
func (s *Scheduler) Run(ctx context.Context) {
	var waiting []*job
	active := make([]*job, s.cfg.Slots) // by slot
	tokens := make([]int32, 0, s.cfg.Slots)
	slots := make([]int, 0, s.cfg.Slots)
	take := func() {
		s.mu.Lock()
		waiting = append(waiting, s.queue...)
		s.queue = nil
		s.mu.Unlock()
	}
	defer func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		take()
		for _, j := range append(waiting, active...) {
			if j != nil {
				j.done <- outcome{err: ErrClosed}
			}
		}
	}()
	// held are the tokens whose rows a free slot still holds, for prefix
	// reuse; nil when it holds none.
	held := make([][]int32, s.cfg.Slots)
	// finish ends j; its slot's rows stay usable for a later prompt with
	// the same beginning, unless the backend failed (broken marks it).
	finish := func(j *job, err error, broken bool) {
		tail, ok, res := j.seq.Finish()
		if err == nil && ok {
			err = j.emit(tail)
		}
		if j.slot >= 0 {
			active[j.slot] = nil
			held[j.slot] = j.rows
			if broken {
				s.b.ResetSeq(j.slot)
				held[j.slot] = nil
			}
		}
		j.done <- outcome{res: res, err: err}
	}
	budget := s.budgetPositions()
	// reserved is the positions the running sequences may fill.
	reserved := func() int {
		n := 0
		for _, j := range active {
			if j != nil {
				n += positions(j.seq)
			}
		}
		return n
	}
	running := func() int {
		n := 0
		for _, j := range active {
			if j != nil {
				n++
			}
		}
		return n
	}
	for step := 0; ; step++ {
		// Wait for work when there is none; take what has arrived.
		if ctx.Err() != nil {
			return
		}
		take()
		if running() == 0 && len(waiting) == 0 {
			select {
			case <-s.wake:
				take()
			case <-ctx.Done():
				return
			}
		}
		// Aborted requests leave; free slots take waiting requests, up to
		// the controller's batch.
		still := waiting[:0]
		for _, j := range waiting {
			if err := j.ctx.Err(); err != nil {
				finish(j, err, false)
			} else {
				still = append(still, j)
			}
		}
		waiting = still
		for _, j := range active {
			if j != nil && j.ctx.Err() != nil {
				finish(j, j.ctx.Err(), false)
			}
		}
		for len(waiting) > 0 && running() < s.ctrl.Batch() {
			j := waiting[0]
			if reserved()+positions(j.seq) > budget {
				break // it waits for memory, and those behind it with it (first come, first served)
			}
			p := j.feed
			slot, reuse := pickSlot(active, held, p)
			if slot < 0 {
				break
			}
			waiting = waiting[1:]
			j.slot, j.admitted = slot, step
			active[slot] = j
			if reuse > 0 {
				s.b.Truncate(slot, reuse)
				j.fed, j.rows = reuse, append([]int32(nil), p[:reuse]...)
				s.mu.Lock()
				s.stats.Reused += reuse
				s.mu.Unlock()
			} else {
				s.b.ResetSeq(slot)
			}
			held[slot] = nil
			if err := s.b.SetSampling(j.ctx, slot, j.seq.Params(), j.seq.Recent()); err != nil {
				finish(j, err, true)
				continue
			}
			j.next = p[len(p)-1]
		}
		t0 := s.cfg.Now()
		// One prefill chunk: the first sequence still reading its prompt.
		prefilled := false
		for _, j := range active {
			if j == nil || j.fed >= len(j.feed)-1 {
				continue
			}
			p := j.feed
			n := min(s.ctrl.Chunk(), len(p)-1-j.fed)
			if err := s.b.Prefill(j.ctx, j.slot, p[j.fed:j.fed+n]); err != nil {
				finish(j, err, true)
			} else {
				j.rows = append(j.rows, p[j.fed:j.fed+n]...)
				j.fed += n
			}
			prefilled = true
			break
		}
		// One token of every sequence whose prompt is in.
		slots, tokens = slots[:0], tokens[:0]
		for _, j := range active {
			if j != nil && j.fed >= len(j.feed)-1 {
				slots, tokens = append(slots, j.slot), append(tokens, j.next)
			}
		}
		if len(slots) > 0 {
			picks, err := s.b.StepBatch(ctx, slots, tokens)
			if err != nil && errors.Is(err, webgpu.ErrOutOfMemory) && len(slots) > 1 {
				// Out of memory: a smaller batch retries the step; the
				// sequences admitted last wait again (their slots freed).
				back := s.backOff(active, held, slots, s.ctrl.OutOfMemory(step, len(slots)))
				waiting = append(back, waiting...)
				s.mu.Lock()
				s.stats.Preempted += len(back)
				s.stats.Decisions = s.ctrl.Decisions()
				s.mu.Unlock()
				continue
			}
			for i, slot := range slots {
				j := active[slot]
				if err != nil {
					finish(j, err, true) // the step failed for all of them
					continue
				}
				j.rows = append(j.rows, j.next)
				if t, ok := j.seq.Accept(picks[i]); ok {
					if eerr := j.emit(t); eerr != nil {
						finish(j, eerr, false)
						continue
					}
				}
				if j.seq.Done() {
					finish(j, nil, false)
					continue
				}
				j.next = picks[i]
			}
		}
		s.ctrl.Observe(step, s.cfg.Now().Sub(t0), len(slots), prefilled)
		s.mu.Lock()
		if len(slots) > 0 {
			s.stats.Steps++
		}
		if prefilled {
			s.stats.Prefills++
		}
		s.stats.Running, s.stats.Waiting, s.stats.Decisions = len(slots), len(waiting), s.ctrl.Decisions()
		s.stats.KVReserved = int64(reserved()) * s.cfg.PositionBytes
		s.stats.KVBytes = s.stats.KVReserved
		if h, ok := s.b.(engine.KVHolder); ok {
			s.stats.KVBytes = h.KVBytes()
		}
		s.mu.Unlock()
	}
}

// backOff keeps the keep sequences of a failed step (slots) admitted
// first, their positions and draws set back to before it (a failed step
// may have written some), and sends the others back to wait, their
// slots emptied, to be prefilled again with their tokens so far
// (Sequence.Resume: the same tokens follow). It returns those, in the
// order they were admitted.
func (s *Scheduler) backOff(active []*job, held [][]int32, slots []int, keep int) []*job {
	ran := make([]*job, len(slots))
	for i, slot := range slots {
		ran[i] = active[slot]
	}
	sort.SliceStable(ran, func(a, b int) bool { return ran[a].admitted < ran[b].admitted })
	for _, j := range ran[:keep] {
		s.b.Truncate(j.slot, len(j.rows))
		j.seq.Resume()
		if err := s.b.SetSampling(j.ctx, j.slot, j.seq.Params(), j.seq.Recent()); err != nil {
			// Kept with stale settings would give other tokens: wait too.
			keep = 0
			break
		}
	}
	var back []*job
	for _, j := range ran[keep:] {
		active[j.slot], held[j.slot] = nil, nil
		s.b.ResetSeq(j.slot)
		j.seq.Resume()
		j.feed, j.fed, j.rows, j.slot = j.seq.Feed(), 0, nil, -1
		back = append(back, j)
	}
	return back
}

// pickSlot chooses a free slot for a prompt: the one whose held rows begin
// with the longest prefix of it (all but its last token at most, which a
// step must feed), else any free one; reuse is that prefix's length. -1:
// no slot is free.
func pickSlot(active []*job, held [][]int32, prompt []int32) (slot, reuse int) {
	slot = -1
	for i, j := range active {
		if j != nil {
			continue
		}
		n := 0
		for n < len(held[i]) && n < len(prompt)-1 && held[i][n] == prompt[n] {
			n++
		}
		if slot < 0 || n > reuse {
			slot, reuse = i, n
		}
	}
	return slot, reuse
}
