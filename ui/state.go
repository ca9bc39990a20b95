// Package ui holds the page's Vugu components. They only display State;
// State.Apply turns the session's events (wasm/session) into it, in one
// place, and the page (wasm/app) asks for a re-render after each.
//
// Components: Page (the root: status bar and panels), AdapterPanel (the
// detected browser features, WebGPU adapter, limits and the chosen code path)
// and KernelCheck (the kernel self-checks against the Go references).
package ui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/webinfer/webinfer/wasm/features"
	"github.com/webinfer/webinfer/wasm/selfcheck"
	"github.com/webinfer/webinfer/wasm/session"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// State is everything the page shows. Change it only under the event
// environment's lock (ee.Lock(); ...; ee.UnlockRender()).
type State struct {
	Status   string           // one line: what the engine is doing
	Features *features.Report // nil until detected
	Device   *webgpu.Info     // the device opened, nil without one
	Backend  string           // the backend in use: "webgpu", "cpu" or "" (not yet)
	Checks   []selfcheck.Result
	Errors   []string
	Done     bool

	// The playground.
	Model        string          // loaded model's name, "" while none
	ModelBackend string          // where generation runs: "WebGPU", or "" for the CPU path
	ModelBytes   int64           // its size
	Prompt       string          // the prompt box
	out          strings.Builder // streamed text (OutputText): appended, never copied whole
	Generating   bool            // a generation is running
	TokS         float64         // decode tok/s of the last or current generation
	TTFTMillis   float64         // time to first token
	firstAt      time.Duration
	// OnGenerate and OnStop are set by the engine (wasm/app).
	OnGenerate func(prompt string)
	OnStop     func()
}

// OutputText is the prompt and the text streamed after it (#output).
func (s *State) OutputText() string { return s.out.String() }

// Apply turns one of the session's events into the page's state: the one
// place that does. Call it under the event environment's lock.
func (s *State) Apply(e session.Event) {
	switch e := e.(type) {
	case session.Progress:
		s.Status = e.Text
		if e.Phase == session.PhaseFetch && e.Loaded > 0 {
			s.Status = fmt.Sprintf("%s: %.1f MB", e.Text, float64(e.Loaded)/1e6)
			if e.Total > 0 {
				s.Status += fmt.Sprintf(" of %.1f", float64(e.Total)/1e6)
			}
		}
		if e.Phase == session.PhaseReady {
			s.Done = true
			s.Status = "ready: all kernel checks pass"
			if len(s.Errors) > 0 {
				s.Status = fmt.Sprintf("ready with %d error(s)", len(s.Errors))
			}
		}
	case session.Detected:
		f := e.Features
		s.Features = &f
	case session.DeviceOpened:
		info := e.Info
		s.Device = &info
	case session.Checked:
		s.Checks = append(s.Checks, e.Result)
	case session.Loaded:
		s.Model, s.ModelBytes = e.Name, e.Bytes
	case session.Chosen:
		s.Backend, s.ModelBackend = e.Backend, ""
		if e.Backend == "webgpu" {
			s.ModelBackend = "WebGPU"
		}
	case session.Started:
		s.Generating, s.TokS, s.TTFTMillis = true, 0, 0
		s.out.Reset()
		s.out.WriteString(e.Prompt)
		s.Status = "generating"
	case session.Token:
		s.out.WriteString(e.Text)
		if e.Index == 0 {
			s.TTFTMillis = float64(e.At.Microseconds()) / 1000
			s.firstAt = e.At
		} else if e.ID >= 0 && e.At > s.firstAt {
			s.TokS = float64(e.Index) / (e.At - s.firstAt).Seconds()
		}
	case session.Done:
		s.Generating = false
		s.TokS = e.Result.DecodeTokS
		s.Status = fmt.Sprintf("done: %d tokens (%s)", e.Result.Tokens, e.Result.Reason)
		if e.Err != nil {
			s.Status = "stopped: " + e.Err.Error()
		}
	case session.Error:
		s.Errors = append(s.Errors, e.Message)
	}
}

// ModelLabel says which model is loaded.
func (s *State) ModelLabel() string {
	if s.Model == "" {
		return "Loading the model…"
	}
	where := "CPU path"
	if s.ModelBackend != "" {
		where = s.ModelBackend
	}
	return fmt.Sprintf("Model: %s (%.1f MB), on %s", s.Model, float64(s.ModelBytes)/1e6, where)
}

// TokSLabel is the text of #tok-s.
func (s *State) TokSLabel() string {
	if s.TokS == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f", s.TokS)
}

// TTFTLabel is the text of #ttft.
func (s *State) TTFTLabel() string {
	if s.TTFTMillis == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f ms", s.TTFTMillis)
}

// Row is one line of a two-column table.
type Row struct{ Name, Value string }

// BackendLabel is the text of #backend.
func (s *State) BackendLabel() string {
	if s.Backend == "" {
		return "backend: …"
	}
	if s.Features != nil && s.Backend == s.Features.Path.Backend {
		return fmt.Sprintf("backend: %s (%s)", s.Backend, s.Features.Path.Precision)
	}
	return "backend: " + s.Backend
}

// AdapterRows describes the adapter the engine uses (or saw).
func (s *State) AdapterRows() []Row {
	f := s.Features
	if f == nil {
		return nil
	}
	if !f.WebGPU.Present {
		return []Row{{"WebGPU", "not available (navigator.gpu is absent)"}}
	}
	if f.WebGPU.Adapter == nil {
		return []Row{{"WebGPU", "no adapter: " + f.WebGPU.Error}}
	}
	a := f.WebGPU.Adapter
	dash := func(v string) string {
		if v == "" {
			return "—"
		}
		return v
	}
	return []Row{
		{"vendor", dash(a.Vendor)},
		{"architecture", dash(a.Architecture)},
		{"description", dash(a.Description)},
		{"device", dash(a.Device)},
		{"fallback adapter", fmt.Sprint(a.IsFallbackAdapter)},
	}
}

// FeatureList is the adapter's WebGPU features, comma-separated.
func (s *State) FeatureList() string {
	if s.Features == nil || len(s.Features.WebGPU.Features) == 0 {
		return "none"
	}
	return strings.Join(s.Features.WebGPU.Features, ", ")
}

// EngineFeatureRows says which of the optional features the engine uses
// the adapter has, and what each is for.
func (s *State) EngineFeatureRows() []Row {
	if s.Features == nil {
		return nil
	}
	has := map[string]bool{}
	for _, f := range s.Features.WebGPU.Features {
		has[f] = true
	}
	var rows []Row
	for _, f := range []struct{ name, use string }{
		{"shader-f16", "f16 activations and KV cache"},
		{"subgroups", "subgroup reductions"},
		{"timestamp-query", "per-kernel GPU timing"},
	} {
		v := "no"
		if has[f.name] {
			v = "yes"
		}
		rows = append(rows, Row{f.name, v + " (" + f.use + ")"})
	}
	return rows
}

// LimitRows lists the adapter's limits, sorted by name.
func (s *State) LimitRows() []Row {
	if s.Features == nil {
		return nil
	}
	var rows []Row
	for k, v := range s.Features.WebGPU.Limits {
		rows = append(rows, Row{k, formatLimit(k, v)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	return rows
}

func formatLimit(name string, v float64) string {
	if strings.HasSuffix(name, "Size") && v >= 1<<20 {
		return fmt.Sprintf("%.0f (%.0f MiB)", v, v/(1<<20))
	}
	return fmt.Sprintf("%.0f", v)
}

// PlatformRows lists what the browser offers besides WebGPU.
func (s *State) PlatformRows() []Row {
	f := s.Features
	if f == nil {
		return nil
	}
	yn := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	return []Row{
		{"WASM SIMD", yn(f.Wasm.SIMD)},
		{"WASM relaxed SIMD", yn(f.Wasm.RelaxedSIMD)},
		{"WASM threads", yn(f.Wasm.Threads)},
		{"WASM memory64", yn(f.Wasm.Memory64)},
		{"JSPI", yn(f.Wasm.JSPI)},
		{"cross-origin isolated", yn(f.CrossOriginIsolated)},
		{"hardware concurrency", fmt.Sprint(f.HardwareConcurrency)},
		{"device memory (GiB)", fmt.Sprint(f.DeviceMemoryGiB)},
		{"storage quota (MiB)", fmt.Sprintf("%.0f", f.Storage.Quota/(1<<20))},
		{"WebGPU in a worker", yn(f.WorkerWebGPU.Adapter)},
		{"WGSL language features", strings.Join(f.WebGPU.WGSLLanguageFeatures, ", ")},
	}
}

// PathText is the chosen code path and why.
func (s *State) PathText() string {
	if s.Features == nil {
		return ""
	}
	p := s.Features.Path
	return fmt.Sprintf("%s, %s: %s", p.Backend, p.Precision, p.Why)
}

// CheckRows is one row per checked case.
func (s *State) CheckRows() []CheckRow {
	var rows []CheckRow
	for _, r := range s.Checks {
		if r.Error != "" {
			rows = append(rows, CheckRow{Backend: r.Backend, Kernel: r.Kernel, Case: "—", Verdict: "error: " + r.Error, Class: "fail"})
			continue
		}
		for _, c := range r.Cases {
			row := CheckRow{
				Backend: r.Backend, Kernel: r.Kernel, Case: c.Name,
				MaxErr: fmt.Sprintf("%.2e", c.Comparison.MaxAbsErr),
				Bound:  fmt.Sprintf("%.2e", c.Comparison.WorstBound),
				NMSE:   fmt.Sprintf("%.1e", c.Comparison.NMSE),
			}
			if c.OK {
				row.Verdict, row.Class = "pass", "pass"
			} else {
				row.Verdict, row.Class = fmt.Sprintf("FAIL (%d outside bound)", c.Comparison.Failures), "fail"
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// CheckRow is one line of the kernel-check table.
type CheckRow struct {
	Backend, Kernel, Case, MaxErr, Bound, NMSE, Verdict, Class string
}

// CheckSummary is one line per backend: submits, dispatches and time.
func (s *State) CheckSummary() []string {
	var out []string
	for _, r := range s.Checks {
		line := fmt.Sprintf("%s on %s: %.1f ms", r.Kernel, r.Backend, r.Millis)
		if r.CompileMillis > 0 {
			line += fmt.Sprintf(" (%.1f compiling)", r.CompileMillis)
		}
		if r.Backend == "webgpu" {
			line += fmt.Sprintf(", %d dispatches in %d submit(s)", r.Dispatches, r.Submits)
		}
		out = append(out, line)
	}
	return out
}
