//go:build js && wasm

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/hack-pad/safejs"
	"github.com/vugu/vugu"
	"github.com/webinfer/webinfer/ui"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/features"
	"github.com/webinfer/webinfer/wasm/jsutil"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/selfcheck"
	"github.com/webinfer/webinfer/wasm/session"
)

// defaultModel is the model the page loads when ?model= is absent: the
// small Llama trained on the King James Bible (assets/models/README.md).
const defaultModel = "assets/models/kjv-q8_0.gguf"

// options are the page's URL parameters (CONTRACTS.md section 4).
type options struct {
	autorun     bool
	reportURL   string
	prefs       features.Prefs
	model       string
	prompt      string
	maxTokens   int
	temperature float64
	seed        uint64
}

func optionsFrom(q url.Values) options {
	o := options{
		autorun:     q.Get("autorun") == "1",
		reportURL:   q.Get("report"),
		prefs:       features.Prefs{Backend: q.Get("backend"), Precision: q.Get("precision")},
		model:       q.Get("model"),
		prompt:      q.Get("prompt"),
		maxTokens:   64,
		temperature: float64(sample.Defaults.Temperature),
		seed:        1,
	}
	if o.model == "" {
		o.model = defaultModel
	}
	if o.prompt == "" {
		o.prompt = "And God said"
	}
	if n, err := strconv.Atoi(q.Get("maxTokens")); err == nil && n > 0 {
		o.maxTokens = n
	}
	if t, err := strconv.ParseFloat(q.Get("temperature"), 64); err == nil && t >= 0 {
		o.temperature = t
	}
	if s, err := strconv.ParseUint(q.Get("seed"), 10, 64); err == nil {
		o.seed = s
	}
	return o
}

// run starts a session (detect, open the device, load, check, choose)
// whose events the page applies to its state, then generates: at once
// with ?autorun=1 (and publishes the report), else a short continuation
// of the prompt box's text (CONTRACTS.md section 1) and on every press of
// Generate.
func run(ctx context.Context, opts options, st *ui.State, ee vugu.EventEnv) {
	emit := func(e session.Event) {
		ee.Lock()
		st.Apply(e)
		ee.UnlockRender()
		if _, ok := e.(session.Token); ok {
			// Give the browser a turn to paint: without a timer, a busy
			// Go program never returns to the JS event loop.
			time.Sleep(time.Millisecond)
		}
	}
	s, err := session.Start(ctx, session.Config{Model: opts.model, Prefs: opts.prefs, Detect: features.Collect}, emit)
	if err != nil {
		publish(ctx, opts, failedReport(err), nil)
		return
	}
	var mu sync.Mutex
	var cancel context.CancelFunc = func() {}
	generate := func(prompt string, maxTokens int, temperature float32, seed uint64) {
		gctx, c := context.WithCancel(ctx)
		mu.Lock()
		cancel = c
		mu.Unlock()
		defer c()
		req := engine.Request{Prompt: prompt, MaxTokens: maxTokens, Sample: sample.Defaults.WithSeed(seed)}
		req.Sample.Temperature = temperature
		_, _ = s.Generate(gctx, req, nil) // errors arrive as events
	}
	ee.Lock()
	st.Prompt = opts.prompt
	st.OnGenerate = func(prompt string) { generate(prompt, 128, sample.Defaults.Temperature, uint64(time.Now().UnixNano())) }
	st.OnStop = func() {
		mu.Lock()
		defer mu.Unlock()
		cancel()
	}
	ee.UnlockRender()
	if !opts.autorun {
		generate(opts.prompt, 64, sample.Defaults.Temperature, uint64(time.Now().UnixNano()))
		return
	}
	generate(opts.prompt, opts.maxTokens, float32(opts.temperature), opts.seed)
	_ = s.ProfileDecode(ctx) // errors arrive as events
	publish(ctx, opts, s.Report(), s)
}

// failedReport is the report of a session that could not start.
func failedReport(err error) report.Report {
	return report.Report{Tokens: []int{}, Errors: []string{err.Error()}, Checks: []selfcheck.Result{}}
}

// publish sets window.__webinferReport and, with ?report=URL, POSTs the
// report there (CONTRACTS.md section 4). A failure to POST is recorded in
// s's report (when there is a session) and in the published one.
func publish(ctx context.Context, opts options, rep report.Report, s *session.Session) {
	fail := func(format string, args ...any) {
		rep.Errors = append(rep.Errors, fmt.Sprintf(format, args...))
		if s != nil {
			s.Fail(session.CodeNetwork, format, args...)
		}
	}
	body, err := json.Marshal(rep)
	if err != nil {
		fail("report: %v", err)
		return
	}
	if opts.autorun && opts.reportURL != "" {
		status, err := jsutil.PostJSON(ctx, opts.reportURL, body)
		if err != nil {
			fail("report: POST %s: %v", opts.reportURL, err)
		} else if status/100 != 2 {
			fail("report: POST %s: HTTP %d", opts.reportURL, status)
		}
		if len(rep.Errors) > 0 {
			body, _ = json.Marshal(rep)
		}
	}
	v, err := jsutil.ValueFromJSON(body)
	if err == nil {
		_ = safejs.Global().Set("__webinferReport", v)
	}
}
