package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/scheduler"
	"github.com/webinfer/webinfer/wasm/synth/synthtest"
)

// TestStreams: three streams on a real (tiny) model through a scheduler
// of three slots give every token and measure them.
func TestStreams(t *testing.T) {
	m := synthtest.Model(t, "tiny", gguf.TypeQ8_0, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := scheduler.New(m, engine.CPUBatch(m, 3, 96), scheduler.Config{Slots: 3, Ctx: 96, Target: time.Hour})
	go s.Run(ctx)
	r, err := Streams(ctx, s, 3, 5, 96, "Hello world")
	require.NoError(t, err)
	assert.Positive(t, r.TokS)
	assert.LessOrEqual(t, r.P50, r.P99)
	assert.LessOrEqual(t, r.Tokens, 15)
	assert.Greater(t, r.Tokens, 3)
}
