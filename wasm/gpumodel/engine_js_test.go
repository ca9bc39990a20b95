//go:build js && wasm

package gpumodel

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/webgpu/webgputest"
)

// TestEngineStreams drives the runner through the engine as the page and
// the batching scheduler do: engine.Generate (one Sequence, the pipelined
// Decoder loop) and engine.RunBatch (several Sequences sharing steps on a
// runner of three sequences). Each request gets the same tokens either
// way, greedy and seeded, and stop strings end them by the Sequence's
// rules.
func TestEngineStreams(t *testing.T) {
	m := defaultModel(t)
	dev := webgputest.Open(t)
	ctx := context.Background()
	single, err := New(ctx, dev, m, 128, 16)
	require.NoError(t, err)
	defer single.Close()
	batch, err := New(ctx, dev, m, 128, 16, Sequences(3))
	require.NoError(t, err)
	defer batch.Close()

	reqs := []engine.Request{
		{Prompt: "And God said", MaxTokens: 12, Ctx: 128},
		{Prompt: "In the beginning", MaxTokens: 7, Ctx: 128, Sample: sample.Defaults.WithSeed(9)},
		{Prompt: "Jesus wept", MaxTokens: 10, Ctx: 128, Sample: sample.Params{Temperature: 1, TopK: 20, RepeatPenalty: 1.3, Seed: 4}},
	}
	alone := make([][]int32, len(reqs))
	for i, r := range reqs {
		r.Backend = single
		_, err := engine.Generate(ctx, m, r, func(tk engine.Token) error {
			if tk.ID >= 0 {
				alone[i] = append(alone[i], tk.ID)
			}
			return nil
		})
		require.NoError(t, err)
	}
	var seqs []*engine.Sequence
	for _, r := range reqs {
		s, err := engine.NewSequence(m, r)
		require.NoError(t, err)
		seqs = append(seqs, s)
	}
	together := make([][]int32, len(reqs))
	res, err := engine.RunBatch(ctx, batch, seqs, func(i int, tk engine.Token) error {
		if tk.ID >= 0 {
			together[i] = append(together[i], tk.ID)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, alone, together)
	for i, r := range res {
		assert.Equal(t, len(alone[i]), r.Tokens)
	}

	// A stop string spanning tokens, through the pipelined decode: the
	// text before it, never the stop string itself.
	var full string
	_, err = engine.Generate(ctx, m, engine.Request{Prompt: "And God said", MaxTokens: 12, Ctx: 128, Backend: single}, func(tk engine.Token) error {
		full += tk.Text
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, len(full), 8)
	stop := full[4:8]
	var got string
	out, err := engine.Generate(ctx, m, engine.Request{Prompt: "And God said", MaxTokens: 12, Ctx: 128, Backend: single, Stop: []string{stop}}, func(tk engine.Token) error {
		got += tk.Text
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, "stop", out.Reason)
	assert.NotContains(t, got, stop)
	assert.Equal(t, full[:strings.Index(full, stop)], got)
}
