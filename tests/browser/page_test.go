//go:build browser

package browser

import (
	"context"
	"fmt"
	"github.com/webinfer/webinfer/internal/headless"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/sample"
)

// TestPageReport opens the page with ?autorun=1&report=URL in each engine
// and checks the report it POSTs to the real server's /api/reports: the
// engine names itself, WebGPU is used where it works here (the kernel check
// passing on it), and WebKit, without WebGPU, still runs on the CPU path.
func TestPageReport(t *testing.T) {
	ts := startServer(t)
	type run struct {
		e      engine
		name   string
		forced bool // ?backend=webgpu instead of the measured choice
	}
	var runs []run
	for _, e := range engines {
		runs = append(runs, run{e, e.name, false})
		if e.webgpu {
			runs = append(runs, run{e, e.name + "/webgpu-forced", true})
		}
	}
	for _, r := range runs {
		e := r.e
		t.Run(r.name, func(t *testing.T) {
			before, _ := ts.store.Count(context.Background())
			u := ts.URL + "/?autorun=1&prompt=" + url.QueryEscape(genPrompt) + "&maxTokens=" + fmt.Sprint(genTokens) + "&temperature=0&report=" + url.QueryEscape(ts.URL+"/api/reports")
			if r.forced {
				u += "&backend=webgpu"
			}
			body := runInBrowser(t, ts, e, u, ts.fromStore(before))
			rep := decode[report.Report](t, body)
			t.Logf("%s %s: backend %s (%s), path: %s", rep.Engine.Name, rep.Engine.Version, rep.Backend, rep.Precision, rep.Features.Path.Why)
			for _, c := range rep.Checks {
				t.Logf("  %s on %s: ok=%v, %d dispatches in %d submits, %.0f ms", c.Kernel, c.Backend, c.OK, c.Dispatches, c.Submits, c.Millis)
			}
			if rep.Probe != nil {
				t.Logf("  measured: WebGPU %.1f ms/token, CPU %.1f ms/token: %s", rep.Probe.WebGPUMillisPerToken, rep.Probe.CPUMillisPerToken, rep.Probe.Chosen)
			}
			assert.Equal(t, e.name, rep.Engine.Name)
			assert.Empty(t, rep.Errors)
			assert.True(t, rep.Features.Wasm.SIMD, "every engine here has WASM SIMD")
			assert.True(t, rep.Features.CrossOriginIsolated, "the server sends COOP/COEP")
			require.NotEmpty(t, rep.Checks)
			for _, c := range rep.Checks {
				assert.True(t, c.OK, "%s on %s: %+v", c.Kernel, c.Backend, c)
			}
			// Generation: on WebGPU it computes with f32 activations (compared
			// with the native engine in that mode); on the CPU path it is the
			// model core compiled to WASM (the native engine's tokens exactly).
			switch {
			case r.forced:
				assert.Equal(t, "webgpu", rep.Backend)
				assert.Nil(t, rep.Probe, "an explicit backend is not measured")
			case e.webgpu:
				require.NotNil(t, rep.Probe, "with both paths available the engine measures them")
				assert.Greater(t, rep.Probe.WebGPUMillisPerToken, 0.0)
				assert.Greater(t, rep.Probe.CPUMillisPerToken, 0.0)
				assert.Equal(t, rep.Probe.Chosen, rep.Backend)
			default:
				assert.Equal(t, "cpu", rep.Backend)
			}
			want := nativeGreedy(t, rep.Backend == "webgpu")
			if rep.Precision == "f16" {
				// f16 activations (Firefox's lavapipe has shader-f16): each
				// activation rounded to 11 bits moves the logits by about
				// 3e-3 (TestHalfActivations bounds it against the CPU path),
				// so a near tie may go the other way and the text part
				// from there. The first tokens must agree.
				same := 0
				for same < min(len(want), len(rep.Tokens)) && want[same] == rep.Tokens[same] {
					same++
				}
				t.Logf("  f16 activations: the first %d of %d tokens as the f32 path's", same, len(want))
				assert.GreaterOrEqual(t, same, 8, "f16 tokens %v vs f32 %v", rep.Tokens, want)
			} else {
				assert.Equal(t, want, rep.Tokens, "greedy tokens on %s in %s vs native", rep.Backend, e.name)
			}
			assert.NotEmpty(t, rep.Text)
			assert.Greater(t, rep.Metrics.DecodeTokS, 0.0)
			assert.Greater(t, rep.Metrics.LoadMillis, 0.0)
			t.Logf("  generated %d tokens at %.1f tok/s (prefill %.1f tok/s): %q", len(rep.Tokens), rep.Metrics.DecodeTokS, rep.Metrics.PrefillTokS, rep.Text)
			if rep.Backend == "webgpu" {
				// GPU time per kernel of a decode step, from timestamp
				// queries (SwiftShader and lavapipe have them here).
				t.Logf("  GPU kernel times: %v", rep.Metrics.GPUKernels)
				assert.Positive(t, rep.Metrics.GPUKernels["attention"].Dispatches, "per-kernel GPU times in the report")
			}
			if e.webgpu {
				assert.Equal(t, "webgpu", rep.Features.Path.Backend)
				require.NotNil(t, rep.Features.WebGPU.Adapter)
				// The start-up check ran the kernels generation uses here,
				// each kernel's cases in one submit.
				gpu := rep.Checks[0]
				assert.Equal(t, "webgpu", gpu.Backend)
				assert.Equal(t, 1, gpu.Submits, "a kernel's check is one submit")
				assert.Equal(t, len(gpu.Cases), gpu.Dispatches)
				var kernels []string
				for _, c := range rep.Checks {
					if c.Backend == "webgpu" {
						kernels = append(kernels, c.Kernel)
					}
				}
				assert.Subset(t, kernels, []string{"matmul_Q8_0+norm", "matmul_Q8_0+norm+gated", "attention", "argmax", "sample"})
			} else {
				assert.Equal(t, "cpu", rep.Features.Path.Backend)
				assert.False(t, rep.Features.WebGPU.Present)
				assert.Contains(t, rep.Features.Path.Why, "navigator.gpu is absent")
			}
			switch e.name {
			case "chromium":
				assert.Equal(t, "swiftshader", rep.Features.WebGPU.Adapter.Architecture)
				assert.True(t, rep.Features.WebGPU.Adapter.IsFallbackAdapter)
				assert.Equal(t, "f32", rep.Features.Path.Precision, "SwiftShader has no shader-f16")
			case "firefox":
				assert.Equal(t, "f16", rep.Features.Path.Precision, "lavapipe has shader-f16")
				if rep.Backend == "webgpu" {
					assert.Equal(t, "f16", rep.Precision, "generated with f16 activations")
				}
			}
		})
	}

	t.Run("compat matrix", func(t *testing.T) {
		resp, err := ts.Client().Get(ts.URL + "/api/compat")
		require.NoError(t, err)
		defer resp.Body.Close()
		var m struct {
			Rows []struct {
				Engine  string `json:"engine"`
				Backend string `json:"backend"`
			} `json:"rows"`
		}
		require.NoError(t, jsonDecode(resp, &m))
		got := map[string]string{}
		for _, r := range m.Rows {
			got[r.Engine] = r.Backend
		}
		for _, e := range engines {
			if _, ok := got[e.name]; !ok && !t.Failed() {
				t.Errorf("compat matrix lacks %s: %v", e.name, got)
			}
		}
	})
}

// TestChromiumPageDOM drives the page with chromedp and reads what a person
// sees: the adapter panel names SwiftShader, #backend says webgpu, and every
// kernel-check row passes.
func TestChromiumPageDOM(t *testing.T) {
	ts := startServer(t)
	opts := []chromedp.ExecAllocatorOption{chromedp.UserDataDir(t.TempDir())}
	for _, f := range headless.ChromiumFlags {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if hasValue {
			opts = append(opts, chromedp.Flag(name, value))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	opts = append(opts, chromedp.ExecPath("chromium"), chromedp.WindowSize(1280, 1000))
	var lastErr error
	for attempt := 1; attempt <= 2; attempt++ {
		if lastErr = chromiumDOM(t, ts, opts); lastErr == nil {
			return
		}
		t.Logf("attempt %d: %v", attempt, lastErr)
	}
	t.Fatal(lastErr)
}

func chromiumDOM(t *testing.T, ts *testServer, opts []chromedp.ExecAllocatorOption) error {
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// Start the browser without a deadline (a deadline on the first call
	// would bound the whole browser), then bound the page's work.
	if err := chromedp.Do(ctx); err != nil {
		return err
	}
	console := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	go func() {
		for e, err := range console {
			if err != nil {
				return
			}
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, strings.Trim(string(a.Value), `"`))
			}
			t.Logf("console.%s: %s", e.Type, strings.Join(parts, " "))
		}
	}()
	ctx, cancel = context.WithTimeout(ctx, launchTimeout)
	defer cancel()
	// Opening the page, with no parameters, streams text from the default
	// model (CONTRACTS.md section 1).
	err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/"),
		asVoid(chromedp.Poll[bool](`document.getElementById("output") !== null && document.getElementById("output").textContent.length > "And God said".length + 10`,
			chromedp.WithPollingInterval(200*time.Millisecond))),
	)
	if err != nil {
		return fmt.Errorf("opening the page: %w", err)
	}
	opened, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#output")))
	t.Logf("on opening the page, #output streams: %q", opened)
	assert.True(t, strings.HasPrefix(opened, "And God said"), "%q", opened)

	err = chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/?autorun=1&backend=webgpu&temperature=0&maxTokens="+fmt.Sprint(genTokens)+"&prompt="+url.QueryEscape(genPrompt)),
		asVoid(chromedp.Poll[bool]("window.__webinferReport !== undefined", chromedp.WithPollingInterval(200*time.Millisecond))),
	)
	if err != nil {
		return err
	}
	adapter, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#adapter-info")))
	if err != nil {
		return err
	}
	backend, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#backend")))
	output, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#output")))
	modelInfo, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#model-info")))
	tokS, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#tok-s")))
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
	verdicts, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#kernel-check .verdict")).map(e => e.textContent)`))
	if err != nil {
		return err
	}
	t.Logf("#backend %q, #status %q, verdicts %v", backend, status, verdicts)
	// The engine ran in its Web Worker: the page's thread never loaded the
	// WebGPU shim (shim/gpu.js), so all it did was render.
	onPage, err := chromedp.Run(ctx, chromedp.Evaluate[string](`typeof globalThis.webinferGPU + "," + typeof globalThis.webinferConnect`))
	if err != nil {
		return err
	}
	assert.Equal(t, "undefined,function", onPage, "the WebGPU shim on the page's thread, the engine's port")
	// A person types a prompt and presses Generate: the output streams from it.
	const typed = "In the beginning"
	err = chromedp.Do(ctx,
		asVoid(chromedp.Evaluate[bool](`(document.getElementById("prompt").value = "") === ""`)),
		chromedp.SendKeys(chromedp.CSS("#prompt"), typed),
		chromedp.Click(chromedp.CSS("#generate")),
		asVoid(chromedp.Poll[bool](`document.getElementById("status").textContent.startsWith("done")`+
			` && document.getElementById("output").textContent.startsWith(`+"`"+typed+"`"+`)`, chromedp.WithPollingInterval(200*time.Millisecond))),
	)
	if err != nil {
		return fmt.Errorf("typing a prompt and generating: %w", err)
	}
	clicked, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#output")))
	t.Logf("after typing %q and clicking #generate: %q", typed, clicked)
	assert.Greater(t, len(clicked), len(typed)+10)

	// A picture of what a person sees, for looking at after a run.
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		shot := filepath.Join(repoRoot(t), "dist", "screenshot-chromium.png")
		if os.WriteFile(shot, png, 0o644) == nil {
			t.Logf("screenshot: %s", shot)
		}
	}
	t.Logf("#model-info %q, #tok-s %q, #output %q", modelInfo, tokS, output)
	assert.Contains(t, strings.ToLower(adapter), "swiftshader")
	assert.Contains(t, backend, "webgpu")
	assert.Contains(t, status, "done: ")
	assert.Contains(t, modelInfo, "kjv-q8_0.gguf")
	assert.Contains(t, modelInfo, "WebGPU")
	assert.True(t, strings.HasPrefix(output, genPrompt) && len(output) > len(genPrompt)+10, "#output streams the continuation: %q", output)
	assert.NotEqual(t, "—", tokS)
	require.NotEmpty(t, verdicts)
	for _, v := range verdicts {
		assert.Equal(t, "pass", v)
	}
	return nil
}

// asVoid drops an action's value, to use it among Do's steps.
func asVoid[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// genPrompt and genTokens are what the page generates in these tests.
const (
	genPrompt = "And God said"
	genTokens = 24
)

// nativeGreedy is the native engine's greedy continuation of genPrompt with
// the default model (the same Go code the page runs, compiled natively);
// exact uses f32 activations, as the WebGPU backend does.
func nativeGreedy(t *testing.T, exact bool) []int {
	var ids []int
	for _, id := range native(t, genPrompt, genTokens, sample.Params{}, exact) {
		ids = append(ids, int(id))
	}
	return ids
}

// TestPageMissingModel: the page with a model URL that is not there says
// so on the page and in its report (the engine's side fetched it).
func TestPageMissingModel(t *testing.T) {
	ts := startServer(t)
	for _, e := range engines {
		if e.name != "chromium" {
			continue
		}
		// A failed run's report is no page report the store takes (it has
		// no backend): the test's own endpoint gets it.
		u := ts.URL + "/?autorun=1&model=" + url.QueryEscape("/test/nothing-here.gguf") + "&report=" + url.QueryEscape(ts.URL+"/test/result")
		rep := decode[report.Report](t, runInBrowser(t, ts, e, u, ts.fromChannel()))
		require.NotEmpty(t, rep.Errors)
		assert.Contains(t, rep.Errors[0], "HTTP 404")
	}
}
