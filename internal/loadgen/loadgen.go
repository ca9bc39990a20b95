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
	var mu sync.Mutex
	var gaps []float64
	var first, last time.Time
	var res Result
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev time.Time
			req := engine.Request{Prompt: prompt, MaxTokens: tokens, Ctx: ctxLen, Sample: sample.Defaults.WithSeed(uint64(i + 1))}
			_, errs[i] = s.Generate(ctx, req, func(t engine.Token) error {
				if t.ID < 0 {
					return nil
				}
				now := time.Now()
				mu.Lock()
				defer mu.Unlock()
				if first.IsZero() || now.Before(first) {
					first = now
				}
				last = now
				res.Tokens++
				if !prev.IsZero() {
					gaps = append(gaps, float64(now.Sub(prev).Microseconds())/1000)
				}
				prev = now
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
	res.MaxBatch = <-sampled
	for _, err := range errs {
		if err != nil {
			return Result{}, err
		}
	}
	if res.Tokens < 2 || len(gaps) == 0 {
		return Result{}, fmt.Errorf("loadgen: %d streams gave %d tokens", n, res.Tokens)
	}
	sort.Float64s(gaps)
	at := func(p float64) float64 { return gaps[min(len(gaps)-1, int(p*float64(len(gaps))))] }
	res.TokS = float64(res.Tokens-1) / last.Sub(first).Seconds()
	res.P50, res.P99 = at(0.5), at(0.99)
	return res, nil
}
