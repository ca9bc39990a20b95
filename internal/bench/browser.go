package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/webinfer/webinfer/internal/headless"
	"github.com/webinfer/webinfer/internal/server"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/synth"
)

// The in-browser engines of `webinfer bench`, measured in headless
// Chromium and Firefox on one model and prompt: our page generating on WebGPU
// (&backend=webgpu), our page on the CPU-WASM path (&backend=cpu), and
// the peer wllama (llama.cpp in WASM, tests/bench/wllama.html).
//
// Our page generates once per load (load, compile and warm-up are not in
// its prefill and decode rates), so each of its samples is one page load;
// wllama runs up to two samples a load after a warm-up generation.

// browserTimeout bounds one page run; a run that times out is tried once
// more (a browser launch can hang on a loaded machine).
const browserTimeout = 10 * time.Minute

// browserBench serves the page, the model and wllama on a local port and
// collects what the pages POST.
type browserBench struct {
	root      string
	modelPath string
	srv       *http.Server
	base      string
	reports   chan []byte
}

func newBrowserBench(root, modelPath string) (*browserBench, error) {
	page, err := server.New(server.Config{Root: root, Logf: func(string, ...any) {}})
	if err != nil {
		return nil, err
	}
	b := &browserBench{root: root, modelPath: modelPath, reports: make(chan []byte, 4)}
	mux := http.NewServeMux()
	// As the page server does: wllama's threads need SharedArrayBuffer,
	// which only cross-origin-isolated pages get.
	isolated := server.Isolate
	mux.Handle("GET /bench/model.gguf", isolated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, modelPath)
	})))
	mux.Handle("GET /bench/wllama.html", isolated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(root, "tests", "bench", "wllama.html"))
	})))
	for _, page := range []string{"webinfer.html", "streams.html"} {
		mux.Handle("GET /bench/"+page, isolated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.ServeFile(w, r, filepath.Join(root, "tests", "bench", page))
		})))
	}
	mux.Handle("GET /bench/wllama/", isolated(http.StripPrefix("/bench/wllama/", http.FileServer(http.Dir(filepath.Join(root, "node_modules", "@wllama", "wllama"))))))
	mux.Handle("POST /bench/report", isolated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case b.reports <- body:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})))
	mux.Handle("/", page)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a secure context, as WebGPU requires
	if err != nil {
		return nil, err
	}
	b.srv = &http.Server{Handler: mux}
	go b.srv.Serve(ln)
	b.base = "http://" + ln.Addr().String()
	return b, nil
}

func (b *browserBench) Close() { b.srv.Close() }

// run opens path in a fresh headless Chromium and returns what the page
// POSTs to /bench/report, trying once more after a timeout.
func (b *browserBench) run(ctx context.Context, browser, path string) ([]byte, error) {
	var err error
	for try := 0; try < 2; try++ {
		var body []byte
		if body, err = b.runOnce(ctx, browser, path); err == nil {
			return body, nil
		}
	}
	return nil, err
}

// runOnce opens path in browser ("chromium" or "firefox") with a fresh
// profile and returns the first report posted.
func (b *browserBench) runOnce(ctx context.Context, browser, path string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "webinfer-bench-"+browser+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for len(b.reports) > 0 { // a late report of an earlier, timed-out run
		<-b.reports
	}
	var cmd *exec.Cmd
	if browser == "firefox" {
		if cmd, err = headless.Firefox(dir, b.base+path); err != nil {
			return nil, err
		}
	} else {
		cmd = headless.Chromium(dir, b.base+path)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // to end the whole tree
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w (make setup installs it)", browser, err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	select {
	case body := <-b.reports:
		return body, nil
	case <-time.After(browserTimeout):
		return nil, fmt.Errorf("%s: no report from %s in %v", browser, path, browserTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// benchBrowser measures the in-browser engines named in want ("webgpu",
// "cpu-wasm", "wllama") on modelPath in each of browsers ("chromium",
// "firefox"; WebGPU in Chromium only): our engines as results, wllama as
// a peer.
func benchBrowser(ctx context.Context, want map[string]bool, browsers []string, modelPath string, bm report.BenchModel, samples, n, threads int, stderr io.Writer) (results, peers []report.BenchResult, err error) {
	root, err := synth.RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	b, err := newBrowserBench(root, modelPath)
	if err != nil {
		return nil, nil, err
	}
	defer b.Close()
	mk := func(tb report.Testbed, backend, c, measure string, s []float64) report.BenchResult {
		r := report.BenchResult{Testbed: tb, Model: bm, Backend: backend, Case: c, Measure: measure, Unit: "tok/s", HigherIsBetter: true, Samples: s}
		r.Summarize()
		return r
	}
	for _, browser := range browsers {
		rs, ps, err := benchOneBrowser(ctx, b, browser, want, bm, samples, n, threads, stderr, mk)
		if err != nil {
			return nil, nil, err
		}
		results, peers = append(results, rs...), append(peers, ps...)
	}
	return results, peers, nil
}

// benchOneBrowser is benchBrowser in one browser.
func benchOneBrowser(ctx context.Context, b *browserBench, browser string, want map[string]bool, bm report.BenchModel, samples, n, threads int, stderr io.Writer,
	mk func(tb report.Testbed, backend, c, measure string, s []float64) report.BenchResult) (results, peers []report.BenchResult, err error) {
	for _, path := range []struct{ engine, backend string }{{"webgpu", "webgpu"}, {"cpu-wasm", "cpu"}} {
		if !want[path.engine] || (path.engine == "webgpu" && browser != "chromium") {
			continue
		}
		q := url.Values{"autorun": {"1"}, "backend": {path.backend}, "model": {"/bench/model.gguf"}, "prompt": {Prompt},
			"maxTokens": {fmt.Sprint(n)}, "threads": {fmt.Sprint(threads)}, "report": {"/bench/report"}}
		var prefill, decode []float64
		var tb report.Testbed
		for i := 0; i < samples; i++ {
			fmt.Fprintf(stderr, "webinfer: bench: %s %s on %s, run %d of %d\n", browser, path.engine, bm.Name, i+1, samples)
			body, err := b.run(ctx, browser, "/?"+q.Encode())
			if err != nil {
				return nil, nil, err
			}
			var rep report.Report
			if err := json.Unmarshal(body, &rep); err != nil {
				return nil, nil, fmt.Errorf("%s %s: report: %w", browser, path.engine, err)
			}
			if len(rep.Errors) > 0 || rep.Backend != path.backend {
				return nil, nil, fmt.Errorf("%s %s: ran on %q with errors %q", browser, path.engine, rep.Backend, rep.Errors)
			}
			prefill = append(prefill, rep.Metrics.PrefillTokS)
			decode = append(decode, rep.Metrics.DecodeTokS)
			tb = report.Testbed{Engine: rep.Engine.Name, EngineVersion: rep.Engine.Version, Adapter: "cpu", OS: runtime.GOOS, CPUCores: runtime.NumCPU()}
			if a := rep.Features.WebGPU.Adapter; a != nil && path.backend == "webgpu" {
				tb.Adapter, tb.Fallback = strings.TrimSpace(a.Vendor+" "+a.Architecture+" "+a.Description), a.IsFallbackAdapter
			}
			if path.backend == "cpu" {
				tb.Threads, tb.SIMD = 1, "none" // Go's own thread, its portable kernels
				if c := rep.CPU; c != nil && c.Threads > 0 {
					tb.Threads, tb.SIMD = c.Threads, c.Kernels
				}
			}
		}
		// The page on the CPU path is "cpu-wasm-page": one cold
		// generation per page load (the kernels' first runs, the weights'
		// copy into the pool in its prefill); "cpu-wasm" is the JS API
		// measured warm, as wllama is, below.
		backend := map[string]string{"webgpu": "webgpu", "cpu": "cpu-wasm-page"}[path.backend]
		results = append(results, mk(tb, backend, "prefill", "prefill_tok_s", prefill), mk(tb, backend, "decode", "decode_tok_s", decode))
	}
	if want["cpu-wasm"] {
		fmt.Fprintf(stderr, "webinfer: bench: %s cpu-wasm (JS API) on %s\n", browser, bm.Name)
		var r struct {
			CPU     *report.CPUPath `json:"cpu"`
			Prefill []float64       `json:"prefill"`
			Decode  []float64       `json:"decode"`
			Error   string          `json:"error"`
		}
		q := url.Values{"model": {"/bench/model.gguf"}, "prompt": {Prompt}, "tokens": {fmt.Sprint(n)}, "samples": {fmt.Sprint(samples)},
			"threads": {fmt.Sprint(threads)}, "report": {"/bench/report"}}
		body, err := b.run(ctx, browser, "/bench/webinfer.html?"+q.Encode())
		if err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, nil, fmt.Errorf("%s cpu-wasm: %w", browser, err)
		}
		if r.Error != "" || len(r.Decode) == 0 {
			return nil, nil, fmt.Errorf("%s cpu-wasm: no measurement: %s", browser, r.Error)
		}
		tb := report.Testbed{Engine: browser, Adapter: "cpu", OS: runtime.GOOS, CPUCores: runtime.NumCPU(), Threads: 1, SIMD: "none"}
		if c := r.CPU; c != nil && c.Threads > 0 {
			tb.Threads, tb.SIMD = c.Threads, c.Kernels
		}
		results = append(results, mk(tb, "cpu-wasm", "prefill", "prefill_tok_s", r.Prefill), mk(tb, "cpu-wasm", "decode", "decode_tok_s", r.Decode))
		if r.CPU != nil {
			results = append(results, stepResults(tb, bm, "cpu-wasm", r.CPU.Step)...)
		}
	}
	if want["browser-streams"] {
		rs, err := browserStreams(ctx, b, browser, bm, samples, n, threads, stderr)
		if err != nil {
			return nil, nil, err
		}
		results = append(results, rs...)
	}
	if want["wllama"] {
		fmt.Fprintf(stderr, "webinfer: bench: %s wllama on %s\n", browser, bm.Name)
		var r struct {
			Version     string    `json:"version"`
			Threads     int       `json:"threads"`
			Multithread bool      `json:"multithread"`
			Prefill     []float64 `json:"prefill"`
			Decode      []float64 `json:"decode"`
			Error       string    `json:"error"`
		}
		// wllama 3.13.0 fails its fourth completion in a page ("Invalid
		// typed array length: 1163217991", its worker's message glue): each
		// page load runs a warm-up and at most two timed completions.
		var prefill, decode []float64
		for len(decode) < samples {
			k := min(2, samples-len(decode))
			q := url.Values{"model": {"/bench/model.gguf"}, "prompt": {Prompt}, "tokens": {fmt.Sprint(n)}, "samples": {fmt.Sprint(k)},
				"threads": {fmt.Sprint(threads)}, "report": {"/bench/report"}}
			body, err := b.run(ctx, browser, "/bench/wllama.html?"+q.Encode())
			if err != nil {
				return nil, nil, err
			}
			r.Error, r.Prefill, r.Decode = "", nil, nil
			if err := json.Unmarshal(body, &r); err != nil {
				return nil, nil, fmt.Errorf("wllama: %w", err)
			}
			if r.Error != "" || len(r.Decode) == 0 {
				return nil, nil, fmt.Errorf("wllama: no measurement: %s", r.Error)
			}
			prefill, decode = append(prefill, r.Prefill...), append(decode, r.Decode...)
		}
		r.Prefill, r.Decode = prefill, decode
		tb := report.Testbed{Engine: browser, EngineVersion: "wllama " + r.Version, Adapter: "cpu", OS: runtime.GOOS, CPUCores: runtime.NumCPU(), Threads: r.Threads, SIMD: "wasm-simd128"}
		peers = append(peers, mk(tb, "wllama", "prefill", "prefill_tok_s", r.Prefill), mk(tb, "wllama", "decode", "decode_tok_s", r.Decode))
	}
	return results, peers, nil
}

// browserStreams measures 1, 2, 4 and 8 concurrent streams through the JS
// API in browser (tests/bench/streams.html: one engine, its scheduler and
// controller as a web app gets them, a seed a stream) on the CPU path: per
// count, the aggregate tok/s the page receives and the p50 and p99 gaps
// between a stream's tokens.
//
// Not on WebGPU yet: on SwiftShader (about 1 tok/s for this model) the
// page's 1+2+4+8 streams of 16 tokens ran past the 10-minute page limit.
func browserStreams(ctx context.Context, b *browserBench, browser string, bm report.BenchModel, samples, n, threads int, stderr io.Writer) ([]report.BenchResult, error) {
	fmt.Fprintf(stderr, "webinfer: bench: %s, %v concurrent streams through the JS API on the CPU path, %s\n", browser, streamCounts, bm.Name)
	counts := make([]string, len(streamCounts))
	for i, c := range streamCounts {
		counts[i] = fmt.Sprint(c)
	}
	q := url.Values{"model": {"/bench/model.gguf"}, "backend": {"cpu"}, "prompt": {Prompt}, "tokens": {fmt.Sprint(n)},
		"counts": {strings.Join(counts, ",")}, "samples": {fmt.Sprint(samples)}, "threads": {fmt.Sprint(threads)}, "report": {"/bench/report"}}
	body, err := b.run(ctx, browser, "/bench/streams.html?"+q.Encode())
	if err != nil {
		return nil, err
	}
	var r struct {
		Backend string          `json:"backend"`
		CPU     *report.CPUPath `json:"cpu"`
		Error   string          `json:"error"`
		Results []struct {
			N        int       `json:"n"`
			TokS     []float64 `json:"tokS"`
			P50      []float64 `json:"p50"`
			P99      []float64 `json:"p99"`
			MaxBatch int       `json:"maxBatch"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s streams: %w", browser, err)
	}
	if r.Error != "" || len(r.Results) == 0 || r.Backend != "cpu" {
		return nil, fmt.Errorf("%s streams: no measurement on the CPU path (ran on %q): %s", browser, r.Backend, r.Error)
	}
	tb := report.Testbed{Engine: browser, Adapter: "cpu", OS: runtime.GOOS, CPUCores: runtime.NumCPU(), Threads: threads}
	if c := r.CPU; c != nil && c.Threads > 0 {
		tb.Threads, tb.SIMD = c.Threads, c.Kernels
	}
	var out []report.BenchResult
	for _, c := range r.Results {
		cs := fmt.Sprintf("%d concurrent streams through the JS API, the engine's controller (batch up to %d)", c.N, c.MaxBatch)
		mk := func(measure, unit string, higher bool, s []float64) report.BenchResult {
			res := report.BenchResult{Testbed: tb, Model: bm, Backend: "cpu-wasm", Case: cs, Measure: measure, Unit: unit, HigherIsBetter: higher, Samples: s}
			res.Summarize()
			return res
		}
		p := fmt.Sprintf("streams%d", c.N)
		out = append(out, mk(p+"_decode_tok_s", "tok/s", true, c.TokS),
			mk(p+"_itl_p50_ms", "ms", false, c.P50), mk(p+"_itl_p99_ms", "ms", false, c.P99))
	}
	if r.CPU != nil {
		out = append(out, batchStepResults(tb, bm, "cpu-wasm", r.CPU.Step)...)
	}
	return out, nil
}

// batchStepResults are where a decode pass's time went by its batch size
// (report.StepTimes.ByBatch, over the whole page's runs):
// decode_pass_bN_PHASE_ms and decode_pass_bN_ms, the mean a pass.
func batchStepResults(tb report.Testbed, bm report.BenchModel, backend string, st *report.StepTimes) []report.BenchResult {
	if st == nil {
		return nil
	}
	var out []report.BenchResult
	for n := 1; n <= 8; n++ {
		b, ok := st.ByBatch[fmt.Sprint(n)]
		if !ok {
			continue
		}
		c := fmt.Sprintf("where a decode pass of %d tokens spent its time (the mean of %d passes)", n, int(b["passes"]))
		one := func(measure string, v float64) report.BenchResult {
			r := report.BenchResult{Testbed: tb, Model: bm, Backend: backend, Case: c, Measure: measure, Unit: "ms", Samples: []float64{v}}
			r.Summarize()
			return r
		}
		for _, name := range model.PhaseNames {
			out = append(out, one(fmt.Sprintf("decode_pass_b%d_%s_ms", n, name), b[name]))
		}
		out = append(out, one(fmt.Sprintf("decode_pass_b%d_ms", n), b["pass"]))
	}
	return out
}
