package api

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/sample"
)

// The Host on the CPU path (natively there is no WebGPU), on the default
// model: what the JS API's worker does, without the browser.

func defaultModel(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "assets", "models", "kjv-q8_0.gguf")
}

// page is the page's side: every message the host posts, in order.
type page struct {
	t    testing.TB
	h    *Host
	msgs chan Out
	// hold, when set, is called with every message after it is queued,
	// on the goroutine that posted it: a test blocks a generation there.
	// Atomic: the host posts from its own goroutines while a test sets it.
	hold atomic.Pointer[func(Out)]
}

func newPage(t testing.TB) *page {
	p := &page{t: t, msgs: make(chan Out, 4096)}
	p.h = NewHost(HostConfig{Post: func(b []byte) {
		var o Out
		require.NoError(t, json.Unmarshal(b, &o))
		p.msgs <- o
		if hold := p.hold.Load(); hold != nil {
			(*hold)(o)
		}
	}})
	return p
}

// holdFirstToken makes request id's generation wait at its first token
// until the returned channel is closed, so that it is surely still
// running when the test's next message arrives (the tiny model could
// otherwise finish hundreds of tokens first).
func (p *page) holdFirstToken(id int) chan struct{} {
	release := make(chan struct{})
	var once sync.Once
	hold := func(o Out) {
		if o.ID == id && o.Ev == EvToken {
			once.Do(func() { <-release })
		}
	}
	p.hold.Store(&hold)
	return release
}

func (p *page) send(in In) {
	b, err := json.Marshal(in)
	require.NoError(p.t, err)
	p.h.Receive(b)
}

// until collects messages until one for which end is true (a generous
// bound: no test here depends on timing).
func (p *page) until(end func(Out) bool) []Out {
	var got []Out
	deadline := time.After(time.Minute)
	for {
		select {
		case o := <-p.msgs:
			got = append(got, o)
			if end(o) {
				return got
			}
		case <-deadline:
			p.t.Fatalf("no end message; got %+v", got)
		}
	}
}

// ended: request id's done or error (ready, for a load).
func ended(id int) func(Out) bool {
	return func(o Out) bool { return o.ID == id && (o.Ev == EvDone || o.Ev == EvError || o.Ev == EvReady) }
}

func loaded(t *testing.T) *page {
	p := newPage(t)
	p.send(In{Op: OpLoad, ID: 1, Model: defaultModel(t)})
	msgs := p.until(ended(1))
	last := msgs[len(msgs)-1]
	require.Equal(t, EvReady, last.Ev, "%+v", last)
	return p
}

func str(s string) *string { return &s }

// reference is engine.Generate's tokens for the same request.
func reference(t *testing.T, req engine.Request) ([]int32, string) {
	f, fh, err := gguf.Open(defaultModel(t))
	require.NoError(t, err)
	defer fh.Close()
	m, err := model.Load(f, fh)
	require.NoError(t, err)
	var ids []int32
	var text strings.Builder
	_, err = engine.Generate(context.Background(), m, req, func(tk engine.Token) error {
		if tk.ID >= 0 {
			ids = append(ids, tk.ID)
		}
		text.WriteString(tk.Text)
		return nil
	})
	require.NoError(t, err)
	return ids, text.String()
}

func tokensOf(msgs []Out, id int) ([]int32, string) {
	var ids []int32
	var text strings.Builder
	for _, o := range msgs {
		if o.ID == id && o.Ev == EvToken {
			if *o.Token >= 0 {
				ids = append(ids, *o.Token)
			}
			text.WriteString(o.Text)
		}
	}
	return ids, text.String()
}

func TestLoadReportsProgressAndStats(t *testing.T) {
	p := newPage(t)
	p.send(In{Op: OpLoad, ID: 1, Model: defaultModel(t)})
	msgs := p.until(ended(1))
	phases := map[string]bool{}
	for _, o := range msgs {
		if o.Ev == EvProgress {
			phases[o.Phase] = true
		}
	}
	assert.True(t, phases["fetch"] && phases["ready"], "phases: %v", phases)
	ready := msgs[len(msgs)-1]
	require.Equal(t, EvReady, ready.Ev)
	assert.Equal(t, "cpu", ready.Stats.Backend)
	assert.Equal(t, "kjv-q8_0.gguf", ready.Stats.Model)
	assert.Greater(t, ready.Stats.KVBytes, int64(0))
	assert.Greater(t, ready.Stats.TTFTBreakdownMs.Fetch, 0.0)
	if assert.NotNil(t, ready.Stats.CPU, "the CPU path says how it runs") {
		assert.NotEmpty(t, ready.Stats.CPU.Kernels)
		assert.Zero(t, ready.Stats.CPU.Threads, "natively there is no browser pool")
		assert.NotEmpty(t, ready.Stats.CPU.Why)
	}
	// The registry: natively no WebGPU; the CPU path initialised, chosen.
	require.Len(t, ready.Stats.Backends, 2)
	for _, b := range ready.Stats.Backends {
		switch b.Name {
		case "webgpu":
			assert.Equal(t, "unavailable", b.Health, b.Why)
		case "cpu":
			assert.Equal(t, "ready", b.Health, b.Why)
		}
	}

	p.send(In{Op: OpLoad, ID: 2, Model: defaultModel(t)})
	again := p.until(ended(2))
	assert.Equal(t, "bad-option", again[len(again)-1].Code, "a second model on one engine")
}

// TestLoadRefusesBadThreads: a thread count outside 1 to 64 is a
// bad-option error naming it, and no load starts.
func TestLoadRefusesBadThreads(t *testing.T) {
	p := newPage(t)
	p.send(In{Op: OpLoad, ID: 1, Model: defaultModel(t), Threads: 65})
	msgs := p.until(ended(1))
	last := msgs[len(msgs)-1]
	assert.Equal(t, "bad-option", last.Code)
	assert.Contains(t, last.Message, "threads")
}

func TestGenerateIsTheEnginesTokens(t *testing.T) {
	p := loaded(t)
	p.send(In{Op: OpGenerate, ID: 2, Prompt: str("And God said"), Options: map[string]any{"maxTokens": 24, "seed": 7, "temperature": 0.8}})
	msgs := p.until(ended(2))
	done := msgs[len(msgs)-1]
	require.Equal(t, EvDone, done.Ev, "%+v", done)
	want, wantText := reference(t, engine.Request{Prompt: "And God said", MaxTokens: 24, Sample: sample.Defaults.WithSeed(7)})
	got, text := tokensOf(msgs, 2)
	assert.Equal(t, want, got)
	assert.Equal(t, wantText, text)
	assert.Equal(t, len(want), done.Result.Usage.CompletionTokens)
	for i, o := range msgs {
		if o.Ev == EvToken && i > 0 {
			assert.GreaterOrEqual(t, o.AtMs, 0.0)
		}
	}
	stats := p.until(func(o Out) bool { return o.Ev == EvStats })
	assert.Greater(t, stats[len(stats)-1].Stats.DecodeTokS, 0.0)
}

func TestConcurrentRequestsGetTheirOwnTokens(t *testing.T) {
	p := loaded(t)
	for id := 2; id <= 4; id++ {
		p.send(In{Op: OpGenerate, ID: id, Prompt: str("And God said"), Options: map[string]any{"maxTokens": 12, "seed": float64(id)}})
	}
	done := map[int]bool{}
	var msgs []Out
	msgs = p.until(func(o Out) bool {
		if o.Ev == EvDone || o.Ev == EvError {
			done[o.ID] = true
		}
		return len(done) == 3
	})
	for id := 2; id <= 4; id++ {
		want, _ := reference(t, engine.Request{Prompt: "And God said", MaxTokens: 12, Sample: sample.Defaults.WithSeed(uint64(id))})
		got, _ := tokensOf(msgs, id)
		assert.Equal(t, want, got, "request %d", id)
	}
}

func TestAbortEndsARequestAndTheEngineGoesOn(t *testing.T) {
	p := loaded(t)
	release := p.holdFirstToken(2)
	p.send(In{Op: OpGenerate, ID: 2, Prompt: str("And God said"), Options: map[string]any{"maxTokens": 400}})
	p.until(func(o Out) bool { return o.ID == 2 && o.Ev == EvToken })
	p.send(In{Op: OpAbort, ID: 2})
	close(release)
	msgs := p.until(ended(2))
	last := msgs[len(msgs)-1]
	assert.Equal(t, EvError, last.Ev)
	assert.Equal(t, "aborted", last.Code)
	got, _ := tokensOf(msgs, 2)
	assert.Less(t, len(got), 399)

	p.send(In{Op: OpGenerate, ID: 3, Prompt: str("And"), Options: map[string]any{"maxTokens": 3}})
	after := p.until(ended(3))
	assert.Equal(t, EvDone, after[len(after)-1].Ev)
}

func TestStopStringAcrossTokens(t *testing.T) {
	p := loaded(t)
	ids, text := reference(t, engine.Request{Prompt: "And God said", MaxTokens: 24, Sample: sample.Params{}})
	require.Greater(t, len(ids), 8)
	// A stop string that starts inside one token's text and ends inside
	// the next's: the last two bytes of token 4's text and the first of
	// token 5's.
	f, fh, err := gguf.Open(defaultModel(t))
	require.NoError(t, err)
	defer fh.Close()
	m, err := model.Load(f, fh)
	require.NoError(t, err)
	prefix := m.Tokenizer.Decode(ids[:5])
	stop := prefix[len(prefix)-2:] + m.Tokenizer.Decode(ids[5:6])[:1]
	require.True(t, strings.Contains(text, stop))
	p.send(In{Op: OpGenerate, ID: 2, Prompt: str("And God said"), Options: map[string]any{"maxTokens": 24, "temperature": 0, "stop": []string{stop}}})
	msgs := p.until(ended(2))
	require.Equal(t, EvDone, msgs[len(msgs)-1].Ev)
	_, got := tokensOf(msgs, 2)
	assert.Equal(t, text[:strings.Index(text, stop)], got)
	assert.Equal(t, "stop", msgs[len(msgs)-1].Result.FinishReason)
}

func TestBadOptionsNameTheOption(t *testing.T) {
	p := loaded(t)
	for i, c := range []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"maxTokens": -1}, "maxTokens: -1: want an integer from 1 to 4096"},
		{map[string]any{"maxTokens": 2.5}, "maxTokens: 2.5"},
		{map[string]any{"temperature": "hot"}, `temperature: "hot": want a number from 0 to 2`},
		{map[string]any{"topP": 0}, "topP: 0: want a number above 0"},
		{map[string]any{"topK": -3}, "topK: -3"},
		{map[string]any{"seed": -1}, "seed: -1"},
		{map[string]any{"stop": []any{1}}, "stop: [1]: want a string or a list"},
		{map[string]any{"max_tokens": 3}, "max_tokens: not an option; the options are"},
	} {
		id := 10 + i
		p.send(In{Op: OpGenerate, ID: id, Prompt: str("And"), Options: c.opts})
		msgs := p.until(ended(id))
		last := msgs[len(msgs)-1]
		assert.Equal(t, "bad-option", last.Code, "%v", c.opts)
		assert.Contains(t, last.Message, c.want)
	}
	p.send(In{Op: OpGenerate, ID: 30, Prompt: str("")})
	msgs := p.until(ended(30))
	assert.Contains(t, msgs[len(msgs)-1].Message, "prompt: empty")
	p.send(In{Op: OpChat, ID: 31, Request: map[string]any{"messages": []any{map[string]any{"role": "user", "content": "Hi"}}, "maxTokens": 3}})
	msgs = p.until(ended(31))
	assert.Contains(t, msgs[len(msgs)-1].Message, "maxTokens: not an option", "create takes OpenAI's names")
	p.Receive([]byte("{not json"))
	msgs = p.until(func(o Out) bool { return o.Ev == EvError })
	assert.Equal(t, "bad-option", msgs[len(msgs)-1].Code)
}

func (p *page) Receive(b []byte) { p.h.Receive(b) }

func TestPromptLongerThanTheContext(t *testing.T) {
	p := loaded(t)
	long := strings.Repeat("And God said, Let there be light: and there was light. ", 80)
	p.send(In{Op: OpGenerate, ID: 2, Prompt: &long, Options: map[string]any{"maxTokens": 4}})
	msgs := p.until(ended(2))
	last := msgs[len(msgs)-1]
	assert.Equal(t, "context-full", last.Code, "%+v", last)
}

func TestChatStreamsOpenAIChunks(t *testing.T) {
	p := loaded(t)
	msgs := []any{map[string]any{"role": "user", "content": "Who made the light?"}}
	p.send(In{Op: OpChat, ID: 2, Request: map[string]any{"messages": msgs, "stream": true, "max_tokens": 16, "seed": 3, "model": "any"}})
	streamed := p.until(ended(2))
	require.Equal(t, EvDone, streamed[len(streamed)-1].Ev, "%+v", streamed[len(streamed)-1])
	var chunks []*ChatChunk
	for _, o := range streamed {
		if o.Ev == EvChunk {
			chunks = append(chunks, o.Chunk)
		}
	}
	require.GreaterOrEqual(t, len(chunks), 2)
	assert.Equal(t, "assistant", chunks[0].Choices[0].Delta.Role)
	assert.Equal(t, "chat.completion.chunk", chunks[0].Object)
	last := chunks[len(chunks)-1]
	require.NotNil(t, last.Usage)
	require.NotNil(t, last.Choices[0].FinishReason)
	var text strings.Builder
	for _, c := range chunks[:len(chunks)-1] {
		assert.Nil(t, c.Usage)
		assert.Nil(t, c.Choices[0].FinishReason)
		text.WriteString(c.Choices[0].Delta.Content)
	}

	p.send(In{Op: OpChat, ID: 3, Request: map[string]any{"messages": msgs, "stream": false, "max_tokens": 16, "seed": 3}})
	one := p.until(ended(3))
	var completion *ChatCompletion
	for _, o := range one {
		if o.Ev == EvCompletion {
			completion = o.Completion
		}
	}
	require.NotNil(t, completion)
	assert.Equal(t, text.String(), completion.Choices[0].Message.Content, "stream and not: the same text")
	assert.Equal(t, last.Usage, completion.Usage)
	assert.Equal(t, "chat.completion", completion.Object)
}

func TestBrokenModelIsBadModel(t *testing.T) {
	data, err := os.ReadFile(defaultModel(t))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "cut.gguf")
	require.NoError(t, os.WriteFile(path, data[:len(data)/3], 0o644))
	p := newPage(t)
	p.send(In{Op: OpLoad, ID: 1, Model: path})
	msgs := p.until(ended(1))
	last := msgs[len(msgs)-1]
	assert.Equal(t, "bad-model", last.Code, "%+v", last)
	assert.Contains(t, last.Message, "gguf")
	p.send(In{Op: OpGenerate, ID: 2, Prompt: str("And")})
	msgs = p.until(ended(2))
	assert.Contains(t, msgs[len(msgs)-1].Message, "no model is loaded")
}

func TestUnload(t *testing.T) {
	p := loaded(t)
	release := p.holdFirstToken(2)
	p.send(In{Op: OpGenerate, ID: 2, Prompt: str("And God said"), Options: map[string]any{"maxTokens": 400}})
	p.until(func(o Out) bool { return o.ID == 2 && o.Ev == EvToken })
	p.send(In{Op: OpUnload, ID: 3})
	close(release)
	msgs := p.until(func(o Out) bool { return o.ID == 3 && o.Ev == EvReply })
	var gen2 Out
	for _, o := range msgs {
		if o.ID == 2 && o.Ev == EvError {
			gen2 = o
		}
	}
	assert.Equal(t, "aborted", gen2.Code, "the running request ends first")
	p.send(In{Op: OpGenerate, ID: 4, Prompt: str("And")})
	after := p.until(ended(4))
	assert.Contains(t, after[len(after)-1].Message, "no model is loaded")
}

// TestEventsAndReport: a load asking for events gets every session event
// (what the page's panels show) as it happens, a generation's too; the
// report op answers the run report of the last generation.
func TestEventsAndReport(t *testing.T) {
	p := newPage(t)
	p.send(In{Op: OpLoad, ID: 1, Model: defaultModel(t), Events: true})
	msgs := p.until(ended(1))
	require.Equal(t, EvReady, msgs[len(msgs)-1].Ev)
	kinds := map[string]bool{}
	kind := func(o Out) {
		if o.Ev != EvSession {
			return
		}
		b, _ := json.Marshal(o.Event)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		require.Len(t, m, 1, "%s", b)
		for k := range m {
			kinds[k] = true
		}
	}
	for _, o := range msgs {
		kind(o)
	}
	for _, k := range []string{"progress", "detected", "loaded", "checked", "chosen"} {
		assert.True(t, kinds[k], "no %s event in %v", k, kinds)
	}
	p.send(In{Op: OpGenerate, ID: 2, Prompt: str("And God said"), Options: map[string]any{"maxTokens": 6, "seed": 5.0}})
	msgs = p.until(ended(2))
	var streamed []int32
	for _, o := range msgs {
		kind(o)
		if o.Ev == EvSession && o.Event.Token != nil && o.Event.Token.ID >= 0 {
			streamed = append(streamed, o.Event.Token.ID)
		}
	}
	assert.True(t, kinds["started"] && kinds["token"] && kinds["done"], "%v", kinds)
	want, text := reference(t, engine.Request{Prompt: "And God said", MaxTokens: 6, Sample: sample.Defaults.WithSeed(5)})
	assert.Equal(t, want, streamed)

	p.send(In{Op: OpReport, ID: 3, Profile: true})
	msgs = p.until(func(o Out) bool { return o.ID == 3 })
	reply := msgs[len(msgs)-1]
	require.Equal(t, EvReply, reply.Ev, "%+v", reply)
	b, _ := json.Marshal(reply.Value)
	var rep struct {
		Backend string `json:"backend"`
		Tokens  []int32
		Text    string
	}
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Equal(t, "cpu", rep.Backend)
	assert.Equal(t, want, rep.Tokens)
	assert.Equal(t, text, rep.Text)
}

// TestGenAITelemetry: stats carry the telemetry over every request, by
// the OpenTelemetry GenAI names: token usage summed, time to first token
// and request duration per request, time per output token per gap.
func TestGenAITelemetry(t *testing.T) {
	p := loaded(t)
	for id := 2; id <= 3; id++ {
		p.send(In{Op: OpGenerate, ID: id, Prompt: str("And God said"), Options: map[string]any{"maxTokens": 6, "seed": float64(id)}})
		p.until(ended(id))
	}
	msgs := p.until(func(o Out) bool { return o.Ev == EvStats })
	st := msgs[len(msgs)-1].Stats
	for st.GenAI.Requests < 2 { // the first request's stats may come first
		msgs = p.until(func(o Out) bool { return o.Ev == EvStats })
		st = msgs[len(msgs)-1].Stats
	}
	g := st.GenAI
	assert.Equal(t, 2, g.Requests)
	assert.Equal(t, int64(12), g.OutputTokens, "6 tokens each")
	assert.Positive(t, g.InputTokens)
	assert.Equal(t, 2, g.TTFT.Count)
	assert.Equal(t, 2, g.Duration.Count)
	assert.Equal(t, 10, g.TPOT.Count, "5 gaps each")
	assert.Positive(t, g.TTFT.P50)
	assert.LessOrEqual(t, g.TTFT.P50, g.TTFT.P99)
	require.NotNil(t, st.Scheduler, "the requests ran through the scheduler")
	assert.Positive(t, st.Scheduler.Steps)
	assert.GreaterOrEqual(t, st.Scheduler.Batch, 1)
	assert.GreaterOrEqual(t, st.Scheduler.Chunk, 1)
	b, err := json.Marshal(st)
	require.NoError(t, err)
	for _, name := range []string{"gen_ai.server.time_to_first_token", "gen_ai.server.time_per_output_token", "gen_ai.client.token.usage.input", "gen_ai.server.request.duration"} {
		assert.Contains(t, string(b), `"`+name+`"`)
	}
}
