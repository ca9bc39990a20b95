package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/webinfer/webinfer/wasm/cpu"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/synth"
)

// benchPrompt is the prompt every engine is given: about 32 tokens in the
// GPT-2 and Llama vocabularies.
const benchPrompt = "The old lighthouse keeper climbed the spiral stairs each evening, counting one hundred and twelve steps, to light the lamp that guided ships home"

// bench runs `webinfer bench`: our native engine and llama.cpp
// (node-llama-cpp, same model, same prompt, same threads) side by side.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("bench", stderr)
	engines := fl.String("engines", "native,llama.cpp,webgpu,cpu-wasm,wllama", "what to measure: native (our CPU engine) and the peer llama.cpp; in headless Chromium, on the first model only: webgpu and cpu-wasm (our page) and the peer wllama")
	browserSamples := fl.Int("browser-samples", 3, "timed runs per measure of the in-browser engines")
	modelPath := fl.String("model", "", "GGUF model (default: synthetic SmolLM2-135M-shaped models, see --types)")
	types := fl.String("types", "Q8_0,Q4_0", "with no --model: tensor types of the synthetic models")
	preset := fl.String("preset", "smol135", "with no --model: synthetic model shape")
	samples := fl.Int("samples", 5, "timed runs per measure (after one warm-up)")
	n := fl.Int("tokens", 32, "tokens to generate per run")
	threads := fl.Int("threads", 2, "CPU threads for every engine")
	asJSON := fl.Bool("json", true, "print the JSON of CONTRACTS.md section 6")
	if err := fl.Parse(args); err != nil {
		return err
	}
	runtime.GOMAXPROCS(*threads)
	var models []string
	if *modelPath != "" {
		models = []string{*modelPath}
	} else {
		for _, t := range strings.Split(*types, ",") {
			typ, ok := gguf.TypeByName(strings.TrimSpace(t))
			if !ok {
				return fmt.Errorf("--types: unknown tensor type %q", t)
			}
			fmt.Fprintf(stderr, "webinfer: bench: preparing %s %s\n", *preset, typ)
			p, err := synth.Cached(*preset, typ, 1)
			if err != nil {
				return err
			}
			models = append(models, p)
		}
	}
	out := report.Bench{Suite: "webinfer-bench", Version: 1, Commit: gitCommit(), Started: time.Now().UTC().Format(time.RFC3339),
		Results: []report.BenchResult{}, Peers: []report.BenchResult{}}
	want := map[string]bool{}
	for _, e := range strings.Split(*engines, ",") {
		want[strings.TrimSpace(e)] = true
	}
	for i, path := range models {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		bm := report.BenchModel{Name: strings.TrimSuffix(filepath.Base(path), ".gguf"), Bytes: st.Size()}
		if want["native"] {
			fmt.Fprintf(stderr, "webinfer: bench: native on %s\n", bm.Name)
			rs, err := benchNative(ctx, path, bm, *samples, *n, *threads)
			if err != nil {
				return err
			}
			out.Results = append(out.Results, rs...)
		}
		if want["llama.cpp"] {
			fmt.Fprintf(stderr, "webinfer: bench: llama.cpp on %s\n", bm.Name)
			rs, err := benchLlamaCpp(ctx, path, bm, *samples, *n, *threads)
			if err != nil {
				return err
			}
			out.Peers = append(out.Peers, rs...)
		}
		if i == 0 && (want["webgpu"] || want["cpu-wasm"] || want["wllama"]) {
			rs, ps, err := benchBrowser(ctx, want, path, bm, *browserSamples, *n, *threads, stderr)
			if err != nil {
				return err
			}
			out.Results = append(out.Results, rs...)
			out.Peers = append(out.Peers, ps...)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for _, r := range append(out.Results, out.Peers...) {
		fmt.Fprintf(stdout, "%-10s %-22s %-14s %8.1f %s [%.1f, %.1f]\n", r.Testbed.Engine, r.Model.Name, r.Measure, r.Median, r.Unit, r.CI95[0], r.CI95[1])
	}
	return nil
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

func benchNative(ctx context.Context, path string, bm report.BenchModel, samples, n, threads int) ([]report.BenchResult, error) {
	m, closeFn, err := loadModel(ctx, path)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	var prefill, decode []float64
	for i := 0; i <= samples; i++ {
		res, err := engine.Generate(ctx, m, engine.Request{Prompt: benchPrompt, MaxTokens: n, Ctx: 512}, func(engine.Token) error { return nil })
		if err != nil {
			return nil, err
		}
		if i == 0 {
			continue // warm-up
		}
		prefill = append(prefill, res.PrefillTokS)
		decode = append(decode, res.DecodeTokS)
	}
	tb := testbed("native", runtime.Version(), threads)
	tb.SIMD = cpu.SIMD()
	return results(tb, bm, prefill, decode), nil
}

func benchLlamaCpp(ctx context.Context, path string, bm report.BenchModel, samples, n, threads int) ([]report.BenchResult, error) {
	root, err := synth.RepoRoot()
	if err != nil {
		return nil, err
	}
	script := filepath.Join(root, "tests", "bench", "llamacpp-bench.mjs")
	args, _ := json.Marshal(map[string]any{"model": path, "prompt": benchPrompt, "n": n, "samples": samples, "threads": threads})
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
