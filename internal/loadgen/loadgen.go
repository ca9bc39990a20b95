// Package loadgen drives concurrent generation streams through a
// scheduler and measures them: the aggregate tokens per second and the
// spread of each stream's inter-token latency. The benchmarks use it
// natively (internal/bench) and on WebGPU under Dawn (tests/bench/gpubench);
// it is pure Go, so it builds for js/wasm too.
package loadgen

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/scheduler"
)

// Prompt is the prompt every benchmark gives: about 32 tokens in the
// GPT-2 and Llama vocabularies.
const Prompt = "The old lighthouse keeper climbed the spiral stairs each evening, counting one hundred and twelve steps, to light the lamp that guided ships home"

// Result is one run of concurrent streams.
type Result struct {
	TokS     float64 // tokens of all streams per second, from the first token to the last
	P50, P99 float64 // inter-token latency over every stream's gaps, ms
	Tokens   int     // tokens in all
	MaxBatch int     // the most sequences one step ran (the scheduler's stats, sampled per token)
}

// Streams runs n requests of prompt at once on s (Run must be running),
// each up to tokens tokens with the default sampling and its own seed
// (1 … n), and measures them. ctxLen is each request's context.
func Streams(ctx context.Context, s *scheduler.Scheduler, n, tokens, ctxLen int, prompt string) (Result, error) {
	var rec recorder
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev time.Time
			req := engine.Request{Prompt: prompt, MaxTokens: tokens, Ctx: ctxLen, Sample: sample.Defaults.WithSeed(uint64(i + 1))}
			_, errs[i] = s.Generate(ctx, req, func(t engine.Token) error {
				if t.ID >= 0 {
					prev = rec.token(prev)
				}
				return nil
			})
		}()
	}
	// The batch sizes while the streams run, read from the scheduler's
	// counters (a goroutine: Generate's callbacks run on the scheduler's).
	stop := make(chan struct{})
	sampled := make(chan int)
	go func() {
		most := 0
		for {
			select {
			case <-stop:
				sampled <- most
				return
			case <-time.After(time.Millisecond):
				most = max(most, s.Stats().Running)
			}
		}
	}()
	wg.Wait()
	close(stop)
	maxBatch := <-sampled
	for _, err := range errs {
		if err != nil {
			return Result{}, err
		}
	}
	res, err := rec.result(fmt.Sprintf("%d streams", n))
	res.MaxBatch = maxBatch
	return res, err
}

// recorder collects the token arrivals of concurrent streams.
type recorder struct {
	mu          sync.Mutex
	gaps        []float64 // ms between a stream's consecutive tokens
	first, last time.Time
	tokens      int
}

// token records a token arriving now on a stream whose previous token
// came at prev (zero for its first), and returns now for the next call.
func (r *recorder) token(prev time.Time) time.Time {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first.IsZero() || now.Before(r.first) {
		r.first = now
	}
	if now.After(r.last) {
		r.last = now
	}
	r.tokens++
	if !prev.IsZero() {
		r.gaps = append(r.gaps, float64(now.Sub(prev).Microseconds())/1000)
	}
	return now
}

// result is what was recorded: tokens per second of all streams together
// (first token to last) and the p50 and p99 gaps; an error names what
// (which streams) gave too few tokens to measure.
func (r *recorder) result(what string) (Result, error) {
	if r.tokens < 2 || len(r.gaps) == 0 || !r.last.After(r.first) {
		return Result{}, fmt.Errorf("loadgen: %s gave %d tokens", what, r.tokens)
	}
	sort.Float64s(r.gaps)
	at := func(p float64) float64 { return r.gaps[min(len(r.gaps)-1, int(p*float64(len(r.gaps))))] }
	return Result{TokS: float64(r.tokens-1) / r.last.Sub(r.first).Seconds(), P50: at(0.5), P99: at(0.99), Tokens: r.tokens}, nil
}
