package api

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/features"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/selfcheck"
	"github.com/webinfer/webinfer/wasm/session"
)

// TestSessionEventsRoundTrip: every kind of session event comes out of
// its wire form (through JSON) as it went in.
func TestSessionEventsRoundTrip(t *testing.T) {
	events := []session.Event{
		session.Progress{Phase: session.PhaseFetch, Text: "loading", Loaded: 10, Total: 20},
		session.Detected{Features: features.Report{HardwareConcurrency: 2, Path: features.Path{Backend: "cpu", Why: "no GPU"}}},
		session.Checked{Result: selfcheck.Result{Backend: "cpu", Kernel: "matmul", Cases: []selfcheck.Case{{Name: "q8_0", OK: true}}}},
		session.Loaded{Name: "m.gguf", Bytes: 123, Millis: 4.5},
		session.Chosen{Backend: "webgpu", Precision: "f16", Why: "measured", Probe: &report.Probe{WebGPUMillisPerToken: 1, CPUMillisPerToken: 2, Chosen: "webgpu"}},
		session.Started{Prompt: "And"},
		session.Token{Token: engine.Token{ID: 5, Text: " God", Index: 1, At: 3 * time.Millisecond}},
		session.Done{Result: engine.Result{Reason: "length", Tokens: 2, PromptTokens: 3}},
		session.DeviceLost{Message: "destroyed"},
		session.Fallback{From: "webgpu", To: "cpu", Why: "no device"},
		session.Error{Code: session.CodeBadModel, Message: "gguf: bad magic", Recoverable: false},
	}
	for _, e := range events {
		b, err := json.Marshal(EncodeEvent(e))
		require.NoError(t, err)
		var w SessionEvent
		require.NoError(t, json.Unmarshal(b, &w))
		assert.Equal(t, e, w.Event(), "%s", b)
	}
	b, _ := json.Marshal(EncodeEvent(session.Done{Err: errors.New("aborted")}))
	var w SessionEvent
	require.NoError(t, json.Unmarshal(b, &w))
	assert.EqualError(t, w.Event().(session.Done).Err, "aborted")
	assert.Nil(t, SessionEvent{}.Event())
}
