//go:build js && wasm

package gpumodel

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/scheduler"
	"github.com/webinfer/webinfer/wasm/webgpu/webgputest"
)

// TestEngineStreams drives the runner through the engine as the page and
// the batching scheduler do: engine.Generate (one Sequence, the pipelined
// Decoder loop) and engine.RunBatch (several Sequences sharing steps on a
// runner of three sequences). Each request gets the same tokens either
// way, greedy and seeded, and stop strings end them by the Sequence's
// rules. Then the scheduler on the same runners (schedulerOnGPU: one
// device, so the pipelines compile once).
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

	t.Run("scheduler", func(t *testing.T) { schedulerOnGPU(t, m, single, batch) })
}

// schedulerOnGPU: the batching scheduler on a runner of three sequences:
// concurrent requests each get their tokens alone (on a single-sequence
// runner), and a prompt continuing an earlier request reuses its rows on
// the GPU (Truncate) with the tokens of a full prefill.
func schedulerOnGPU(t *testing.T, m *model.Model, single, batch *Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	aloneOn := func(r engine.Request) []int32 {
		r.Backend = single
		var ids []int32
		_, err := engine.Generate(ctx, m, r, func(tk engine.Token) error {
			if tk.ID >= 0 {
				ids = append(ids, tk.ID)
			}
			return nil
		})
		require.NoError(t, err)
		return ids
	}
	s := scheduler.New(m, batch, scheduler.Config{Slots: 3, Ctx: 128, MaxChunk: 16, Target: time.Hour})
	go s.Run(ctx)
	reqs := []engine.Request{
		{Prompt: "And God said", MaxTokens: 8, Ctx: 128},
		{Prompt: "In the beginning God created the heaven and the earth", MaxTokens: 6, Ctx: 128, Sample: sample.Defaults.WithSeed(2)},
		{Prompt: "Jesus wept", MaxTokens: 7, Ctx: 128, Sample: sample.Params{Temperature: 1, TopK: 20, Seed: 3}},
	}
	got := make([][]int32, len(reqs))
	texts := make([]string, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Generate(ctx, r, func(tk engine.Token) error {
				if tk.ID >= 0 {
					got[i] = append(got[i], tk.ID)
				}
				texts[i] += tk.Text
				return nil
			})
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	for i, r := range reqs {
		assert.Equal(t, aloneOn(r), got[i], "request %d", i)
	}
	next := engine.Request{Prompt: reqs[0].Prompt + texts[0] + " and", MaxTokens: 6, Ctx: 128}
	var cont []int32
	_, err := s.Generate(ctx, next, func(tk engine.Token) error {
		if tk.ID >= 0 {
			cont = append(cont, tk.ID)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, aloneOn(next), cont)
	assert.Positive(t, s.Stats().Reused, "the continuation reused the first request's rows")
}
