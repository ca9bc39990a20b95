package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/webinfer/webinfer/wasm/cpu"
	"strings"
	"sync"
	"time"

	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/features"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/session"
)

// HostConfig is what a Host runs on.
type HostConfig struct {
	// Post sends a message (JSON) to the page. Host calls it from several
	// goroutines, one at a time.
	Post func([]byte)
	// Detect reads the browser's features (shim/features.js); nil: a host
	// without WebGPU (natively: tests).
	Detect func(context.Context) (features.Report, error)
	// Limits bound a request (zero: DefaultLimits).
	Limits Limits
}

// TelemetryEvery is the least time between two telemetry messages.
const TelemetryEvery = 100 * time.Millisecond

// YieldEvery is the most time a generation runs without letting the JS
// event loop in (a token's worth on the CPU path of any real model).
const YieldEvery = 10 * time.Millisecond

// Host runs the page's messages: one model (a session), generations in
// turn, each request's messages tagged with its id.
type Host struct {
	cfg    HostConfig
	postMu sync.Mutex

	mu         sync.Mutex
	sess       *session.Session
	modelURL   string
	chosen     session.Chosen
	loading    bool
	cancelLoad context.CancelFunc
	requests   map[int]context.CancelFunc // running or waiting
	active     int                        // generations started and not ended
	tokens     int                        // generated so far by the active ones
	last       engine.Result              // of the last generation
	chats      int
	fetchMs    float64 // the page side's download before the load
	events     bool    // the load asked for every session event
	agg        aggregate
}

// NewHost is a Host with nothing loaded.
func NewHost(cfg HostConfig) *Host {
	cfg.Limits = cfg.Limits.WithDefaults()
	return &Host{cfg: cfg, requests: map[int]context.CancelFunc{}}
}

func (h *Host) post(o Out) {
	b, err := json.Marshal(o)
	if err != nil { // only NaNs could do it; say so rather than lose the message
		b, _ = json.Marshal(Out{Ev: EvError, ID: o.ID, Code: string(session.CodeInternal), Message: "encoding a message: " + err.Error()})
	}
	h.postMu.Lock()
	defer h.postMu.Unlock()
	h.cfg.Post(b)
}

// fail posts request id's error.
func (h *Host) fail(id int, code session.Code, recoverable bool, format string, args ...any) {
	h.post(Out{Ev: EvError, ID: id, Code: string(code), Message: fmt.Sprintf(format, args...), Recoverable: recoverable})
}

// Receive takes one message from the page. It never blocks: loading and
// generating run in goroutines of their own, and every answer is posted.
func (h *Host) Receive(msg []byte) {
	var in In
	if err := json.Unmarshal(msg, &in); err != nil {
		h.fail(0, session.CodeBadOption, true, "a message that is no engine request: %v", err)
		return
	}
	switch in.Op {
	case OpLoad:
		h.load(in)
	case OpGenerate:
		h.generate(in)
	case OpChat:
		h.chat(in)
	case OpAbort:
		h.abort(in.ID)
	case OpFeatures:
		go h.features(in.ID)
	case OpUnload:
		h.unload(in.ID)
	case OpLoseDevice:
		go h.loseDevice(in.ID, in.Permanent)
	case OpReport:
		go h.report(in)
	default:
		h.fail(in.ID, session.CodeBadOption, true, "op %q: want load, generate, chat, abort, features, unload, loseDevice or report", in.Op)
	}
}

// load starts the session: progress messages, then ready or the error.
func (h *Host) load(in In) {
	h.mu.Lock()
	if h.sess != nil || h.loading {
		h.mu.Unlock()
		h.fail(in.ID, session.CodeBadOption, false, "model: this engine has a model already (make another engine)")
		return
	}
	if in.Threads < 0 || in.Threads > 64 {
		h.mu.Unlock()
		h.fail(in.ID, session.CodeBadOption, false, "threads: %d: want 1 to 64", in.Threads)
		return
	}
	cpu.SetPoolThreads(in.Threads)
	ctx, cancel := context.WithCancel(context.Background())
	name := in.Name
	if name == "" {
		name = in.Model
	}
	h.loading, h.cancelLoad, h.modelURL, h.fetchMs, h.events = true, cancel, name, in.FetchMs, in.Events
	h.mu.Unlock()
	go func() {
		defer cancel()
		eta := etaOf(time.Now())
		cfg := session.Config{Model: in.Model, Name: name, Prefs: features.Prefs{Backend: in.Backend, Precision: in.Precision}, Detect: h.cfg.Detect}
		var path features.Path
		s, err := session.Start(ctx, cfg, func(e session.Event) {
			h.forward(e)
			switch e := e.(type) {
			case session.Progress:
				phase := phaseOf(e.Phase)
				if phase == "fetch" && in.ReadPhase != "" {
					phase = in.ReadPhase
				}
				h.post(Out{Ev: EvProgress, ID: in.ID, Phase: phase, Loaded: e.Loaded, Total: e.Total, Text: e.Text, ETAMs: eta(e)})
			case session.Detected:
				path = e.Features.Path
			case session.Chosen:
				h.mu.Lock()
				h.chosen = e
				h.mu.Unlock()
				if path.Backend == "webgpu" && e.Backend != "webgpu" {
					h.post(Out{Ev: EvFallback, From: "webgpu", To: e.Backend, Text: e.Why})
				}
			case session.Error:
				if e.Recoverable { // a fatal one is the load's answer, below
					h.post(Out{Ev: EvError, Code: string(e.Code), Message: e.Message, Recoverable: true})
				}
			}
		})
		h.mu.Lock()
		h.loading = false
		if err == nil && ctx.Err() != nil { // unloaded while loading
			s.Close()
			err = fmt.Errorf("the engine was unloaded while loading")
		}
		if err != nil {
			h.mu.Unlock()
			code := session.CodeOf(err)
			var se session.Error
			if errors.As(err, &se) {
				code = se.Code
			}
			h.fail(in.ID, code, false, "%v", err)
			return
		}
		h.sess = s
		h.mu.Unlock()
		h.post(Out{Ev: EvReady, ID: in.ID, Stats: h.stats()})
	}()
}

// phaseOf maps a session's phase to the JS API's (fetch, cache, upload,
// compile, ready): detecting and opening the device come before the
// fetch, the self-check is where the kernels compile, and measuring the
// backends is the last of the upload.
func phaseOf(p session.Phase) string {
	switch p {
	case session.PhaseDetect, session.PhaseDevice, session.PhaseFetch:
		return "fetch"
	case session.PhaseCheck:
		return "compile"
	case session.PhaseUpload, session.PhaseChoose:
		return "upload"
	}
	return string(p)
}

// etaOf returns the estimate of a fetch's remaining milliseconds from
// the bytes so far (0 when unknown), the fetch having begun at start.
func etaOf(start time.Time) func(session.Progress) float64 {
	return func(p session.Progress) float64 {
		if p.Phase != session.PhaseFetch || p.Loaded <= 0 || p.Total <= p.Loaded {
			return 0
		}
		elapsed := float64(time.Since(start).Microseconds()) / 1000
		return elapsed * float64(p.Total-p.Loaded) / float64(p.Loaded)
	}
}

// session returns the loaded session, or posts request id's error.
func (h *Host) session(id int) *session.Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sess == nil {
		h.fail(id, session.CodeBadOption, true, "no model is loaded (the engine was unloaded, or its load failed)")
	}
	return h.sess
}

// generate continues a prompt: token messages, then done.
func (h *Host) generate(in In) {
	if in.Prompt == nil {
		h.fail(in.ID, session.CodeBadOption, true, "prompt: want a string")
		return
	}
	req, err := Request(*in.Prompt, nil, in.Options, JS, h.cfg.Limits, true, "signal")
	if err != nil {
		h.fail(in.ID, session.CodeBadOption, true, "%v", err)
		return
	}
	h.run(in.ID, req, func(t engine.Token) {
		id := t.ID
		h.post(Out{Ev: EvToken, ID: in.ID, Token: &id, Text: t.Text, Index: t.Index, AtMs: ms(t.At)})
	}, nil)
}

// chat answers an OpenAI chat completion request: chunks (the first with
// the role, one per piece of text, the last with finish_reason and
// usage) or one completion, then done.
func (h *Host) chat(in In) {
	req, stream, err := ChatRequest(in.Request, h.cfg.Limits, true)
	if err != nil {
		h.fail(in.ID, session.CodeBadOption, true, "%v", err)
		return
	}
	h.mu.Lock()
	h.chats++
	c := Chat{ID: fmt.Sprintf("chatcmpl-%d", h.chats), Created: time.Now().Unix(), Model: modelName(h.modelURL)}
	h.mu.Unlock()
	var text strings.Builder
	first := true
	h.run(in.ID, req, func(t engine.Token) {
		if !stream {
			text.WriteString(t.Text)
			return
		}
		if first {
			first = false
			h.post(Out{Ev: EvChunk, ID: in.ID, Chunk: c.Chunk("assistant", "")})
		}
		if t.Text != "" {
			h.post(Out{Ev: EvChunk, ID: in.ID, Chunk: c.Chunk("", t.Text)})
		}
	}, func(r engine.Result) {
		if !stream {
			h.post(Out{Ev: EvCompletion, ID: in.ID, Completion: c.Completion(text.String(), r)})
			return
		}
		if first {
			h.post(Out{Ev: EvChunk, ID: in.ID, Chunk: c.Chunk("assistant", "")})
		}
		h.post(Out{Ev: EvChunk, ID: in.ID, Chunk: c.Last(r)})
	})
}

// modelName is a model's name in OpenAI objects: its file's name.
func modelName(url string) string {
	if i := strings.LastIndexByte(url, '/'); i >= 0 {
		url = url[i+1:]
	}
	if i := strings.IndexAny(url, "?#"); i >= 0 {
		url = url[:i]
	}
	if url == "" || strings.HasPrefix(url, "blob:") {
		return "webinfer"
	}
	return url
}

// run generates req as request id in a goroutine of its own, after the
// generations before it: each token to onToken, then (unless it failed)
// the result to onEnd, the done message, and the stats.
func (h *Host) run(id int, req engine.Request, onToken func(engine.Token), onEnd func(engine.Result)) {
	s := h.session(id)
	if s == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.mu.Lock()
	if _, dup := h.requests[id]; dup {
		h.mu.Unlock()
		cancel()
		h.fail(id, session.CodeBadOption, true, "request id %d is in use", id)
		return
	}
	h.requests[id] = cancel
	h.mu.Unlock()
	go func() {
		defer func() {
			cancel()
			h.mu.Lock()
			delete(h.requests, id)
			h.mu.Unlock()
		}()
		var lastTelemetry time.Time
		lastYield := time.Now()
		var genErr *session.Error
		mine := 0 // this generation's tokens, in h.tokens while it runs
		began := time.Now()
		var prevAt time.Duration // the last token's time, for the gaps
		res, err := s.Generate(ctx, req, func(e session.Event) {
			h.forward(e)
			switch e := e.(type) {
			case session.Started:
				h.mu.Lock()
				h.active++
				h.mu.Unlock()
			case session.Token:
				h.mu.Lock()
				if e.ID >= 0 {
					h.tokens++
					mine++
					if e.Index > 0 {
						h.agg.gap(e.At - prevAt)
					}
					prevAt = e.At
				}
				h.mu.Unlock()
				onToken(e.Token)
				now := time.Now()
				if now.Sub(lastTelemetry) >= TelemetryEvery {
					lastTelemetry = now
					h.post(Out{Ev: EvTelemetry, Stats: h.stats()})
				}
				if now.Sub(lastYield) >= YieldEvery {
					// In a browser Go runs on the JS thread: only an idle Go
					// lets the page's messages (an abort) in. On WebGPU each
					// step awaits the GPU, which idles; the CPU path does not.
					yieldToJS()
					lastYield = time.Now()
				}
			case session.Error:
				genErr = &e
			case session.DeviceLost:
				h.post(Out{Ev: EvDeviceLost, Text: e.Message})
			case session.Fallback:
				h.mu.Lock()
				h.chosen.Backend, h.chosen.Precision, h.chosen.Why = e.To, "f32", e.Why
				h.mu.Unlock()
				h.post(Out{Ev: EvFallback, From: e.From, To: e.To, Text: e.Why, Stats: h.stats()})
			}
		})
		h.mu.Lock()
		h.active, h.tokens = max(0, h.active-1), max(0, h.tokens-mine)
		h.agg.ended(res.PromptTokens, mine, time.Duration(res.TTFTMillis*float64(time.Millisecond)), time.Since(began))
		if err == nil {
			h.last = res
		}
		h.mu.Unlock()
		switch {
		case err == nil:
			if onEnd != nil {
				onEnd(res)
			}
			// The stats at the end, so that the page's stats() after a
			// request says where it ended (a fallback within it, say),
			// not what the last telemetry said.
			h.post(Out{Ev: EvDone, ID: id, Result: resultOf(res), Stats: h.stats()})
		case session.CodeOf(err) == session.CodeAborted || errors.Is(err, context.Canceled):
			h.fail(id, session.CodeAborted, true, "aborted")
		case genErr != nil:
			h.fail(id, genErr.Code, genErr.Recoverable, "%s", genErr.Message)
		default:
			h.fail(id, session.CodeOf(err), true, "%v", err)
		}
		h.post(Out{Ev: EvStats, Stats: h.stats()})
	}()
}

// abort ends request id (running, or waiting for its turn).
func (h *Host) abort(id int) {
	h.mu.Lock()
	cancel := h.requests[id]
	h.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// features answers the feature report with the code path chosen from it.
func (h *Host) features(id int) {
	var r features.Report
	if h.cfg.Detect != nil {
		var err error
		if r, err = h.cfg.Detect(context.Background()); err != nil {
			h.fail(id, session.CodeInternal, true, "features: %v", err)
			return
		}
	}
	r.Path = features.Choose(r, features.Prefs{})
	h.post(Out{Ev: EvReply, ID: id, Value: r})
}

// unload ends every request and frees the model and the device.
func (h *Host) unload(id int) {
	h.mu.Lock()
	for _, cancel := range h.requests {
		cancel()
	}
	if h.cancelLoad != nil {
		h.cancelLoad()
	}
	s := h.sess
	h.sess = nil
	h.mu.Unlock()
	go func() {
		if s != nil {
			s.Close() // after the generation running has ended
		}
		h.post(Out{Ev: EvReply, ID: id, Value: true})
	}()
}

// forward posts e as a session message, when the load asked for them.
func (h *Host) forward(e session.Event) {
	h.mu.Lock()
	on := h.events
	h.mu.Unlock()
	if on {
		w := EncodeEvent(e)
		h.post(Out{Ev: EvSession, Event: &w})
	}
}

// report answers the run report, after timing a decode step kernel by
// kernel when asked (its errors are in the report).
func (h *Host) report(in In) {
	s := h.session(in.ID)
	if s == nil {
		return
	}
	if in.Profile {
		_ = s.ProfileDecode(context.Background())
	}
	h.post(Out{Ev: EvReply, ID: in.ID, Value: s.Report()})
}

// loseDevice destroys the GPU device (tests: as a driver reset would).
func (h *Host) loseDevice(id int, permanent bool) {
	s := h.session(id)
	if s == nil {
		return
	}
	h.post(Out{Ev: EvReply, ID: id, Value: s.LoseDevice(permanent)})
}

// stats is the engine's state now.
func (h *Host) stats() *Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := &Stats{Backend: h.chosen.Backend, Precision: h.chosen.Precision, Why: h.chosen.Why, Model: modelName(h.modelURL),
		BatchSize: h.active, Waiting: max(0, len(h.requests)-h.active), Tokens: h.tokens,
		TTFTMs: h.last.TTFTMillis, PrefillTokS: h.last.PrefillTokS, DecodeTokS: h.last.DecodeTokS,
		ITLMs: ITL{P50: h.last.ITLMillis.P50, P90: h.last.ITLMillis.P90, P99: h.last.ITLMillis.P99}, GenAI: h.agg.genAI()}
	if h.sess == nil {
		return st
	}
	rep := h.sess.Report()
	m := rep.Metrics
	st.CPU = rep.CPU
	st.TTFTBreakdownMs = TTFTBreakdown{Fetch: h.fetchMs + m.LoadMillis, Upload: m.UploadMillis, Compile: m.CompileMillis, Prefill: h.last.TTFTMillis}
	st.KVBytes = kvBytes(h.sess.Model())
	if b := h.sess.Streams(); b.Budget > 0 { // the scheduler, once it ran
		st.BatchSize, st.Waiting = b.Running, max(0, len(h.requests)-b.Running)
		st.KVBytes, st.KVBudgetBytes = b.KVBytes, b.Budget
		sc := &SchedulerStats{Steps: b.Steps, Prefills: b.Prefills, Batch: b.Batch, Chunk: b.Chunk, Decisions: []Decision{}}
		for _, d := range b.Decisions {
			sc.Decisions = append(sc.Decisions, Decision{Step: d.Step, LatencyMs: ms(d.Latency), Batch: d.Batch, Chunk: d.Chunk, Occupied: d.Occupied, Why: d.Why})
		}
		st.Scheduler = sc
	}
	st.GPUBytes = h.sess.GPUBytes()
	st.Backends = h.sess.Backends()
	return st
}

// kvBytes is the key/value cache of m's default context, in f32 (one
// sequence's, before the scheduler runs).
func kvBytes(m *model.Model) int64 {
	return m.PositionBytes() * int64(engine.ContextSize(m, 0))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
