//go:build browser

package browser

import (
	"context"
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
)

// TestPageReport opens the page with ?autorun=1&report=URL in each engine
// and checks the report it POSTs to the real server's /api/reports: the
// engine names itself, WebGPU is used where it works here (the kernel check
// passing on it), and WebKit, without WebGPU, still runs on the CPU path.
func TestPageReport(t *testing.T) {
	ts := startServer(t)
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			before, _ := ts.store.Count(context.Background())
			u := ts.URL + "/?autorun=1&report=" + url.QueryEscape(ts.URL+"/api/reports")
			body := runInBrowser(t, ts, e, u, ts.fromStore(before))
			rep := decode[report.Report](t, body)
			t.Logf("%s %s: backend %s (%s), path: %s", rep.Engine.Name, rep.Engine.Version, rep.Backend, rep.Precision, rep.Features.Path.Why)
			for _, c := range rep.Checks {
				t.Logf("  %s on %s: ok=%v, %d dispatches in %d submits, %.0f ms", c.Kernel, c.Backend, c.OK, c.Dispatches, c.Submits, c.Millis)
			}
			assert.Equal(t, e.name, rep.Engine.Name)
			assert.Empty(t, rep.Errors)
			assert.True(t, rep.Features.Wasm.SIMD, "every engine here has WASM SIMD")
			assert.True(t, rep.Features.CrossOriginIsolated, "the server sends COOP/COEP")
			require.NotEmpty(t, rep.Checks)
			for _, c := range rep.Checks {
				assert.True(t, c.OK, "%s on %s: %+v", c.Kernel, c.Backend, c)
			}
			if e.webgpu {
				assert.Equal(t, "webgpu", rep.Backend)
				require.NotNil(t, rep.Features.WebGPU.Adapter)
				gpu := rep.Checks[0]
				assert.Equal(t, "webgpu", gpu.Backend)
				assert.Equal(t, 1, gpu.Submits, "the whole check is one submit")
				assert.Equal(t, len(gpu.Cases), gpu.Dispatches)
			} else {
				assert.Equal(t, "cpu", rep.Backend)
				assert.False(t, rep.Features.WebGPU.Present)
				assert.Contains(t, rep.Features.Path.Why, "navigator.gpu is absent")
			}
			switch e.name {
			case "chromium":
				assert.Equal(t, "swiftshader", rep.Features.WebGPU.Adapter.Architecture)
				assert.True(t, rep.Features.WebGPU.Adapter.IsFallbackAdapter)
				assert.Equal(t, "f32", rep.Precision, "SwiftShader has no shader-f16")
			case "firefox":
				assert.Equal(t, "f16", rep.Precision, "lavapipe has shader-f16")
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
	for _, f := range chromiumFlags {
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
	err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/?autorun=1"),
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
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
	verdicts, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#kernel-check .verdict")).map(e => e.textContent)`))
	if err != nil {
		return err
	}
	t.Logf("#backend %q, #status %q, verdicts %v", backend, status, verdicts)
	// A picture of what a person sees, for looking at after a run.
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		shot := filepath.Join(repoRoot(t), "dist", "screenshot-chromium.png")
		if os.WriteFile(shot, png, 0o644) == nil {
			t.Logf("screenshot: %s", shot)
		}
	}
	assert.Contains(t, strings.ToLower(adapter), "swiftshader")
	assert.Contains(t, backend, "webgpu")
	assert.Contains(t, status, "all kernel checks pass")
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
