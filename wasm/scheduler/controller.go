package scheduler

import "time"

// Controller chooses how many sequences run in a step and how many prompt
// tokens a prefill chunk takes, from the measured step latency against a
// target inter-token latency: additive increase while steps stay under
// the target, multiplicative decrease when they go over it (AIMD, as
// TCP's congestion window), so the batch grows to what the device
// sustains and backs off when the latency suffers.
//
// It is not safe for concurrent use: the scheduler's loop owns it.
type Controller struct {
	// Target is the inter-token latency to stay under; zero: twice the
	// first measured single-sequence step.
	Target time.Duration
	// Min and Max bound the batch size (Max: the backend's slots).
	Min, Max int
	// ChunkMin and ChunkMax bound the prefill chunk.
	ChunkMin, ChunkMax int

	batch, chunk int
	decisions    []Decision
}

// Decision is one change the controller made, for telemetry.
type Decision struct {
	Step     int           // the scheduler's step count
	Latency  time.Duration // the step that caused it
	Batch    int           // the new batch size
	Chunk    int           // the new prefill chunk
	Why      string
	Occupied int // sequences in the step
}

// NewController starts at one sequence and the smallest chunk, growing up
// to max sequences and maxChunk tokens.
func NewController(max, maxChunk int, target time.Duration) *Controller {
	c := &Controller{Target: target, Min: 1, Max: max, ChunkMin: min(16, maxChunk), ChunkMax: maxChunk}
	c.batch, c.chunk = max, c.ChunkMin
	if target == 0 {
		c.batch = 1 // measure one sequence first
	}
	return c
}

// Batch is how many sequences the next step may run.
func (c *Controller) Batch() int { return c.batch }

// Chunk is how many prompt tokens the next prefill may take.
func (c *Controller) Chunk() int { return c.chunk }

// Decisions returns the changes made so far, oldest first.
func (c *Controller) Decisions() []Decision { return c.decisions }

// Observe takes the latency of step number step, which ran occupied
// sequences (and a prefill chunk when prefilled), and adjusts the batch
// and chunk for the next steps.
func (c *Controller) Observe(step int, latency time.Duration, occupied int, prefilled bool) {
	if occupied == 0 {
		return
	}
	decide := func(batch, chunk int, why string) {
		if batch == c.batch && chunk == c.chunk {
			return
		}
		c.batch, c.chunk = batch, chunk
		c.decisions = append(c.decisions, Decision{Step: step, Latency: latency, Batch: batch, Chunk: chunk, Why: why, Occupied: occupied})
	}
	if c.Target == 0 {
		if occupied != 1 || prefilled {
			return // the target comes from a plain single-sequence step
		}
		c.Target = 2 * latency
		decide(min(c.Max, 2), c.chunk, "target set to twice the single-sequence step")
		return
	}
	switch {
	case latency > c.Target:
		// Over the target: halve the prefill chunk first (a chunk is what
		// a step carries on top of decoding), then the batch.
		if prefilled && c.chunk > c.ChunkMin {
			decide(c.batch, max(c.ChunkMin, c.chunk/2), "over the target: smaller prefill chunk")
			return
		}
		decide(max(c.Min, min(c.batch, occupied)/2), c.chunk, "over the target: smaller batch")
	case occupied >= c.batch && !prefilled && latency*time.Duration(occupied+1)/time.Duration(occupied) <= c.Target:
		// Full, and one more sequence would still be under the target if
		// each cost what they cost on average (an overestimate: part of
		// a step's time is fixed): one more sequence, a larger chunk.
		decide(min(c.Max, c.batch+1), min(c.ChunkMax, c.chunk*2), "under the target: larger batch")
	case prefilled && latency < c.Target*3/4 && c.chunk < c.ChunkMax:
		decide(c.batch, min(c.ChunkMax, c.chunk*2), "under the target: larger prefill chunk")
	}
}

// OutOfMemory takes a step of occupied sequences that ran out of memory
// and returns how many the retry keeps: half of them (at least Min). The
// batch never again grows past them less one: the memory that did not
// hold them will not hold them later either, while these run.
func (c *Controller) OutOfMemory(step, occupied int) int {
	keep := max(c.Min, occupied/2)
	c.Max = max(c.Min, min(c.Max, occupied-1))
	c.batch = keep
	c.decisions = append(c.decisions, Decision{Step: step, Batch: keep, Chunk: c.chunk, Why: "out of memory: smaller batch, the others wait", Occupied: occupied})
	return keep
}
