//go:build js && wasm

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"syscall/js"
	"time"

	"github.com/hack-pad/safejs"
	"github.com/vugu/vugu"
	"github.com/webinfer/webinfer/ui"
	"github.com/webinfer/webinfer/wasm/api"
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
	worker      bool // the engine in a Web Worker (?worker=0: on the page's thread)
	threads     int  // the CPU path's threads (?threads=N; 0: the pool's size)
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
		worker:      q.Get("worker") != "0",
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
	if n, err := strconv.Atoi(q.Get("threads")); err == nil && n > 0 {
		o.threads = n
	}
	return o
}

// run starts the engine in its Web Worker and loads the model there,
// applying the session's events (forwarded by the engine) to the page's
// state, then generates: at once with ?autorun=1 (and publishes the
// report), else a short continuation of the prompt box's text
// (CONTRACTS.md section 1) and on every press of Generate. The page's
// thread only renders.
// renderEvery is the page's fastest rendering of a stream of tokens.
const renderEvery = 100 * time.Millisecond

func run(ctx context.Context, opts options, st *ui.State, ee vugu.EventEnv) {
	// Tokens and progress come tens of times a second: the page renders
	// them at most every renderEvery, so that rendering (Go on this
	// thread, then the DOM) does not take a core from the engine, which
	// on a small machine is every core. Other events render at once.
	var lastRender time.Time
	var renderPending bool // a deferred render is scheduled (under ee's lock)
	apply := func(e session.Event) {
		ee.Lock()
		st.Apply(e)
		switch e.(type) {
		case session.Token, session.Progress:
			if wait := renderEvery - time.Since(lastRender); wait > 0 {
				if !renderPending {
					renderPending = true
					time.AfterFunc(wait, func() {
						ee.Lock()
						renderPending, lastRender = false, time.Now()
						ee.UnlockRender()
					})
				}
				ee.UnlockOnly()
				return
			}
		}
		lastRender = time.Now()
		ee.UnlockRender()
	}
	fail := func(err error) {
		code := session.CodeInternal
		var ee *engineError
		if errors.As(err, &ee) {
			code = ee.code
		}
		apply(session.Error{Code: code, Message: err.Error()})
		publish(ctx, opts, failedReport(err), apply)
	}
	c, err := connect(ctx, opts.worker, apply)
	if err != nil {
		fail(err)
		return
	}
	load := api.In{Op: api.OpLoad, Model: absoluteURL(opts.model), Name: opts.model,
		Backend: opts.prefs.Backend, Precision: opts.prefs.Precision, Threads: opts.threads, Events: true, FetchHere: true}
	if _, err := c.call(ctx, load); err != nil {
		// The session's own Error event is shown already, unless the
		// download itself failed (on the engine's side, before a session).
		var ee *engineError
		if errors.As(err, &ee) && ee.code == session.CodeNetwork {
			apply(session.Error{Code: ee.code, Message: err.Error()})
		}
		publish(ctx, opts, failedReport(err), apply)
		return
	}
	var mu sync.Mutex
	current := 0
	generate := func(prompt string, maxTokens int, temperature float64, seed uint64) {
		options := map[string]any{"maxTokens": maxTokens, "temperature": temperature, "seed": seed % (1 << 53)}
		id, wait := c.start(ctx, api.In{Op: api.OpGenerate, Prompt: &prompt, Options: options})
		mu.Lock()
		current = id
		mu.Unlock()
		_, _ = wait() // errors arrive as session events
	}
	ee.Lock()
	st.Prompt = opts.prompt
	st.OnGenerate = func(prompt string) { // in a goroutine of the playground's
		generate(prompt, 128, float64(sample.Defaults.Temperature), uint64(time.Now().UnixNano()))
	}
	st.OnStop = func() {
		mu.Lock()
		defer mu.Unlock()
		c.send(api.In{Op: api.OpAbort, ID: current})
	}
	ee.UnlockRender()
	if !opts.autorun {
		generate(opts.prompt, 64, float64(sample.Defaults.Temperature), uint64(time.Now().UnixNano()))
		return
	}
	generate(opts.prompt, opts.maxTokens, opts.temperature, opts.seed)
	out, err := c.call(ctx, api.In{Op: api.OpReport, Profile: true})
	if err != nil {
		fail(err)
		return
	}
	var rep report.Report
	b, _ := json.Marshal(out.Value)
	if err := json.Unmarshal(b, &rep); err != nil {
		fail(fmt.Errorf("the engine's report: %w", err))
		return
	}
	publish(ctx, opts, rep, apply)
}

// absoluteURL resolves u against the page: the engine's worker would
// resolve a relative URL against its own script.
func absoluteURL(u string) string {
	base, err := url.Parse(js.Global().Get("location").Get("href").String())
	if err != nil {
		return u
	}
	ref, err := url.Parse(u)
	if err != nil {
		return u
	}
	return base.ResolveReference(ref).String()
}

// failedReport is the report of a session that could not start.
func failedReport(err error) report.Report {
	return report.Report{Tokens: []int{}, Errors: []string{err.Error()}, Checks: []selfcheck.Result{}}
}

// publish sets window.__webinferReport and, with ?report=URL, POSTs the
// report there (CONTRACTS.md section 4). A failure to POST is in the
// published report and shown on the page (through apply).
func publish(ctx context.Context, opts options, rep report.Report, apply func(session.Event)) {
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		rep.Errors = append(rep.Errors, msg)
		apply(session.Error{Code: session.CodeNetwork, Message: msg, Recoverable: true})
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
