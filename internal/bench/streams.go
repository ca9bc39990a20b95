package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/webinfer/webinfer/internal/loadgen"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/scheduler"
	"github.com/webinfer/webinfer/wasm/source"
)

// streamCounts are the concurrent streams measured.
var streamCounts = []int{1, 2, 4, 8}

// benchStreams measures n concurrent streams through the scheduler on the
// CPU batch, natively (what `webinfer serve` runs): the aggregate decode
// tok/s of all streams together, and the p50 and p99 inter-token latency
// over every stream's gaps, for each n in streamCounts.
func benchStreams(ctx context.Context, path string, bm report.BenchModel, samples, tokens, threads int) ([]report.BenchResult, error) {
	m, _, closeFn, err := source.Load(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	tb := testbed("native", runtime.Version(), threads)
	return perStreamCount(tb, bm, samples, "%d concurrent streams", "streams%d_decode_tok_s", "streams%d",
		func(n int) (loadgen.Result, error) { return runStreams(ctx, m, n, tokens) })
}

// perStreamCount measures run for every count in streamCounts, samples
// times after a warm-up: the aggregate tok/s as measure tokS (a format of
// the count), and the p50 and p99 inter-token latency as prefix_itl_p50_ms
// and prefix_itl_p99_ms; caseName is the case's format.
func perStreamCount(tb report.Testbed, bm report.BenchModel, samples int, caseName, tokS, prefix string, run func(n int) (loadgen.Result, error)) ([]report.BenchResult, error) {
	var out []report.BenchResult
	for _, n := range streamCounts {
		var agg, p50, p99 []float64
		for i := 0; i <= samples; i++ {
			r, err := run(n)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				continue // warm-up
			}
			agg, p50, p99 = append(agg, r.TokS), append(p50, r.P50), append(p99, r.P99)
		}
		c := fmt.Sprintf(caseName, n)
		mk := func(measure, unit string, higher bool, s []float64) report.BenchResult {
			r := report.BenchResult{Testbed: tb, Model: bm, Backend: "cpu", Case: c, Measure: measure, Unit: unit, HigherIsBetter: higher, Samples: s}
			r.Summarize()
			return r
		}
		p := fmt.Sprintf(prefix, n)
		out = append(out, mk(fmt.Sprintf(tokS, n), "tok/s", true, agg),
			mk(p+"_itl_p50_ms", "ms", false, p50), mk(p+"_itl_p99_ms", "ms", false, p99))
	}
	return out, nil
}

// runStreams runs n streams of tokens each at once through a scheduler
// of n slots on the CPU batch (loadgen.Streams: distinct seeds, the
// default sampling).
func runStreams(ctx context.Context, m *model.Model, n, tokens int) (loadgen.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := scheduler.New(m, engine.CPUBatch(m, n, 512), scheduler.Config{Slots: n, Ctx: 512, Target: time.Hour})
	go s.Run(ctx)
	return loadgen.Streams(ctx, s, n, tokens, 512, Prompt)
}

// benchPrefix measures the time to first token of a chat's second turn
// whose prompt begins with the first turn (prompt and answer): through
// the scheduler that served the first turn (its rows are reused) and
// through a fresh one (the whole prompt prefilled).
func benchPrefix(ctx context.Context, path string, bm report.BenchModel, samples, tokens, threads int) ([]report.BenchResult, error) {
	m, _, closeFn, err := source.Load(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	turn := func(s *scheduler.Scheduler, prompt string) (string, float64, error) {
		var text string
		res, err := s.Generate(ctx, engine.Request{Prompt: prompt, MaxTokens: tokens, Ctx: 1024}, func(t engine.Token) error { text += t.Text; return nil })
		return text, res.TTFTMillis, err
	}
	start := func() (*scheduler.Scheduler, context.CancelFunc) {
		sctx, cancel := context.WithCancel(ctx)
		s := scheduler.New(m, engine.CPUBatch(m, 1, 1024), scheduler.Config{Slots: 1, Ctx: 1024, Target: time.Hour})
		go s.Run(sctx)
		return s, cancel
	}
	var reused, full []float64
	for i := 0; i <= samples; i++ {
		s, stop := start()
		answer, _, err := turn(s, Prompt)
		if err != nil {
			stop()
			return nil, err
		}
		second := Prompt + answer + " And then the keeper"
		_, withReuse, err := turn(s, second)
		stop()
		if err != nil {
			return nil, err
		}
		fresh, stopFresh := start()
		_, without, err := turn(fresh, second)
		stopFresh()
		if err != nil {
			return nil, err
		}
		if i > 0 { // the first pair warms up
			reused, full = append(reused, withReuse), append(full, without)
		}
	}
	tb := testbed("native", runtime.Version(), threads)
	mk := func(measure string, s []float64) report.BenchResult {
		r := report.BenchResult{Testbed: tb, Model: bm, Backend: "cpu", Case: "chat second turn, time to first token", Measure: measure, Unit: "ms", Samples: s}
		r.Summarize()
		return r
	}
	return []report.BenchResult{mk("second_turn_ttft_reused_ms", reused), mk("second_turn_ttft_full_prefill_ms", full)}, nil
}
