package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/sample"
)

func TestControllerAIMD(t *testing.T) {
	c := NewController(8, 64, 0)
	assert.Equal(t, 1, c.Batch(), "one sequence until the target is measured")
	c.Observe(0, 10*time.Millisecond, 1, false)
	assert.Equal(t, 20*time.Millisecond, c.Target)
	assert.Equal(t, 2, c.Batch())
	c.Observe(1, 12*time.Millisecond, 2, false)
	assert.Equal(t, 3, c.Batch(), "full and under the target: one more")
	c.Observe(2, 12*time.Millisecond, 2, false)
	assert.Equal(t, 3, c.Batch(), "not full: no change")
	c.Observe(3, 30*time.Millisecond, 3, false)
	assert.Equal(t, 1, c.Batch(), "over the target: halved")
	c.Observe(4, 30*time.Millisecond, 1, false)
	assert.Equal(t, 1, c.Batch(), "never below the minimum")
	before := c.Chunk()
	c.Observe(5, 5*time.Millisecond, 1, true)
	assert.Greater(t, c.Chunk(), before)
	chunk := c.Chunk()
	c.Observe(6, 40*time.Millisecond, 1, true)
	assert.Less(t, c.Chunk(), chunk, "over the target with a prefill: the chunk shrinks first")
	assert.NotEmpty(t, c.Decisions())
	for _, d := range c.Decisions() {
		assert.NotEmpty(t, d.Why)
	}
}

// simulated is a Batcher whose step time grows with the batch, on a
// simulated clock: base + per sequence. Its picks are a fixed function of
// the token, so sequences are independent.
type simulated struct {
	mu        sync.Mutex
	now       time.Time
	base, per time.Duration
	sizes     []int
	gate      chan struct{} // the first step waits for it to close
}

func (s *simulated) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}
func (s *simulated) ResetSeq(int)      {}
func (s *simulated) Truncate(int, int) {}
func (s *simulated) SetSampling(context.Context, int, sample.Params, []int32) error {
	return nil
}
func (s *simulated) Prefill(_ context.Context, _ int, tokens []int32) error {
	s.mu.Lock()
	s.now = s.now.Add(time.Duration(len(tokens)) * s.per / 4)
	s.mu.Unlock()
	return nil
}
func (s *simulated) StepBatch(_ context.Context, seqs []int, tokens []int32) ([]int32, error) {
	<-s.gate
	s.mu.Lock()
	s.now = s.now.Add(s.base + time.Duration(len(seqs))*s.per)
	s.sizes = append(s.sizes, len(seqs))
	s.mu.Unlock()
	out := make([]int32, len(tokens))
	for i, t := range tokens {
		out[i] = 10 + (t+1)%50 // never the end of generation
	}
	return out, nil
}

// TestControllerOnASimulatedBackend: with steps costing 10 ms + 2 ms a
// sequence, the target (twice the single-sequence step, 24 ms) holds
// about 7 sequences: the batch grows from one to near that and no step
// after the first decisions runs more.
func TestControllerOnASimulatedBackend(t *testing.T) {
	m := tinyModel(t)
	sim := &simulated{now: time.Unix(0, 0), base: 10 * time.Millisecond, per: 2 * time.Millisecond, gate: make(chan struct{})}
	s := start(t, m, sim, Config{Slots: 8, Ctx: 64, Now: sim.clock})
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Generate(context.Background(), engine.Request{Prompt: "Hello world", MaxTokens: 40, Ctx: 64}, func(engine.Token) error { return nil })
			assert.NoError(t, err)
		}()
	}
	// Every request is queued before the first step ends, whatever the
	// goroutines' timing.
	for s.Stats().Submitted < 12 {
		time.Sleep(time.Millisecond)
	}
	close(sim.gate)
	wg.Wait()
	st := s.Stats()
	require.NotEmpty(t, st.Decisions)
	assert.Equal(t, 24*time.Millisecond, s.ctrl.Target)
	largest := 0
	for _, n := range sim.sizes {
		largest = max(largest, n)
	}
	assert.GreaterOrEqual(t, largest, 5, "the batch grew: %v", sim.sizes)
	assert.LessOrEqual(t, largest, 7, "steps of more than 7 miss the target: %v", sim.sizes)
	t.Logf("batch sizes: %v", sim.sizes)
	for _, d := range st.Decisions {
		t.Logf("step %d: %v with %d → batch %d, chunk %d (%s)", d.Step, d.Latency, d.Occupied, d.Batch, d.Chunk, d.Why)
	}
}
