package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/internal/loadgen"
	"github.com/webinfer/webinfer/wasm/api"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/scheduler"
	"github.com/webinfer/webinfer/wasm/synth/synthtest"
)

// apiServer serves a real (synthetic) model through the scheduler on the
// CPU batch, as `webinfer serve` does.
func apiServer(t *testing.T) (*httptest.Server, *model.Model) {
	return apiServerOn(t, NewMemoryStore())
}

// apiServerOn is apiServer keeping its requests and reports in store.
func apiServerOn(t *testing.T, store Store) (*httptest.Server, *model.Model) {
	return apiServerWith(t, store, Limits{MaxBody: 4096, Limits: api.Limits{MaxTokens: 64}})
}

// apiServerWith is apiServerOn with the limits lim.
func apiServerWith(t *testing.T, store Store, lim Limits) (*httptest.Server, *model.Model) {
	ts, m, _ := apiServerGated(t, store, lim)
	return ts, m
}

// apiServerGated is apiServerWith whose engine steps can be held (see
// stepGate).
func apiServerGated(t *testing.T, store Store, lim Limits) (*httptest.Server, *model.Model, *stepGate) {
	m := synthtest.Model(t, "tiny", gguf.TypeQ8_0, 1)
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "index.html"), []byte("<!doctype html>"), 0o644))
	gate := &stepGate{MixedStepper: engine.CPUBatch(m, 3, 256).(engine.MixedStepper)}
	sched := scheduler.New(m, gate, scheduler.Config{Slots: 3, Ctx: 256})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sched.Run(ctx); close(done) }()
	srv, err := New(Config{Root: root, Engine: sched, ModelName: "tiny", Store: store, Limits: lim})
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { gate.Release(); ts.Close(); srv.Close(); cancel(); <-done })
	return ts, m, gate
}

// stepGate is the CPU batch whose steps wait, once Hold's steps have
// passed, until Release: a test holds a generation so that it is surely still running
// when its next frame arrives (the tiny model could otherwise finish
// first). It passes everything else through.
type stepGate struct {
	engine.MixedStepper
	mu    sync.Mutex
	wait  chan struct{} // nil: not held
	after int           // steps that pass before the hold begins
}

// Hold lets the next after steps pass and makes those after them wait.
func (g *stepGate) Hold(after int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wait == nil {
		g.wait = make(chan struct{})
	}
	g.after = after
}

// Release lets the steps that wait, and those to come, go on.
func (g *stepGate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wait != nil {
		close(g.wait)
		g.wait = nil
	}
}

func (g *stepGate) pass(ctx context.Context) error {
	g.mu.Lock()
	w := g.wait
	if w != nil && g.after > 0 {
		g.after--
		w = nil
	}
	g.mu.Unlock()
	if w == nil {
		return nil
	}
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *stepGate) StepBatch(ctx context.Context, seqs []int, tokens []int32) ([]int32, error) {
	if err := g.pass(ctx); err != nil {
		return nil, err
	}
	return g.MixedStepper.StepBatch(ctx, seqs, tokens)
}

func (g *stepGate) StepMixed(ctx context.Context, chunks []engine.Chunk, seqs []int, tokens []int32) ([]int32, error) {
	if err := g.pass(ctx); err != nil {
		return nil, err
	}
	return g.MixedStepper.StepMixed(ctx, chunks, seqs, tokens)
}

func (g *stepGate) KVBytes() int64 { return g.MixedStepper.(engine.KVHolder).KVBytes() }

// alone is the text and token ids req gets by itself.
func alone(t *testing.T, m *model.Model, req engine.Request) (string, []int32) {
	var text strings.Builder
	var ids []int32
	_, err := engine.Generate(context.Background(), m, req, func(tk engine.Token) error {
		text.WriteString(tk.Text)
		if tk.ID >= 0 {
			ids = append(ids, tk.ID)
		}
		return nil
	})
	require.NoError(t, err)
	return text.String(), ids
}

func post(t *testing.T, url, body string) (*http.Response, map[string]any) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func TestOpenAICompletions(t *testing.T) {
	ts, m := apiServer(t)
	resp, err := http.Get(ts.URL + "/v1/models")
	require.NoError(t, err)
	var models struct {
		Data []struct{ ID string } `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&models))
	resp.Body.Close()
	require.Len(t, models.Data, 1)
	assert.Equal(t, "tiny", models.Data[0].ID)

	msgs := []engine.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hello world"}}
	want, _ := alone(t, m, engine.Request{Messages: msgs, MaxTokens: 12, Sample: sample.Params{}})
	resp, out := post(t, ts.URL+"/v1/chat/completions", `{"model":"tiny","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello world"}],"max_tokens":12,"temperature":0}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", out)
	choice := out["choices"].([]any)[0].(map[string]any)
	assert.Equal(t, want, choice["message"].(map[string]any)["content"])
	assert.Equal(t, "chat.completion", out["object"])
	u := out["usage"].(map[string]any)
	assert.Positive(t, u["prompt_tokens"])
	assert.Equal(t, u["prompt_tokens"].(float64)+u["completion_tokens"].(float64), u["total_tokens"])

	// The same streamed: server-sent events whose deltas add up to it, the
	// last chunk with the usage, then [DONE].
	resp, err = http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello world"}],"max_tokens":12,"temperature":0,"stream":true}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	var text strings.Builder
	var last map[string]any
	sawDone := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			sawDone = true
			break
		}
		var c map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &c), line)
		d := c["choices"].([]any)[0].(map[string]any)["delta"].(map[string]any)
		if s, ok := d["content"].(string); ok {
			text.WriteString(s)
		}
		last = c
	}
	assert.True(t, sawDone)
	assert.Equal(t, want, text.String())
	require.NotNil(t, last)
	assert.NotNil(t, last["usage"], "the last chunk carries the usage")

	// Plain completions, seeded.
	wantC, _ := alone(t, m, engine.Request{Prompt: "In the beginning", MaxTokens: 8, Sample: sample.Defaults.WithSeed(5)})
	resp, out = post(t, ts.URL+"/v1/completions", `{"prompt":"In the beginning","max_tokens":8,"seed":5}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", out)
	assert.Equal(t, wantC, out["choices"].([]any)[0].(map[string]any)["text"])

	// The generations in Prometheus' text format, by the GenAI names.
	resp, err = http.Get(ts.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	var metrics strings.Builder
	_, _ = io.Copy(&metrics, resp.Body)
	for _, want := range []string{
		"gen_ai_server_time_to_first_token_seconds_count 3",
		"gen_ai_server_time_per_output_token_seconds_count 3",
		`gen_ai_client_token_usage_count{gen_ai_token_type="output"} 3`,
		"webinfer_generations_running 0",
		"webinfer_http_requests_total",
	} {
		assert.Contains(t, metrics.String(), want)
	}
}

func TestOpenAIBadRequests(t *testing.T) {
	ts, _ := apiServer(t)
	for _, c := range []struct {
		path, body string
		status     int
		code, says string
	}{
		{"/v1/chat/completions", `not json`, 400, "bad-request", "JSON"},
		{"/v1/chat/completions", `{"messages":[]}`, 400, "bad-option", "messages"},
		{"/v1/chat/completions", `{"messages":[{"role":"robot","content":"hi"}]}`, 400, "bad-option", "role"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":0}`, 400, "bad-option", "max_tokens"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":100000}`, 400, "bad-option", "max_tokens"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"temperature":9}`, 400, "bad-option", "temperature"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"stop":7}`, 400, "bad-option", "stop"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"n":3}`, 400, "bad-option", "n:"},
		{"/v1/completions", `{"max_tokens":4}`, 400, "bad-option", "prompt"},
		{"/v1/completions", `{"prompt":"` + strings.Repeat("a", 5000) + `"}`, 413, "too-large", "body"},
		{"/v1/completions", `{"prompt":"` + strings.Repeat("word ", 300) + `","max_tokens":4}`, 400, "context-full", "context"},
	} {
		resp, out := post(t, ts.URL+c.path, c.body)
		assert.Equal(t, c.status, resp.StatusCode, "%s %s", c.path, truncate(c.body, 60))
		e, _ := out["error"].(map[string]any)
		require.NotNil(t, e, "%s: %v", truncate(c.body, 60), out)
		assert.Equal(t, c.code, e["code"], truncate(c.body, 60))
		assert.Contains(t, e["message"], c.says)
	}
}

// wsConn opens /v1/stream.
func wsConn(t *testing.T, ts *httptest.Server) *websocket.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/stream", nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

type frame struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Index   int    `json:"index"`
	Token   int32  `json:"token"`
	Text    string `json:"text"`
	Reason  string `json:"reason"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Usage   struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

func send(t *testing.T, c *websocket.Conn, s string) {
	require.NoError(t, c.Write(context.Background(), websocket.MessageText, []byte(s)))
}

func read(t *testing.T, c *websocket.Conn) frame {
	// Generous: a frame may wait for many others' steps on a loaded
	// machine (and under the race detector).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	var f frame
	require.NoError(t, json.Unmarshal(b, &f), string(b))
	return f
}

// TestStreamSocket: two requests on one socket get their own tokens (as
// they get alone), indexed; a malformed frame gets a coded error and the
// socket stays; an abort ends a request with reason abort; a client that
// reconnects resumes from an index, nothing lost or repeated.
func TestStreamSocket(t *testing.T) {
	ts, m, gate := apiServerGated(t, NewMemoryStore(), Limits{MaxBody: 4096, Limits: api.Limits{MaxTokens: 64}})
	c := wsConn(t, ts)
	_, wantA := alone(t, m, engine.Request{Prompt: "Hello world", MaxTokens: 10, Sample: sample.Params{}})
	_, wantB := alone(t, m, engine.Request{Prompt: "One", MaxTokens: 7, Sample: sample.Defaults.WithSeed(2)})
	send(t, c, `{"type":"generate","id":"a","prompt":"Hello world","max_tokens":10,"temperature":0}`)
	send(t, c, `{"type":"generate","id":"b","prompt":"One","max_tokens":7,"seed":2}`)
	send(t, c, `{"type":"generate","id":"c","prompt":"x","max_tokens":"many"}`)
	send(t, c, `{"type":"nonsense","id":"d"}`)
	got := map[string][]int32{}
	done := map[string]frame{}
	var errs []frame
	for len(done) < 2 || len(errs) < 2 {
		f := read(t, c)
		switch f.Type {
		case "token":
			assert.Equal(t, len(got[f.ID]), f.Index, "indexes in order")
			got[f.ID] = append(got[f.ID], f.Token)
		case "done":
			done[f.ID] = f
		case "error":
			errs = append(errs, f)
		}
	}
	assert.Equal(t, wantA, got["a"])
	assert.Equal(t, wantB, got["b"])
	assert.Equal(t, len(wantA), done["a"].Usage.CompletionTokens)
	assert.Positive(t, done["a"].Usage.PromptTokens)
	for _, e := range errs {
		assert.Equal(t, "bad-frame", e.Code, e.Message)
	}

	// Abort. The steps after the first token's wait until the abort has
	// surely been read: the not-found answer to the frame after it says so
	// (a socket's frames are read in order).
	gate.Hold(1)
	send(t, c, `{"type":"generate","id":"long","prompt":"Hello","max_tokens":64}`)
	require.Equal(t, "token", read(t, c).Type)
	send(t, c, `{"type":"abort","id":"long"}`)
	send(t, c, `{"type":"abort","id":"nobody-yet"}`)
	for {
		f := read(t, c)
		if f.Type == "error" {
			require.Equal(t, "not-found", f.Code, "%+v", f)
			break
		}
		require.Equal(t, "token", f.Type, "%+v", f)
	}
	gate.Release()
	for {
		f := read(t, c)
		if f.Type == "done" {
			assert.Equal(t, "abort", f.Reason)
			assert.Less(t, f.Usage.CompletionTokens, 64)
			break
		}
		require.Equal(t, "token", f.Type, "%+v", f)
	}
	// The id is taken while it is kept.
	send(t, c, `{"type":"generate","id":"a","prompt":"again"}`)
	assert.Equal(t, "bad-frame", read(t, c).Code)

	// Resume on a new socket after reading three tokens on the first.
	_, want := alone(t, m, engine.Request{Prompt: "In the beginning", MaxTokens: 12, Sample: sample.Params{}})
	first := wsConn(t, ts)
	send(t, first, `{"type":"generate","id":"r1","prompt":"In the beginning","max_tokens":12,"temperature":0}`)
	var ids []int32
	for len(ids) < 3 {
		f := read(t, first)
		require.Equal(t, "token", f.Type)
		ids = append(ids, f.Token)
	}
	first.CloseNow()
	second := wsConn(t, ts)
	send(t, second, `{"type":"resume","id":"r1","from":3}`)
	for {
		f := read(t, second)
		if f.Type == "done" {
			break
		}
		require.Equal(t, "token", f.Type, "%+v", f)
		require.Equal(t, len(ids), f.Index)
		ids = append(ids, f.Token)
	}
	assert.Equal(t, want, ids)
	send(t, second, `{"type":"resume","id":"nobody","from":0}`)
	assert.Equal(t, "not-found", read(t, second).Code)

	// A frame over the limit: a coded error, and the socket stays.
	send(t, second, `{"type":"generate","id":"big","prompt":"`+strings.Repeat("a", 5000)+`"}`)
	assert.Equal(t, "too-large", read(t, second).Code)
	send(t, second, `{"type":"abort","id":"nobody"}`)
	assert.Equal(t, "not-found", read(t, second).Code)
}

func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"generate","id":"r1","prompt":"hi","max_tokens":4,"temperature":0,"seed":1,"stop":["\n"]}`,
		`{"type":"abort","id":"r1"}`, `{"type":"resume","id":"r1","from":3}`, `{"type":"resume","id":"r1"}`,
		`{}`, `[]`, `null`, `{"type":"generate","id":"x","prompt":"a","top_k":-1}`, `{"type":"generate","id":"` + strings.Repeat("x", 70) + `"}`,
		`{"type":"generate","id":"a","prompt":"b"} {"type":"abort"}`,
	} {
		f.Add([]byte(s))
	}
	lim := DefaultLimits
	lim.MaxBody = 2048
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := parseFrame(data, lim)
		if err != nil {
			if err.code == "" || err.message == "" {
				t.Fatalf("an error without its code or message: %+v", err)
			}
			return
		}
		if !idPattern.MatchString(fr.ID) {
			t.Fatalf("accepted id %q", fr.ID)
		}
		switch fr.Type {
		case "generate":
			if _, err := fr.options.request(fr.Prompt, nil, lim); err != nil {
				t.Fatalf("accepted a generate frame its request refuses: %v", err)
			}
		case "abort":
		case "resume":
			if fr.From == nil || *fr.From < 0 {
				t.Fatal("accepted a resume without from")
			}
		default:
			t.Fatalf("accepted type %q", fr.Type)
		}
	})
}

// TestResumeAfterRestart: a request begun on one server is resumed from an
// index on a new server over the same store (as after a crash): its tokens
// are regenerated and sent from there, nothing lost or repeated.
func TestResumeAfterRestart(t *testing.T) {
	store := NewMemoryStore()
	first, m := apiServerOn(t, store)
	_, want := alone(t, m, engine.Request{Prompt: "And God said", MaxTokens: 14, Sample: sample.Defaults.WithSeed(11)})
	c := wsConn(t, first)
	send(t, c, `{"type":"generate","id":"crash-1","prompt":"And God said","max_tokens":14,"seed":11}`)
	var ids []int32
	for len(ids) < 5 {
		f := read(t, c)
		require.Equal(t, "token", f.Type, "%+v", f)
		ids = append(ids, f.Token)
	}
	first.Close()

	second, _ := apiServerOn(t, store)
	c = wsConn(t, second)
	send(t, c, `{"type":"resume","id":"crash-1","from":5}`)
	for {
		f := read(t, c)
		if f.Type == "done" {
			assert.Equal(t, len(want), f.Usage.CompletionTokens)
			break
		}
		require.Equal(t, "token", f.Type, "%+v", f)
		require.Equal(t, len(ids), f.Index)
		ids = append(ids, f.Token)
	}
	assert.Equal(t, want, ids)
}

// TestSoak: loadgen.Soak against a real server: six sockets (three under
// the race detector) each ask for their request four times over, more
// streams than the scheduler's three slots, and every answer equals the
// request's solo run. Bounded by requests, not by time.
func TestSoak(t *testing.T) {
	ts, _ := apiServer(t)
	streams := 6
	if raceDetector {
		streams = 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := loadgen.Soak(ctx, loadgen.SoakConfig{URL: "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/stream",
		Streams: streams, Requests: 4, Tokens: 8, Prompt: "Hello world"})
	require.NoError(t, err)
	assert.Equal(t, streams*4, r.Requests)
	assert.Zero(t, r.Mismatches, r.FirstMismatch)
	assert.Positive(t, r.Tokens)
	t.Logf("soak: %d requests, %d tokens, %.0f tok/s, p99 %.1f ms", r.Requests, r.Tokens, r.TokS, r.P99)
}

// TestLoad: 32 streams at once over 8 sockets (8 over 4 under the race
// detector), each with its own seed and length; every stream gets exactly
// its solo run's tokens. Bounded: at most 10 tokens a stream, on loopback.
func TestLoad(t *testing.T) {
	ts, m := apiServer(t)
	sockets, perSocket := 8, 4
	if raceDetector {
		sockets, perSocket = 4, 2 // the same logic, a quarter of the arithmetic
	}
	wants := map[string][]int32{}
	frames := map[string]string{}
	for i := 0; i < sockets*perSocket; i++ {
		id := fmt.Sprintf("load-%d", i)
		n := 4 + i%7
		_, ids := alone(t, m, engine.Request{Prompt: "Hello world", MaxTokens: n, Sample: sample.Defaults.WithSeed(uint64(i))})
		wants[id] = ids
		frames[id] = fmt.Sprintf(`{"type":"generate","id":"%s","prompt":"Hello world","max_tokens":%d,"seed":%d}`, id, n, i)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string][]int32{}
	var gaps []time.Duration // between a request's token frames
	start := time.Now()
	for k := 0; k < sockets; k++ {
		c := wsConn(t, ts)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perSocket; j++ {
				send(t, c, frames[fmt.Sprintf("load-%d", k*perSocket+j)])
			}
			mine := map[string][]int32{}
			last := map[string]time.Time{}
			var myGaps []time.Duration
			for done := 0; done < perSocket; {
				f := read(t, c)
				switch f.Type {
				case "token":
					if f.Token >= 0 { // -1: text held back for a stop string or a character, released at the end
						mine[f.ID] = append(mine[f.ID], f.Token)
						now := time.Now()
						if p, ok := last[f.ID]; ok {
							myGaps = append(myGaps, now.Sub(p))
						}
						last[f.ID] = now
					}
				case "done":
					done++
				default:
					t.Errorf("unexpected frame %+v", f)
					return
				}
			}
			mu.Lock()
			for id, ids := range mine {
				got[id] = ids
			}
			gaps = append(gaps, myGaps...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.Equal(t, wants, got)
	// What the load measured, for the log (make bench's serve engine has
	// the figures to compare; a test asserts no timing).
	tokens := 0
	for _, ids := range got {
		tokens += len(ids)
	}
	if len(gaps) > 0 {
		slices.Sort(gaps)
		t.Logf("%d streams on %d sockets: %d tokens, %.1f tok/s in all, inter-token p50 %v, p99 %v", sockets*perSocket, sockets,
			tokens, float64(tokens)/time.Since(start).Seconds(), gaps[len(gaps)/2], gaps[min(len(gaps)-1, len(gaps)*99/100)])
	}
}

// relay serves the API with generation relayed to upstream.
func relay(t *testing.T, upstream string) *httptest.Server {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "index.html"), []byte("<!doctype html>"), 0o644))
	srv, err := New(Config{Root: root, Engine: &Upstream{URL: upstream, Timeout: 10 * time.Second}, ModelName: "relayed", Logf: t.Logf})
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return ts
}

// TestUpstream: a server relaying to another webinfer serve gives its
// text (HTTP and WebSocket); an upstream that is down is a coded error,
// at once.
func TestUpstream(t *testing.T) {
	up, m := apiServer(t)
	front := relay(t, up.URL)
	want, _ := alone(t, m, engine.Request{Prompt: "In the beginning", MaxTokens: 10, Sample: sample.Params{}})
	resp, out := post(t, front.URL+"/v1/completions", `{"prompt":"In the beginning","max_tokens":10,"temperature":0}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", out)
	assert.Equal(t, want, out["choices"].([]any)[0].(map[string]any)["text"])
	assert.Equal(t, 10.0, out["usage"].(map[string]any)["completion_tokens"])

	wantChat, _ := alone(t, m, engine.Request{Messages: []engine.Message{{Role: "user", Content: "Hello world"}}, MaxTokens: 8, Sample: sample.Params{}})
	c := wsConn(t, front)
	send(t, c, `{"type":"generate","id":"via","prompt":"In the beginning","max_tokens":10,"temperature":0}`)
	var text strings.Builder
	for {
		f := read(t, c)
		if f.Type == "done" {
			assert.Equal(t, 10, f.Usage.CompletionTokens)
			break
		}
		require.Equal(t, "token", f.Type, "%+v", f)
		text.WriteString(f.Text)
	}
	assert.Equal(t, want, text.String())
	resp, out = post(t, front.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hello world"}],"max_tokens":8,"temperature":0}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", out)
	assert.Equal(t, wantChat, out["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"])

	// An upstream that is down: 502 remote, and an error frame.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	front = relay(t, deadURL)
	resp, out = post(t, front.URL+"/v1/completions", `{"prompt":"hi","max_tokens":4}`)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Equal(t, "remote", out["error"].(map[string]any)["code"])
	c = wsConn(t, front)
	send(t, c, `{"type":"generate","id":"x","prompt":"hi","max_tokens":4}`)
	f := read(t, c)
	assert.Equal(t, "error", f.Type)
	assert.Equal(t, "remote", f.Code)
}

// TestOpenAINodeClient: the npm openai client streams from the server
// and reads a whole completion, as an app would.
func TestOpenAINodeClient(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(repo, "node_modules", "openai")); err != nil || func() bool { _, err := exec.LookPath("node"); return err != nil }() {
		if os.Getenv("CI") != "" {
			t.Fatal("node or the npm openai package is missing (scripts/setup.sh test installs them)")
		}
		t.Skip("node or node_modules/openai missing: run scripts/setup.sh test")
	}
	ts, m := apiServer(t)
	want, _ := alone(t, m, engine.Request{Messages: []engine.Message{{Role: "user", Content: "Hello world"}}, MaxTokens: 10, Sample: sample.Params{}})
	cmd := exec.Command("node", filepath.Join(repo, "tests", "openai", "client.mjs"), ts.URL)
	cmd.Dir = repo
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("%v: %s", err, ee.Stderr)
	}
	require.NoError(t, err)
	var got struct {
		Streamed  string         `json:"streamed"`
		Chunks    int            `json:"chunks"`
		Usage     map[string]int `json:"usage"`
		Text      string         `json:"text"`
		Finish    string         `json:"finish"`
		BadOption struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		} `json:"badOption"`
	}
	require.NoError(t, json.Unmarshal(out, &got), string(out))
	assert.Equal(t, want, got.Streamed)
	assert.Equal(t, want, got.Text)
	assert.Greater(t, got.Chunks, 2)
	assert.Equal(t, 10, got.Usage["completion_tokens"])
	assert.Equal(t, "length", got.Finish)
	assert.Equal(t, 400, got.BadOption.Status)
	assert.Equal(t, "bad-option", got.BadOption.Code)
}

// TestStreamCoalesces: a resume from far back with coalesce gets the
// tokens in fewer frames, with the same ids and text.
func TestStreamCoalesces(t *testing.T) {
	ts, _ := apiServer(t)
	c := wsConn(t, ts)
	send(t, c, `{"type":"generate","id":"k","prompt":"In the beginning","max_tokens":24,"temperature":0}`)
	var ids []int32
	var text strings.Builder
	for {
		f := read(t, c)
		if f.Type == "done" {
			break
		}
		require.Equal(t, "token", f.Type, "%+v", f)
		ids = append(ids, f.Token)
		text.WriteString(f.Text)
	}
	require.Greater(t, len(ids), 2)
	send(t, c, `{"type":"resume","id":"k","from":1,"coalesce":true}`)
	var got []int32
	var gotText strings.Builder
	frames := 0
	for {
		_, b, err := c.Read(context.Background())
		require.NoError(t, err)
		var f struct {
			frame
			Tokens []int32 `json:"tokens"`
		}
		require.NoError(t, json.Unmarshal(b, &f))
		if f.Type == "done" {
			break
		}
		frames++
		require.Equal(t, 1+len(got), f.Index)
		if f.Tokens == nil {
			f.Tokens = []int32{f.Token}
		}
		require.Equal(t, f.Token, f.Tokens[0])
		got = append(got, f.Tokens...)
		gotText.WriteString(f.Text)
	}
	assert.Equal(t, ids[1:], got)
	assert.Less(t, frames, len(got), "coalesced into fewer frames")
	assert.True(t, strings.HasSuffix(text.String(), gotText.String()))
}

// TestStreamTimeouts: a request past its time limit ends with code
// timeout; a socket that then sends nothing and streams nothing is closed
// after the idle timeout, with a reason.
func TestStreamTimeouts(t *testing.T) {
	ts, _ := apiServerWith(t, NewMemoryStore(), Limits{RequestTimeout: time.Nanosecond, IdleTimeout: 300 * time.Millisecond})
	c := wsConn(t, ts)
	send(t, c, `{"type":"generate","id":"t","prompt":"Hello","max_tokens":8}`)
	for {
		f := read(t, c)
		if f.Type == "error" {
			assert.Equal(t, "timeout", f.Code, f.Message)
			break
		}
		require.Equal(t, "token", f.Type, "%+v", f)
	}
	// Now idle: the server closes the socket (within a generous bound).
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer rcancel()
	_, _, err := c.Read(rctx)
	var ce websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.StatusNormalClosure, ce.Code)
	assert.Contains(t, ce.Reason, "idle")
}

// noGen is a Generator that is never asked to generate: readRequest only
// needs one to be configured.
type noGen struct{}

func (noGen) Generate(context.Context, engine.Request, func(engine.Token) error) (engine.Result, error) {
	return engine.Result{}, errors.New("noGen generates nothing")
}

// FuzzReadRequest: any body of /v1/completions or /v1/chat/completions is
// a request or a 4xx with a code and a message, never a panic.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		`{"prompt":"hi","max_tokens":4,"temperature":0,"seed":1,"stop":["\n"],"stream":true}`,
		`{"messages":[{"role":"user","content":"Hi"}],"max_tokens":8,"top_p":0.9}`,
		`{"messages":[]}`, `{"prompt":7}`, `{"n":2,"prompt":"a"}`, `[]`, `null`, `{}`, `{"prompt":"a","max_tokens":1e9}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	root := f.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("<!doctype html>"), 0o644); err != nil {
		f.Fatal(err)
	}
	srv, err := New(Config{Root: root, Engine: noGen{}, ModelName: "x", Store: NewMemoryStore(), Limits: Limits{MaxBody: 4096}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, chat bool) {
		r := httptest.NewRequest(http.MethodPost, "/v1/completions", bytes.NewReader(body))
		_, req, aerr := srv.readRequest(httptest.NewRecorder(), r, chat)
		if aerr != nil {
			if aerr.code == "" || aerr.message == "" || aerr.status < 400 || aerr.status >= 500 {
				t.Fatalf("error %+v: want a 4xx with a code and a message", aerr)
			}
			return
		}
		if req.MaxTokens <= 0 || req.MaxTokens > srv.cfg.Limits.MaxTokens {
			t.Fatalf("accepted max_tokens %d", req.MaxTokens)
		}
	})
}
