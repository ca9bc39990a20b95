// Package features describes what a browser can do and decides, from that
// alone, which code path the engine takes there.
//
// In: the raw report that shim/features.js collects (decoded into Report).
// Out: a Path — backend, precision and the reason — which the page shows, the
// report carries and the engine follows. The decision lives here, in plain
// Go, so that it is tested natively and made in one place.
package features

import (
	"fmt"
	"slices"
)

// Adapter is the WebGPU adapter's self-description.
type Adapter struct {
	Vendor            string `json:"vendor"`
	Architecture      string `json:"architecture"`
	Device            string `json:"device"`
	Description       string `json:"description"`
	IsFallbackAdapter bool   `json:"isFallbackAdapter"`
}

// WebGPU is what navigator.gpu offered.
type WebGPU struct {
	Present              bool               `json:"present"`
	Adapter              *Adapter           `json:"adapter"` // nil: no adapter
	Features             []string           `json:"features"`
	Limits               map[string]float64 `json:"limits"`
	WGSLLanguageFeatures []string           `json:"wgslLanguageFeatures"`
	Error                string             `json:"error,omitempty"`
}

// Wasm lists the WebAssembly features that validate in this engine.
type Wasm struct {
	Present     bool `json:"present"`
	SIMD        bool `json:"simd"`
	RelaxedSIMD bool `json:"relaxedSimd"`
	Threads     bool `json:"threads"`
	Memory64    bool `json:"memory64"`
	JSPI        bool `json:"jspi"`
}

// Storage is navigator.storage.estimate().
type Storage struct {
	Quota float64 `json:"quota"`
	Usage float64 `json:"usage"`
	OPFS  bool    `json:"opfs"` // the origin private file system, with writable files (the model cache)
}

// WorkerWebGPU says whether a dedicated worker sees WebGPU.
type WorkerWebGPU struct {
	Worker  bool `json:"worker"`
	WebGPU  bool `json:"webgpu"`
	Adapter bool `json:"adapter"`
}

// Path is the code path the engine takes and why.
type Path struct {
	Backend   string `json:"backend"`   // "webgpu" or "cpu"
	Precision string `json:"precision"` // "f32" or "f16"
	Why       string `json:"why"`
}

// Report is the feature report of the page (CONTRACTS.md section 4).
type Report struct {
	UserAgent           string       `json:"userAgent"`
	WebGPU              WebGPU       `json:"webgpu"`
	Wasm                Wasm         `json:"wasm"`
	CrossOriginIsolated bool         `json:"crossOriginIsolated"`
	HardwareConcurrency int          `json:"hardwareConcurrency"`
	DeviceMemoryGiB     float64      `json:"deviceMemoryGiB"`
	Storage             Storage      `json:"storage"`
	WorkerWebGPU        WorkerWebGPU `json:"workerWebGPU"`
	Path                Path         `json:"path"`
}

// Prefs are the user's overrides of the automatic choice.
type Prefs struct {
	Backend   string // "", "auto", "webgpu" or "cpu"
	Precision string // "", "auto", "f32" or "f16"
}

// Choose picks the engine's path from the report. WebGPU wins whenever an
// adapter exists (a software adapter still runs the kernels for real);
// f16 is chosen only where the adapter has shader-f16. Prefs override the
// automatic choice where the browser allows it; where it does not, the
// reason says so.
//
// TODO(issue 4): once whole models run on both paths, choose between a
// software adapter and the CPU path by measuring, not by rule.
func Choose(r Report, p Prefs) Path {
	gpuOK := r.WebGPU.Present && r.WebGPU.Adapter != nil
	var why string
	switch {
	case !r.WebGPU.Present:
		why = "navigator.gpu is absent"
	case r.WebGPU.Adapter == nil:
		why = "navigator.gpu gave no adapter"
		if r.WebGPU.Error != "" {
			why += ": " + r.WebGPU.Error
		}
	}

	if p.Backend == "cpu" || !gpuOK {
		path := Path{Backend: "cpu", Precision: "f32"}
		if p.Backend == "cpu" {
			path.Why = "CPU requested"
		} else {
			path.Why = why + "; using the CPU path"
		}
		if p.Backend == "webgpu" && !gpuOK {
			path.Why = "WebGPU requested but " + why + "; using the CPU path"
		}
		return path
	}

	path := Path{Backend: "webgpu", Precision: "f32"}
	hasF16 := slices.Contains(r.WebGPU.Features, "shader-f16")
	switch {
	case p.Precision == "f16" && !hasF16:
		path.Why = "f16 requested but the adapter lacks shader-f16; "
	case p.Precision == "f16" || (p.Precision != "f32" && hasF16):
		path.Precision = "f16"
	}
	adapter := adapterName(*r.WebGPU.Adapter)
	if r.WebGPU.Adapter.IsFallbackAdapter {
		path.Why += fmt.Sprintf("WebGPU adapter %s (a software fallback adapter)", adapter)
	} else {
		path.Why += fmt.Sprintf("WebGPU adapter %s", adapter)
	}
	if path.Precision == "f16" {
		path.Why += " with shader-f16"
	}
	return path
}

// adapterName is the most telling of the adapter's strings.
func adapterName(a Adapter) string {
	for _, s := range []string{a.Description, a.Architecture, a.Vendor, a.Device} {
		if s != "" {
			return fmt.Sprintf("%q", s)
		}
	}
	return "(unnamed)"
}
