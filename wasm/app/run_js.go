//go:build js && wasm

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hack-pad/safejs"
	"github.com/vugu/vugu"
	"github.com/webinfer/webinfer/ui"
	"github.com/webinfer/webinfer/wasm/features"
	"github.com/webinfer/webinfer/wasm/jsutil"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/selfcheck"
	"github.com/webinfer/webinfer/wasm/webgpu"
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
		temperature: 0.8,
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

// run detects features, picks the path, runs the kernel checks on it (and
// on the CPU path, always), then publishes the report. Each stage updates
// the page under the event environment's lock.
func run(ctx context.Context, opts options, st *ui.State, ee vugu.EventEnv) {
	update := func(f func()) { ee.Lock(); f(); ee.UnlockRender() }
	rep := report.Report{Tokens: []int{}, Errors: []string{}, Checks: []selfcheck.Result{}}
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		rep.Errors = append(rep.Errors, msg)
		update(func() { st.Errors = append(st.Errors, msg) })
	}

	update(func() { st.Status = "detecting browser features" })
	feats, err := collectFeatures(ctx)
	if err != nil {
		fail("features: %v", err)
	}
	feats.Path = features.Choose(feats, opts.prefs)
	rep.Engine = report.EngineFromUA(feats.UserAgent)
	rep.Features = feats
	update(func() { st.Features = &rep.Features })

	backend := "cpu"
	var dev *webgpu.Device
	if feats.Path.Backend == "webgpu" {
		update(func() { st.Status = "opening the WebGPU device" })
		var disable []string
		if feats.Path.Precision != "f16" {
			disable = append(disable, "shader-f16")
		}
		var err error
		dev, err = webgpu.Open(ctx, webgpu.Options{DisableFeatures: disable})
		if err != nil {
			fail("%v; falling back to the CPU path", err)
		} else {
			info := dev.Info()
			update(func() { st.Device = &info; st.Status = "checking the WebGPU kernels" })
			t0 := time.Now()
			res := selfcheck.MatVecGPU(ctx, dev)
			rep.Metrics.CompileMillis = float64(time.Since(t0).Microseconds()) / 1000
			rep.Checks = append(rep.Checks, res)
			update(func() { st.Checks = append(st.Checks, res) })
			if res.OK {
				backend = "webgpu"
			} else {
				fail("WebGPU kernel check failed (%s); falling back to the CPU path", res.Error)
				dev.Destroy()
				dev = nil
			}
		}
	}

	update(func() { st.Status = "checking the CPU kernels" })
	cpuRes := selfcheck.MatVecCPU()
	rep.Checks = append(rep.Checks, cpuRes)
	if !cpuRes.OK {
		fail("CPU kernel check failed")
	}
	rep.Backend = backend
	rep.Precision = "f32"
	if backend == "webgpu" {
		rep.Precision = feats.Path.Precision
	}

	update(func() {
		st.Checks = append(st.Checks, cpuRes)
		st.Backend = backend
		st.Status = "loading the model"
	})

	// Generation runs on WebGPU where the device passed its check and the
	// model's types have kernels there; otherwise on the CPU path. The
	// report's backend says which ran.
	g, err := loadGenerator(ctx, opts.model, st, ee)
	if err != nil {
		fail("model %s: %v", opts.model, err)
	} else {
		rep.Metrics.LoadMillis = g.loadMillis
		if dev != nil {
			if err := g.useWebGPU(ctx, dev, feats.Path.Precision == "f16"); err != nil {
				fail("%v; generating on the CPU path", err)
			} else if opts.prefs.Backend != "webgpu" {
				// No explicit choice: measure both paths, keep the faster.
				update(func() { st.Status = "measuring the WebGPU and CPU paths" })
				p, err := g.chooseByMeasuring(ctx)
				if err != nil {
					fail("measuring the backends: %v", err)
				}
				rep.Probe = p
			}
		}
		rep.Backend, rep.Precision = g.backendName(), "f32"
		if rep.Backend == "webgpu" {
			rep.Precision = feats.Path.Precision
		}
		update(func() { st.Backend = g.backendName() })
	}

	verdict := "ready: all kernel checks pass"
	if len(rep.Errors) > 0 {
		verdict = fmt.Sprintf("ready with %d error(s)", len(rep.Errors))
	}
	update(func() {
		st.Status = verdict
		st.Done = true
		if g != nil {
			st.Prompt = opts.prompt
		}
	})
	if g != nil && !opts.autorun {
		// Opening the page streams text (CONTRACTS.md section 1): a short
		// continuation of the prompt box's text, which the user can stop.
		if _, err := g.generate(ctx, opts.prompt, 64, 0.8, uint64(time.Now().UnixNano())); err != nil {
			fail("generate: %v", err)
		}
	}
	if g != nil && opts.autorun {
		r, err := g.generate(ctx, opts.prompt, opts.maxTokens, float32(opts.temperature), opts.seed)
		if err != nil {
			fail("generate: %v", err)
		}
		rep.Tokens, rep.Text = r.tokens, r.text
		rep.Metrics.TTFTMillis, rep.Metrics.PrefillTokS, rep.Metrics.DecodeTokS = r.res.TTFTMillis, r.res.PrefillTokS, r.res.DecodeTokS
		rep.Metrics.ITLMillis = r.itl
		if k, err := g.kernelTimes(ctx, r.tokens); err != nil {
			fail("GPU kernel times: %v", err)
		} else {
			rep.Metrics.GPUKernels = k
		}
	}
	publish(ctx, opts, rep, fail)
}

// collectFeatures runs shim/features.js and decodes its report.
func collectFeatures(ctx context.Context) (features.Report, error) {
	var r features.Report
	mod, err := safejs.Global().Get("webinferFeatures")
	if err != nil || mod.IsUndefined() {
		return r, fmt.Errorf("shim/features.js is not loaded")
	}
	p, err := mod.Call("collect")
	if err != nil {
		return r, err
	}
	v, err := jsutil.Await(ctx, p)
	if err != nil {
		return r, err
	}
	b, err := jsutil.JSON(v)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

// publish sets window.__webinferReport and, with ?report=URL, POSTs the
// report there (CONTRACTS.md section 4).
func publish(ctx context.Context, opts options, rep report.Report, fail func(string, ...any)) {
	body, err := json.Marshal(rep)
	if err != nil {
		fail("report: %v", err)
		return
	}
	if opts.autorun && opts.reportURL != "" {
		// net/http in js/wasm goes through the browser's fetch.
		resp, err := http.Post(opts.reportURL, "application/json", bytes.NewReader(body))
		if err != nil {
			fail("report: POST %s: %v", opts.reportURL, err)
		} else {
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				fail("report: POST %s: %s", opts.reportURL, resp.Status)
			}
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
