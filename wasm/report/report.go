// Package report defines the page's run report (CONTRACTS.md section 4):
// what a browser did, on which backend, how fast and with which errors.
// The page builds it and POSTs it; the server stores it and builds the
// compatibility matrix from many of them.
package report

import (
	"regexp"
	"strings"

	"github.com/webinfer/webinfer/wasm/features"
	"github.com/webinfer/webinfer/wasm/selfcheck"
)

// Engine names the browser engine that ran the page.
type Engine struct {
	Name    string `json:"name"`    // "chromium", "firefox", "webkit", "node" or "unknown"
	Version string `json:"version"` // the engine's version as its user agent gives it
	UA      string `json:"ua"`
}

// ITL is the inter-token latency distribution, in milliseconds.
type ITL struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// Metrics are the run's timings.
type Metrics struct {
	LoadMillis    float64 `json:"load_ms"`
	CompileMillis float64 `json:"compile_ms"`
	// UploadMillis is the weights' upload to the GPU (0 on the CPU path):
	// this project's addition, with TTFTBreakdown.
	UploadMillis float64 `json:"upload_ms,omitempty"`
	TTFTMillis   float64 `json:"ttft_ms"`
	// TTFTBreakdown is where the time to the first token went, from the
	// model's fetch on (the JS API's stats().ttftBreakdownMs).
	TTFTBreakdown *TTFTBreakdown `json:"ttft_breakdown_ms,omitempty"`
	PrefillTokS   float64        `json:"prefill_tok_s"`
	DecodeTokS    float64        `json:"decode_tok_s"`
	ITLMillis     ITL            `json:"itl_ms"`
	// GPUKernels is the GPU time of each kernel in one decode step after
	// the generation, from timestamp queries (WebGPU with timestamp-query
	// only): this project's addition to the contract's metrics.
	GPUKernels map[string]KernelTime `json:"gpu_kernels,omitempty"`
}

// TTFTBreakdown is where the first token's time went: the model's fetch
// (or cache read), the upload of the weights, the kernels' compilation
// (with their self-check), and the prefill of the last generation.
type TTFTBreakdown struct {
	Fetch   float64 `json:"fetch"`
	Upload  float64 `json:"upload"`
	Compile float64 `json:"compile"`
	Prefill float64 `json:"prefill"`
}

// KernelTime is one kernel's GPU time in a step, over its dispatches.
type KernelTime struct {
	Micros     float64 `json:"us"`
	Dispatches int     `json:"dispatches"`
}

// Report is one page run. Checks (the kernel self-checks) is this project's
// addition to the contract's fields.
type Report struct {
	Engine    Engine             `json:"engine"`
	Features  features.Report    `json:"features"`
	Backend   string             `json:"backend"`
	Precision string             `json:"precision"`
	Tokens    []int              `json:"tokens"`
	Text      string             `json:"text"`
	Metrics   Metrics            `json:"metrics"`
	Checks    []selfcheck.Result `json:"checks"`
	// Probe is how the backend was chosen when both could run: decode
	// milliseconds per token measured on each.
	Probe *Probe `json:"probe,omitempty"`
	// Why is the reason for Backend; Backends is every backend's state
	// (this project's additions).
	Why      string    `json:"why,omitempty"`
	Backends []Backend `json:"backends,omitempty"`
	// CPU is how the CPU path ran its products, when it ran (this
	// project's addition).
	CPU    *CPUPath `json:"cpu,omitempty"`
	Errors []string `json:"errors"`
}

// CPUPath is the CPU path's kernels: in a browser, the threads of its
// pool (shim/cpupool.js; 0 when it did not start, and Why says why),
// and each weight type's kernel, as cpu.SIMD gives them.
type CPUPath struct {
	Threads int    `json:"threads"`
	Kernels string `json:"kernels"`
	Why     string `json:"why,omitempty"`
	// ThreadsGBs is how fast one token's product ran on each thread count
	// of the pool (GB/s), where the count was measured at load;
	// ThreadsWhy says what chose it otherwise (the threads option).
	ThreadsGBs map[string]float64 `json:"threads_gb_s,omitempty"`
	ThreadsWhy string             `json:"threads_why,omitempty"`
	// Step is where the CPU decode steps' time went (model.StepProfile),
	// once one ran.
	Step *StepTimes `json:"step_ms,omitempty"`
}

// StepTimes is the mean milliseconds a CPU decode token spent in each
// phase of its pass (model.PhaseNames, and "pass": the whole pass; the
// rest of a token's time is sampling, the engine and its callers) and
// the layer products' GB/s (weight bytes over their time); the same
// fields as model.StepTimes, which converts to it.
type StepTimes struct {
	Passes     int64              `json:"passes"`
	Tokens     int64              `json:"tokens"`
	MsPerToken map[string]float64 `json:"ms_per_token"`
	ProductGBs float64            `json:"product_gb_s"`
	// ByBatch is, per batch size, the passes and each phase's mean
	// milliseconds a pass (model.StepTimes says how).
	ByBatch map[string]map[string]float64 `json:"by_batch,omitempty"`
}

// Backend is one backend of the session's registry and its health.
type Backend struct {
	Name string `json:"name"` // "webgpu" or "cpu"
	// Health: "unavailable" (this browser lacks it), "starting", "ready"
	// (initialised, its self-check passed), "idle" (not initialised: not
	// needed, or measured slower), "failed" (its start or self-check
	// failed), "lost" (its device was lost; being replaced).
	Health string `json:"health"`
	Why    string `json:"why"`
}

// Probe records the measured choice between the WebGPU and CPU paths.
type Probe struct {
	WebGPUMillisPerToken float64 `json:"webgpu_ms_per_token"`
	CPUMillisPerToken    float64 `json:"cpu_ms_per_token"`
	Chosen               string  `json:"chosen"`
}

var (
	firefoxRE   = regexp.MustCompile(`Firefox/([0-9.]+)`)
	chromeRE    = regexp.MustCompile(`(?:Chrome|Chromium)/([0-9.]+)`)
	webkitRE    = regexp.MustCompile(`AppleWebKit/([0-9.]+)`)
	safariVerRE = regexp.MustCompile(`Version/([0-9.]+)`)
	nodeRE      = regexp.MustCompile(`Node\.js/([0-9.]+)`)
)

// EngineFromUA names the engine from a user agent. This names reports only:
// the engine's code path is chosen from detected features (package
// features), never from the user agent.
func EngineFromUA(ua string) Engine {
	e := Engine{Name: "unknown", UA: ua}
	switch {
	case firefoxRE.MatchString(ua):
		e.Name, e.Version = "firefox", firefoxRE.FindStringSubmatch(ua)[1]
	case chromeRE.MatchString(ua):
		e.Name, e.Version = "chromium", chromeRE.FindStringSubmatch(ua)[1]
	case webkitRE.MatchString(ua):
		e.Name = "webkit"
		if m := safariVerRE.FindStringSubmatch(ua); m != nil {
			e.Version = m[1]
		} else {
			e.Version = webkitRE.FindStringSubmatch(ua)[1]
		}
	case nodeRE.MatchString(ua) || strings.HasPrefix(ua, "Node"):
		e.Name = "node"
		if m := nodeRE.FindStringSubmatch(ua); m != nil {
			e.Version = m[1]
		}
	}
	return e
}
