package ui

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/webinfer/webinfer/wasm/features"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/selfcheck"
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
