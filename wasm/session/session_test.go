package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/features"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/synth/synthtest"
)

func fixture(t *testing.T) string { return synthtest.Path(t, "tiny", gguf.TypeQ8_0, 1) }

// record collects a session's events.
type record struct{ events []Event }

func (r *record) emit(e Event) { r.events = append(r.events, e) }

func (r *record) phases() []Phase {
	var out []Phase
	for _, e := range r.events {
		if p, ok := e.(Progress); ok && (len(out) == 0 || out[len(out)-1] != p.Phase) {
			out = append(out, p.Phase)
		}
	}
	return out
}

// TestSessionOnTheCPUPath: natively WebGPU is unavailable, so a session
// detects no GPU, loads, checks the CPU path and generates there, with the
// tokens engine.Generate gives.
func TestSessionOnTheCPUPath(t *testing.T) {
	path := fixture(t)
	var rec record
	s, err := Start(context.Background(), Config{Model: path}, rec.emit)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, []Phase{PhaseDetect, PhaseFetch, PhaseCheck, PhaseReady}, rec.phases())
	var chosen *Chosen
	var loaded *Loaded
	for _, e := range rec.events {
		switch e := e.(type) {
		case Chosen:
			chosen = &e
		case Loaded:
			loaded = &e
		case Error:
			t.Errorf("unexpected error event: %+v", e)
		}
	}
	require.NotNil(t, chosen)
	assert.Equal(t, "cpu", chosen.Backend)
	assert.Contains(t, chosen.Why, "navigator.gpu is absent")
	require.NotNil(t, loaded)
	st, _ := os.Stat(path)
	assert.Equal(t, st.Size(), loaded.Bytes)
	assert.Equal(t, "cpu", s.Backend())

	req := engine.Request{Prompt: "Hello world", MaxTokens: 8, Sample: sample.Defaults.WithSeed(3)}
	rec.events = nil
	res, err := s.Generate(context.Background(), req, nil)
	require.NoError(t, err)
	var ids []int32
	var text string
	for _, e := range rec.events {
		if tk, ok := e.(Token); ok {
			if tk.ID >= 0 {
				ids = append(ids, tk.ID)
			}
			text += tk.Text
		}
	}
	require.IsType(t, Started{}, rec.events[0])
	done, ok := rec.events[len(rec.events)-1].(Done)
	require.True(t, ok)
	assert.NoError(t, done.Err)
	assert.Equal(t, res, done.Result)

	var want []int32
	_, err = engine.Generate(context.Background(), s.Model(), req, func(tk engine.Token) error {
		if tk.ID >= 0 {
			want = append(want, tk.ID)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, want, ids)

	rep := s.Report()
	assert.Equal(t, "cpu", rep.Backend)
	assert.Equal(t, text, rep.Text)
	assert.Len(t, rep.Tokens, len(ids))
	assert.NotEmpty(t, rep.Checks)
	assert.Empty(t, rep.Errors)
	assert.Positive(t, rep.Metrics.LoadMillis)
}

func TestSessionErrors(t *testing.T) {
	path := fixture(t)
	// A broken model: a fatal bad-model error.
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	require.NoError(t, os.WriteFile(bad, []byte("GGUF but not really"), 0o644))
	var rec record
	_, err := Start(context.Background(), Config{Model: bad}, rec.emit)
	var e Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, CodeBadModel, e.Code)
	assert.False(t, e.Recoverable)
	assert.Contains(t, rec.events, Event(e))

	// A missing file: network (it could not be read).
	_, err = Start(context.Background(), Config{Model: filepath.Join(t.TempDir(), "none.gguf")}, func(Event) {})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, CodeNetwork, e.Code)

	// Features that fail to read: recoverable, the CPU path goes on.
	rec = record{}
	s, err := Start(context.Background(), Config{Model: path, Detect: func(context.Context) (features.Report, error) {
		return features.Report{}, errors.New("no shim")
	}}, rec.emit)
	require.NoError(t, err)
	defer s.Close()
	assert.Len(t, s.Report().Errors, 1)

	// A prompt longer than the context: context-full, the session stays.
	rec.events = nil
	_, err = s.Generate(context.Background(), engine.Request{Prompt: "word word word word word word word word word word", Ctx: 4}, nil)
	require.Error(t, err)
	var got []Code
	for _, ev := range rec.events {
		if e, ok := ev.(Error); ok {
			got = append(got, e.Code)
		}
	}
	assert.Equal(t, []Code{CodeContextFull}, got)

	// An abort: Done carries it, no Error event.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec.events = nil
	_, err = s.Generate(ctx, engine.Request{Prompt: "Hello", MaxTokens: 4}, nil)
	assert.Equal(t, CodeAborted, CodeOf(err))
	for _, ev := range rec.events {
		assert.NotEqual(t, "session.Error", typeName(ev))
	}
}

func typeName(e Event) string {
	if _, ok := e.(Error); ok {
		return "session.Error"
	}
	return ""
}

// TestConcurrentGenerationsShareSteps: on the CPU path three generations
// submitted together run in the same steps (the scheduler), each with
// exactly the tokens it gets alone; one that can never fit in the KV
// budget fails at once with context-full.
func TestConcurrentGenerationsShareSteps(t *testing.T) {
	path := fixture(t)
	s, err := Start(context.Background(), Config{Model: path, Streams: 3, Target: time.Hour}, func(Event) {})
	require.NoError(t, err)
	defer s.Close()
	reqs := []engine.Request{
		{Prompt: "Hello world", MaxTokens: 12, Sample: sample.Defaults.WithSeed(3)},
		{Prompt: "In the beginning", MaxTokens: 10},
		{Prompt: "And God said", MaxTokens: 12, Sample: sample.Params{Temperature: 1.1, TopK: 20, Seed: 9}, Stop: []string{"\n"}},
	}
	got := make([][]int32, len(reqs))
	release := make(chan struct{})
	maxRunning := 0
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Generate(context.Background(), r, func(e Event) {
				tk, ok := e.(Token)
				if !ok {
					return
				}
				if i == 0 && len(got[0]) == 0 {
					// Hold the scheduler until the other two are queued.
					<-release
				}
				if tk.ID >= 0 {
					got[i] = append(got[i], tk.ID)
				}
				maxRunning = max(maxRunning, s.Streams().Running) // the scheduler's goroutine: no race
			})
			assert.NoError(t, err)
		}()
		if i == 0 {
			require.Eventually(t, func() bool { return s.Streams().Budget > 0 }, time.Minute, time.Millisecond)
		}
	}
	require.Eventually(t, func() bool { return s.batch.sched.Stats().Submitted == 3 }, time.Minute, time.Millisecond)
	close(release)
	wg.Wait()
	for i, r := range reqs {
		var want []int32
		_, err := engine.Generate(context.Background(), s.Model(), r, func(tk engine.Token) error {
			if tk.ID >= 0 {
				want = append(want, tk.ID)
			}
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, want, got[i], "request %d", i)
	}
	assert.Equal(t, 3, maxRunning, "the three shared steps")
	assert.Equal(t, int64(1<<30), s.Streams().Budget, "natively: 1 GiB")
	st := s.Streams()
	assert.Positive(t, st.Steps)
	assert.Positive(t, st.Prefills)
	assert.GreaterOrEqual(t, st.Batch, 1)
	assert.GreaterOrEqual(t, st.Chunk, 1)
	assert.LessOrEqual(t, len(st.Decisions), keepDecisions)

	small, err := Start(context.Background(), Config{Model: path, KVBudget: 10 * s.Model().PositionBytes()}, func(Event) {})
	require.NoError(t, err)
	defer small.Close()
	_, err = small.Generate(context.Background(), engine.Request{Prompt: "Hello world", MaxTokens: 20}, func(Event) {})
	assert.Equal(t, CodeContextFull, CodeOf(err))
}

// TestCodeOfKVMemory: a KV cache that cannot grow in the browser's CPU
// pool is out of memory, as the GPU's is.
func TestCodeOfKVMemory(t *testing.T) {
	err := fmt.Errorf("step: %w", fmt.Errorf("%w: 128 positions do not fit", model.ErrKVMemory))
	assert.Equal(t, CodeOutOfMemory, CodeOf(err))
}
