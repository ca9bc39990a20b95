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
	Batch      int        // the controller's batch size now: how many sequences a step may run
	Chunk      int        // the controller's prefill chunk now: prompt tokens a step may take
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
	// queued is its column in the step queued last (a BatchQueuer's);
	// meaningful only where that step's jobs say so (inflight.has).
	queued int
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
	seq, err := s.NewSequence(req)
	if err != nil {
		return engine.Result{}, err
	}
	return s.GenerateSequence(ctx, seq, emit)
}

// NewSequence makes req's Sequence for this scheduler (its context at
// most the slots' positions).
func (s *Scheduler) NewSequence(req engine.Request) (*engine.Sequence, error) {
	if req.Ctx <= 0 || req.Ctx > s.cfg.Ctx {
		req.Ctx = s.cfg.Ctx
	}
	return engine.NewSequence(s.m, req)
}

// GenerateSequence is Generate for a Sequence made by NewSequence (this
// scheduler's or another's with the same slots): one that was Resumed
// after its backend failed goes on from its tokens so far (its feed is
// the prompt and those tokens), the same tokens following.
func (s *Scheduler) GenerateSequence(ctx context.Context, seq *engine.Sequence, emit func(engine.Token) error) (engine.Result, error) {
	if need, have := positions(seq), s.budgetPositions(); need > have {
		return engine.Result{}, fmt.Errorf("scheduler: the KV memory budget of %d MiB holds %d positions: %w",
			s.cfg.KVBudget>>20, have, model.ContextFullError{Need: need, Have: have})
	}
	j := &job{ctx: ctx, seq: seq, emit: emit, done: make(chan outcome, 1), slot: -1, queued: -1, feed: seq.Feed()}
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
// ErrClosed. On a backend that queues batched steps ahead
// (engine.BatchQueuer: the GPU), step t+1 is queued before step t's
// picks are read back, its tokens those picks, copied on the device; a
// sequence that ends is seen one step late and its part of the step
// queued ahead undone.
func (s *Scheduler) Run(ctx context.Context) {
	l := &loop{s: s, ctx: ctx, active: make([]*job, s.cfg.Slots), held: make([][]int32, s.cfg.Slots),
		budget: s.budgetPositions()}
	l.queuer, _ = s.b.(engine.BatchQueuer)
	l.mixed, _ = s.b.(engine.MixedStepper)
	defer l.close()
	for ; ; l.step++ {
		if ctx.Err() != nil {
			return
		}
		l.take()
		if l.running() == 0 && len(l.waiting) == 0 {
			l.drain() // nothing runs: the step queued ahead was all of requests that left
			select {
			case <-s.wake:
				l.take()
			case <-ctx.Done():
				return
			}
		}
		l.leave()
		l.admit()
		t0 := s.cfg.Now()
		var ran int
		var prefilled bool
		switch {
		case l.queuer != nil:
			prefilled = l.prefill()
			ran = l.decodeQueued()
		case l.mixed != nil:
			ran, prefilled = l.stepMixed()
		default:
			prefilled = l.prefill()
			ran = l.decode()
		}
		if ran < 0 {
			continue // backed off: the step runs again, smaller
		}
		s.ctrl.Observe(l.step, s.cfg.Now().Sub(t0), ran, prefilled)
		l.record(ran, prefilled)
	}
}

// loop is Run's state, touched by Run's goroutine only.
type loop struct {
	s       *Scheduler
	ctx     context.Context
	queuer  engine.BatchQueuer  // the backend, when it queues steps ahead
	mixed   engine.MixedStepper // the backend, when it runs prompt chunks and decode tokens in one pass
	waiting []*job
	active  []*job // by slot
	// held are the tokens whose rows a free slot still holds, for prefix
	// reuse; nil when it holds none.
	held   [][]int32
	budget int       // the positions the KV budget holds
	pend   *inflight // the step queued ahead, not yet waited for
	step   int
}

// inflight is a step queued on a BatchQueuer: its columns' jobs (nil
// where one left and its part was undone) and its picks.
type inflight struct {
	jobs []*job
	wait engine.BatchPick
}

// has says whether j is column c of the step.
func (f *inflight) has(j *job, c int) bool {
	return f != nil && c >= 0 && c < len(f.jobs) && f.jobs[c] == j
}

// take moves the submitted requests to the waiting list.
func (l *loop) take() {
	l.s.mu.Lock()
	l.waiting = append(l.waiting, l.s.queue...)
	l.s.queue = nil
	l.s.mu.Unlock()
}

// close ends every request still in the scheduler with ErrClosed.
func (l *loop) close() {
	l.s.mu.Lock()
	l.s.closed = true
	l.s.mu.Unlock()
	l.take()
	l.drain()
	for _, j := range append(l.waiting, l.active...) {
		if j != nil {
			j.done <- outcome{err: ErrClosed}
		}
	}
}

// drain waits for the step queued ahead, if any, and forgets its picks.
func (l *loop) drain() {
	if l.pend != nil {
		_, _ = l.pend.wait(l.ctx)
		l.pend = nil
	}
}

// finish ends j (its Sequence too, unless err); its slot's rows stay usable for a later prompt with the
// same beginning, unless the backend failed (broken marks it).
func (l *loop) finish(j *job, err error, broken bool) {
	// A failed request's Sequence is left open: its caller may Resume it
	// on another backend (a lost device), the same tokens following.
	res := j.seq.Result()
	if err == nil {
		var tail engine.Token
		var ok bool
		if tail, ok, res = j.seq.Finish(); ok {
			err = j.emit(tail)
		}
	}
	if j.slot >= 0 {
		l.active[j.slot] = nil
		l.held[j.slot] = j.rows
		if broken {
			l.s.b.ResetSeq(j.slot)
			l.held[j.slot] = nil
		}
	}
	j.done <- outcome{res: res, err: err}
}

// reserved is the positions the running sequences may fill.
func (l *loop) reserved() int {
	n := 0
	for _, j := range l.active {
		if j != nil {
			n += positions(j.seq)
		}
	}
	return n
}

func (l *loop) running() int {
	n := 0
	for _, j := range l.active {
		if j != nil {
			n++
		}
	}
	return n
}

// leave ends the aborted requests, waiting or running: a running one's
// slot is free from this step (a pick of it still in flight is ignored).
func (l *loop) leave() {
	still := l.waiting[:0]
	for _, j := range l.waiting {
		if err := j.ctx.Err(); err != nil {
			l.finish(j, err, false)
		} else {
			still = append(still, j)
		}
	}
	l.waiting = still
	for _, j := range l.active {
		if j != nil && j.ctx.Err() != nil {
			l.finish(j, j.ctx.Err(), false)
		}
	}
}

// admit gives free slots to waiting requests, first come first served,
// up to the controller's batch and within the KV budget.
func (l *loop) admit() {
	s := l.s
	for len(l.waiting) > 0 && l.running() < s.ctrl.Batch() {
		j := l.waiting[0]
		if l.reserved()+positions(j.seq) > l.budget {
			break // it waits for memory, and those behind it with it
		}
		p := j.feed
		slot, reuse := pickSlot(l.active, l.held, p)
		if slot < 0 {
			break
		}
		l.waiting = l.waiting[1:]
		j.slot, j.admitted, j.queued = slot, l.step, -1
		l.active[slot] = j
		if reuse > 0 {
			s.b.Truncate(slot, reuse)
			j.fed, j.rows = reuse, append([]int32(nil), p[:reuse]...)
			s.mu.Lock()
			s.stats.Reused += reuse
			s.mu.Unlock()
		} else {
			s.b.ResetSeq(slot)
		}
		l.held[slot] = nil
		if err := s.b.SetSampling(j.ctx, slot, j.seq.Params(), j.seq.Recent()); err != nil {
			l.finish(j, err, true)
			continue
		}
		j.next = p[len(p)-1]
	}
}

// prefill runs one chunk of the first sequence still reading its prompt,
// if any; true when there was one.
func (l *loop) prefill() bool {
	for _, j := range l.active {
		if j == nil || j.fed >= len(j.feed)-1 {
			continue
		}
		p := j.feed
		n := min(l.s.ctrl.Chunk(), len(p)-1-j.fed)
		if err := l.s.b.Prefill(j.ctx, j.slot, p[j.fed:j.fed+n]); err != nil {
			l.finish(j, err, true)
		} else {
			j.rows = append(j.rows, p[j.fed:j.fed+n]...)
			j.fed += n
		}
		return true
	}
	return false
}

// stepMixed runs, in one pass, one step of every decoding sequence and
// the next chunks of the prompts still being read, first admitted first,
// up to the controller's chunk size in all; a chunk that reaches its
// prompt's end picks that sequence's first token in the same pass. It
// returns the tokens picked (-1 when it backed off) and whether it read
// any prompt.
func (l *loop) stepMixed() (int, bool) {
	var reading []*job
	for _, j := range l.active {
		if j != nil && j.fed < len(j.feed)-1 {
			reading = append(reading, j)
		}
	}
	sort.SliceStable(reading, func(a, b int) bool { return reading[a].admitted < reading[b].admitted })
	budget := l.s.ctrl.Chunk()
	var chunks []engine.Chunk
	var fed, picking []*job
	for _, j := range reading {
		if budget <= 0 {
			break
		}
		left := len(j.feed) - j.fed // with the last prompt token
		n := min(budget, left)
		chunks = append(chunks, engine.Chunk{Seq: j.slot, Tokens: j.feed[j.fed : j.fed+n], Pick: n == left})
		fed = append(fed, j)
		if n == left {
			picking = append(picking, j)
		}
		budget -= n
	}
	jobs := l.decoding(nil)
	if len(jobs) == 0 && len(chunks) == 0 {
		return 0, false
	}
	slots, tokens := make([]int, len(jobs)), make([]int32, len(jobs))
	for i, j := range jobs {
		slots[i], tokens[i] = j.slot, j.next
	}
	picks, err := l.mixed.StepMixed(l.ctx, chunks, slots, tokens)
	if err != nil {
		return l.fail(append(fed, jobs...), err), len(chunks) > 0
	}
	for i, j := range fed {
		c := chunks[i].Tokens
		if chunks[i].Pick {
			c = c[:len(c)-1] // the last is j.next, which accept appends
		}
		j.rows = append(j.rows, c...)
		j.fed += len(c)
	}
	l.accept(append(picking, jobs...), picks, nil)
	return len(picking) + len(jobs), len(chunks) > 0
}

// decoding is the running sequences whose prompts are in, by slot; with
// skip, those left out that surely end with the pick in flight (their
// last token).
func (l *loop) decoding(skip func(*job) bool) []*job {
	var out []*job
	for _, j := range l.active {
		if j != nil && j.fed >= len(j.feed)-1 && (skip == nil || !skip(j)) {
			out = append(out, j)
		}
	}
	return out
}

// decode runs one step of every decoding sequence and hands out its
// picks. It returns the step's size, or -1 when it backed off.
func (l *loop) decode() int {
	jobs := l.decoding(nil)
	if len(jobs) == 0 {
		return 0
	}
	slots, tokens := make([]int, len(jobs)), make([]int32, len(jobs))
	for i, j := range jobs {
		slots[i], tokens[i] = j.slot, j.next
	}
	picks, err := l.s.b.StepBatch(l.ctx, slots, tokens)
	if err != nil {
		return l.fail(jobs, err)
	}
	l.accept(jobs, picks, nil)
	return len(jobs)
}

// decodeQueued queues the next step of every decoding sequence, its
// tokens the picks of the step queued before it where its sequences were
// in that one, then waits for that step and hands out its picks. It
// returns the size of the step it queued, or -1 when it backed off.
func (l *loop) decodeQueued() int {
	pend := l.pend
	// A sequence whose pick in flight is its last is not queued again.
	last := func(j *job) bool { return pend.has(j, j.queued) && j.seq.Remaining() <= 1 }
	jobs := l.decoding(last)
	var cur *inflight
	if len(jobs) > 0 {
		slots, tokens, from := make([]int, len(jobs)), make([]int32, len(jobs)), make([]int, len(jobs))
		for i, j := range jobs {
			slots[i], tokens[i], from[i] = j.slot, j.next, -1
			if pend.has(j, j.queued) {
				from[i] = j.queued // its input is its pick in flight
			}
		}
		wait, ok, err := l.queuer.QueueBatch(l.ctx, slots, tokens, from)
		if err == nil && !ok {
			// Its tokens cannot come from the picks on the device: wait
			// for them first, then step as without queueing ahead.
			if n, done := l.settle(nil); done {
				return n
			}
			return l.decode()
		}
		if err != nil {
			failed := append(l.pendJobs(), jobs...)
			l.drain()
			return l.fail(failed, err)
		}
		cur = &inflight{jobs: jobs, wait: wait}
		for i, j := range jobs {
			j.queued = i
		}
	}
	if n, done := l.settle(cur); done {
		return n
	}
	l.pend = cur
	return len(jobs)
}

// settle waits for the step queued ahead and hands out its picks; a
// sequence that ends with them leaves next, the step queued after, its
// part undone. done (with decode's result) when the wait failed.
func (l *loop) settle(next *inflight) (int, bool) {
	pend := l.pend
	if pend == nil {
		return 0, false
	}
	l.pend = nil
	picks, err := pend.wait(l.ctx)
	if err != nil {
		l.pend = next
		jobs := l.pendJobs() // next's: its picks are lost with the failure
		l.drain()
		return l.fail(append(jobs, pend.jobs...), err), true
	}
	l.accept(pend.jobs, picks, next)
	return 0, false
}

// pendJobs is the running jobs of the step queued ahead.
func (l *loop) pendJobs() []*job {
	if l.pend == nil {
		return nil
	}
	return l.pend.jobs
}

// accept hands out a step's picks to its jobs still running: each
// Sequence accepts its own; one that ends leaves, and its part of next
// (the step queued after this one, if any) is undone.
func (l *loop) accept(jobs []*job, picks []int32, next *inflight) {
	for i, j := range jobs {
		if j == nil || j.slot < 0 || l.active[j.slot] != j {
			continue // it left while its pick was in flight
		}
		j.rows = append(j.rows, j.next)
		ended := false
		if t, ok := j.seq.Accept(picks[i]); ok {
			if err := j.emit(t); err != nil {
				l.finish(j, err, false)
				ended = true
			}
		}
		if !ended && j.seq.Done() {
			l.finish(j, nil, false)
			ended = true
		}
		if ended {
			if next.has(j, j.queued) {
				l.queuer.UnqueueSeq(j.slot)
				next.jobs[j.queued] = nil
			}
			continue
		}
		j.next = picks[i]
	}
}

// fail handles a failed step of jobs (those still running): out of
// memory with more than one sequence backs off (the smaller batch runs
// the step again: -1); anything else ends them all with the error.
func (l *loop) fail(jobs []*job, err error) int {
	var ran []*job
	seen := map[*job]bool{}
	for _, j := range jobs {
		if j != nil && j.slot >= 0 && l.active[j.slot] == j && !seen[j] {
			seen[j] = true
			ran = append(ran, j)
		}
	}
	oom := errors.Is(err, webgpu.ErrOutOfMemory) || errors.Is(err, model.ErrKVMemory) // the GPU's, or the CPU pool's
	if oom && len(ran) > 1 {
		s := l.s
		back := s.backOff(l.active, l.held, ran, s.ctrl.OutOfMemory(l.step, len(ran)))
		l.waiting = append(back, l.waiting...)
		s.mu.Lock()
		s.stats.Preempted += len(back)
		s.stats.Decisions = s.ctrl.Decisions()
		s.mu.Unlock()
		return -1
	}
	for _, j := range ran {
		l.finish(j, err, true) // the step failed for all of them
	}
	return len(ran)
}

// record updates the counters after a step of ran sequences.
func (l *loop) record(ran int, prefilled bool) {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if ran > 0 {
		s.stats.Steps++
	}
	if prefilled {
		s.stats.Prefills++
	}
	s.stats.Running, s.stats.Waiting, s.stats.Decisions = ran, len(l.waiting), s.ctrl.Decisions()
	s.stats.Batch, s.stats.Chunk = s.ctrl.Batch(), s.ctrl.Chunk()
	s.stats.KVReserved = int64(l.reserved()) * s.cfg.PositionBytes
	s.stats.KVBytes = s.stats.KVReserved
	if h, ok := s.b.(engine.KVHolder); ok {
		s.stats.KVBytes = h.KVBytes()
	}
}

// backOff keeps the keep sequences of a failed step (ran) admitted
// first, their positions and draws set back to before it (a failed step
// may have written some), and sends the others back to wait, their
// slots emptied, to be prefilled again with their tokens so far
// (Sequence.Resume: the same tokens follow). It returns those, in the
// order they were admitted.
func (s *Scheduler) backOff(active []*job, held [][]int32, ran []*job, keep int) []*job {
	ran = append([]*job(nil), ran...)
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
