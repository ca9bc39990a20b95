package ui

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/features"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/selfcheck"
	"github.com/webinfer/webinfer/wasm/session"
)

func TestStateText(t *testing.T) {
	s := &State{}
	assert.Equal(t, "backend: …", s.BackendLabel())
	assert.Nil(t, s.AdapterRows())

	s.Features = &features.Report{WebGPU: features.WebGPU{Present: true,
		Adapter:  &features.Adapter{Architecture: "swiftshader", IsFallbackAdapter: true},
		Features: []string{"subgroups"}, Limits: map[string]float64{"maxBufferSize": 1 << 30}},
		Path: features.Path{Backend: "webgpu", Precision: "f32", Why: "adapter"}}
	s.Backend = "webgpu"
	assert.Equal(t, "backend: webgpu (f32)", s.BackendLabel())
	assert.Contains(t, s.AdapterRows(), Row{"architecture", "swiftshader"})
	assert.Contains(t, s.AdapterRows(), Row{"vendor", "—"})
	assert.Equal(t, []Row{{"maxBufferSize", "1073741824 (1024 MiB)"}}, s.LimitRows())
	assert.Contains(t, s.EngineFeatureRows(), Row{"subgroups", "yes (subgroup reductions)"})
	assert.Contains(t, s.EngineFeatureRows(), Row{"shader-f16", "no (f16 activations and KV cache)"})
	assert.Equal(t, "webgpu, f32: adapter", s.PathText())

	s.Checks = []selfcheck.Result{
		{Kernel: "k", Backend: "webgpu", Submits: 1, Dispatches: 3, Cases: []selfcheck.Case{
			{Name: "a", OK: true, Comparison: kernels.Comparison{N: 1}},
			{Name: "b", OK: false, Comparison: kernels.Comparison{N: 1, Failures: 2}},
		}},
		{Kernel: "k", Backend: "cpu", Error: "boom"},
	}
	rows := s.CheckRows()
	assert.Len(t, rows, 3)
	assert.Equal(t, "pass", rows[0].Verdict)
	assert.Equal(t, "FAIL (2 outside bound)", rows[1].Verdict)
	assert.Equal(t, "error: boom", rows[2].Verdict)
	assert.Contains(t, s.CheckSummary()[0], "3 dispatches in 1 submit(s)")

	s.Features = &features.Report{}
	assert.Equal(t, []Row{{"WebGPU", "not available (navigator.gpu is absent)"}}, s.AdapterRows())
}

// TestApply: the session's events become the page's state.
func TestApply(t *testing.T) {
	s := &State{}
	s.Apply(session.Progress{Phase: session.PhaseFetch, Text: "loading the model", Loaded: 1.5e6, Total: 3e6})
	assert.Equal(t, "loading the model: 1.5 MB of 3.0", s.Status)
	s.Apply(session.Loaded{Name: "m.gguf", Bytes: 3e6})
	s.Apply(session.Chosen{Backend: "webgpu", Precision: "f16"})
	assert.Equal(t, "Model: m.gguf (3.0 MB), on WebGPU", s.ModelLabel())
	s.Apply(session.Error{Code: session.CodeKernelCheck, Message: "boom", Recoverable: true})
	s.Apply(session.Progress{Phase: session.PhaseReady, Text: "ready"})
	assert.Equal(t, "ready with 1 error(s)", s.Status)
	assert.True(t, s.Done)

	s.Apply(session.Started{Prompt: "And"})
	assert.True(t, s.Generating)
	s.Apply(session.Token{Token: engine.Token{ID: 5, Text: " God", Index: 0, At: 40 * time.Millisecond}})
	s.Apply(session.Token{Token: engine.Token{ID: 6, Text: " said", Index: 1, At: 140 * time.Millisecond}})
	assert.Equal(t, "And God said", s.OutputText())
	assert.Equal(t, "40 ms", s.TTFTLabel())
	assert.Equal(t, "10.0", s.TokSLabel())
	s.Apply(session.Done{Result: engine.Result{Tokens: 2, Reason: "length", DecodeTokS: 9.5}})
	assert.False(t, s.Generating)
	assert.Equal(t, "done: 2 tokens (length)", s.Status)
	s.Apply(session.Started{Prompt: "Again"})
	assert.Equal(t, "Again", s.OutputText(), "a new generation starts from its prompt")
}
