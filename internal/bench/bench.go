// Package bench measures our engines and their peers side by side on the
// same models, prompt and threads, and returns the JSON of CONTRACTS.md
// section 6: natively our CPU engine and llama.cpp (node-llama-cpp); in
// headless Chromium our page on WebGPU and on the CPU-WASM path, and
// wllama. `webinfer bench` is its command line.
//
// In: a Config. Out: a report.Bench, progress lines on Config.Log.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/webinfer/webinfer/internal/loadgen"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/webinfer/webinfer/wasm/cpu"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/source"
	"github.com/webinfer/webinfer/wasm/synth"
)

// Prompt is the prompt every engine is given (loadgen.Prompt).
const Prompt = loadgen.Prompt

// Config is what to measure.
type Config struct {
	// Engines: "native" (our CPU engine), "streams" (1, 2, 4 and 8
	// concurrent streams through the scheduler, on the first model),
	// "serve" (as many clients of `webinfer serve` over WebSocket, on the
	// first model), "soak" (Soak.Streams such clients for Soak.Duration,
	// every answer checked against its solo run, on the first model) and
	// the peer "llama.cpp"; in
	// headless Chromium, on the first model only, "webgpu" and
	// "cpu-wasm" (our page), "browser-streams" (1, 2, 4 and 8 concurrent
	// streams through the JS API, on the CPU path) and the peer
	// "wllama".
	Engines map[string]bool
	// Browsers are where the in-browser engines run: "chromium",
	// "firefox" (WebGPU in Chromium only); none given: both.
	Browsers       []string
	Models         []string // GGUF files
	Samples        int      // timed runs per measure (after one warm-up)
	BrowserSamples int      // timed runs per measure of the in-browser engines
	Tokens         int      // tokens to generate per run
	Threads        int      // CPU threads for every engine
	Log            io.Writer
}

// Run measures every engine of cfg on every model.
func Run(ctx context.Context, cfg Config) (report.Bench, error) {
	out := report.Bench{Suite: "webinfer-bench", Version: 1, Commit: gitCommit(), Started: time.Now().UTC().Format(time.RFC3339),
		Results: []report.BenchResult{}, Peers: []report.BenchResult{}}
	want, stderr := cfg.Engines, cfg.Log
	if stderr == nil {
		stderr = io.Discard
	}
	for i, path := range cfg.Models {
		st, err := os.Stat(path)
		if err != nil {
			return out, err
		}
		bm := report.BenchModel{Name: strings.TrimSuffix(filepath.Base(path), ".gguf"), Bytes: st.Size()}
		if want["native"] {
			fmt.Fprintf(stderr, "webinfer: bench: native on %s\n", bm.Name)
			rs, err := benchNative(ctx, path, bm, cfg.Samples, cfg.Tokens, cfg.Threads)
			if err != nil {
				return out, err
			}
			out.Results = append(out.Results, rs...)
		}
		if want["streams"] && i == 0 {
			fmt.Fprintf(stderr, "webinfer: bench: native, %v concurrent streams on %s\n", streamCounts, bm.Name)
			rs, err := benchStreams(ctx, path, bm, cfg.Samples, cfg.Tokens, cfg.Threads)
			if err != nil {
				return out, err
			}
			out.Results = append(out.Results, rs...)
			fmt.Fprintf(stderr, "webinfer: bench: native, a chat's second turn with and without prefix reuse on %s\n", bm.Name)
			if rs, err = benchPrefix(ctx, path, bm, cfg.Samples, cfg.Tokens, cfg.Threads); err != nil {
				return out, err
			}
			out.Results = append(out.Results, rs...)
		}
		if want["serve"] && i == 0 {
			fmt.Fprintf(stderr, "webinfer: bench: webinfer serve, %v concurrent sockets on %s\n", streamCounts, bm.Name)
			rs, err := benchServe(ctx, path, bm, cfg.Samples, cfg.Tokens, cfg.Threads)
			if err != nil {
				return out, err
			}
			out.Results = append(out.Results, rs...)
		}
		if want["soak"] && i == 0 {
			fmt.Fprintf(stderr, "webinfer: bench: webinfer serve, a soak of %d sockets for %v on %s\n", Soak.Streams, Soak.Duration, bm.Name)
			rs, err := benchSoak(ctx, path, bm, cfg.Tokens, cfg.Threads, stderr)
			if err != nil {
				return out, err
			}
			out.Results = append(out.Results, rs...)
		}
		if want["llama.cpp"] {
			fmt.Fprintf(stderr, "webinfer: bench: llama.cpp on %s\n", bm.Name)
			rs, err := benchLlamaCpp(ctx, path, bm, cfg.Samples, cfg.Tokens, cfg.Threads)
			if err != nil {
				return out, err
			}
			out.Peers = append(out.Peers, rs...)
		}
		if i == 0 && (want["webgpu"] || want["cpu-wasm"] || want["wllama"] || want["browser-streams"]) {
			browsers := cfg.Browsers
			if len(browsers) == 0 {
				browsers = []string{"chromium", "firefox"}
			}
			rs, ps, err := benchBrowser(ctx, want, browsers, path, bm, cfg.BrowserSamples, cfg.Tokens, cfg.Threads, stderr)
			if err != nil {
				return out, err
			}
			out.Results = append(out.Results, rs...)
			out.Peers = append(out.Peers, ps...)
		}
	}
	return out, nil
}

func testbed(engine, version string, threads int) report.Testbed {
	return report.Testbed{Engine: engine, EngineVersion: version, Adapter: "cpu", OS: runtime.GOOS, CPUCores: runtime.NumCPU(), Threads: threads}
}

func results(tb report.Testbed, bm report.BenchModel, prefill, decode []float64) []report.BenchResult {
	mk := func(c, measure string, s []float64) report.BenchResult {
		r := report.BenchResult{Testbed: tb, Model: bm, Backend: "cpu", Case: c, Measure: measure, Unit: "tok/s", HigherIsBetter: true, Samples: s}
		r.Summarize()
		return r
	}
	return []report.BenchResult{mk("prefill", "prefill_tok_s", prefill), mk("decode", "decode_tok_s", decode)}
}

// stepResults are where a decode token's time went on the CPU path
// (report.StepTimes: natively over the timed runs, in a browser over
// every decode step of the page, warm-up included): decode_step_PHASE_ms for
// each phase of the pass and decode_step_pass_ms for the whole pass
// (the rest of 1000/decode_tok_s is sampling and the engine), and the
// layer products' decode_products_gb_s. Each is one value (the mean over
// the tokens): no samples, no interval. None without st.
func stepResults(tb report.Testbed, bm report.BenchModel, backend string, st *report.StepTimes) []report.BenchResult {
	if st == nil {
		return nil
	}
	const c = "where a decode token's time went (the mean over the run's decode steps)"
	one := func(measure, unit string, higher bool, v float64) report.BenchResult {
		r := report.BenchResult{Testbed: tb, Model: bm, Backend: backend, Case: c, Measure: measure, Unit: unit, HigherIsBetter: higher, Samples: []float64{v}}
		r.Summarize()
		return r
	}
	var out []report.BenchResult
	for _, name := range append(model.PhaseNames[:], "pass") {
		out = append(out, one("decode_step_"+name+"_ms", "ms", false, st.MsPerToken[name]))
	}
	return append(out, one("decode_products_gb_s", "GB/s", true, st.ProductGBs))
}

func benchNative(ctx context.Context, path string, bm report.BenchModel, samples, n, threads int) ([]report.BenchResult, error) {
	m, _, closeFn, err := source.Load(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	var prefill, decode []float64
	for i := 0; i <= samples; i++ {
		res, err := engine.Generate(ctx, m, engine.Request{Prompt: Prompt, MaxTokens: n, Ctx: 512}, func(engine.Token) error { return nil })
		if err != nil {
			return nil, err
		}
		if i == 0 {
			m.Profile = &model.StepProfile{} // the timed runs' steps
			continue                         // warm-up
		}
		prefill = append(prefill, res.PrefillTokS)
		decode = append(decode, res.DecodeTokS)
	}
	tb := testbed("native", runtime.Version(), threads)
	tb.SIMD = cpu.SIMD()
	var st *report.StepTimes
	if t := m.Profile.Times(); t != nil {
		rt := report.StepTimes(*t)
		st = &rt
	}
	return append(results(tb, bm, prefill, decode), stepResults(tb, bm, "cpu", st)...), nil
}

func benchLlamaCpp(ctx context.Context, path string, bm report.BenchModel, samples, n, threads int) ([]report.BenchResult, error) {
	root, err := synth.RepoRoot()
	if err != nil {
		return nil, err
	}
	script := filepath.Join(root, "tests", "bench", "llamacpp-bench.mjs")
	args, _ := json.Marshal(map[string]any{"model": path, "prompt": Prompt, "n": n, "samples": samples, "threads": threads})
	cmd := exec.CommandContext(ctx, "node", script, string(args))
	cmd.Dir = root
	outb, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("llama.cpp bench: %v: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("llama.cpp bench: %w (is node-llama-cpp installed? make setup)", err)
	}
	var r struct {
		Version string    `json:"version"`
		Prefill []float64 `json:"prefill_tok_s"`
		Decode  []float64 `json:"decode_tok_s"`
	}
	if err := json.Unmarshal(outb, &r); err != nil {
		return nil, fmt.Errorf("llama.cpp bench: %w", err)
	}
	return results(testbed("llama.cpp", r.Version, threads), bm, r.Prefill, r.Decode), nil
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
