// Package session is the layer between a front end (the page, and the
// Web Worker engine of the JS API) and the engine: it detects the
// browser's features, opens the WebGPU device, loads the model, checks the
// kernels generation will use against their Go references, chooses the
// backend (by measuring where both can run), and generates, emitting typed
// events (Progress with phase and bytes, Token, Done with usage and
// timings, Error with a stable code) that the front end turns into its own
// state or messages. It is pure Go: natively WebGPU is unavailable and a
// session runs on the CPU path, which is how it is tested.
//
// In: a Config and an emit callback. Out: events, in order, from the
// goroutine that calls Start and Generate; the run report (report.Report)
// the page publishes.
package session

import (
	"context"
	"errors"
	"fmt"
	"github.com/webinfer/webinfer/wasm/cpu"
	"strings"
	"sync"
	"time"

	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/features"
	"github.com/webinfer/webinfer/wasm/gpumodel"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/scheduler"
	"github.com/webinfer/webinfer/wasm/selfcheck"
	"github.com/webinfer/webinfer/wasm/source"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// Config is what a session starts from.
type Config struct {
	Model string         // a path or URL (package source)
	Name  string         // the model as the user named it (Model may be a blob: URL); "": Model's file name
	Prefs features.Prefs // ?backend= and ?precision=
	// Detect reads the browser's features (shim/features.js in a page);
	// nil: a host without WebGPU.
	Detect func(context.Context) (features.Report, error)
	// MaxBatch is the most prompt tokens a GPU step takes (0: 64).
	MaxBatch int
	// Streams is the most generations that run together, one token of
	// each a step (0: DefaultStreams); on the GPU, as many as the KV
	// budget holds whole contexts of, at least one.
	Streams int
	// KVBudget bounds the KV cache memory of all of them, in bytes (0:
	// from the device's memory, see kvBudget).
	KVBudget int64
	// Target is the inter-token latency the batch size is fitted to (0:
	// twice the single-stream step, measured).
	Target time.Duration
}

// DefaultStreams is how many generations are batched at most.
const DefaultStreams = 4

// Session is one loaded model on its chosen backend.
type Session struct {
	cfg        Config
	emit       func(Event)
	m          *model.Model
	closeModel func()
	dev        *webgpu.Device
	runner     *gpumodel.Runner // nil: the CPU path
	precision  string
	gen        sync.Mutex // the runner outside the scheduler: ProfileDecode, Close
	batch      *batch     // the scheduler on the backend now, once a generation needed it
	batched    sync.WaitGroup
	recovering sync.Mutex // one recovery from a lost device at a time
	mu         sync.Mutex // guards rep
	rep        report.Report
	lastToken  int32
}

// Start runs a session's stages, emitting their events, and returns the
// session ready to generate. A stage that fails on the GPU path emits a
// recoverable Error and the session goes on on the CPU path; a model that
// cannot be loaded emits a fatal Error, which Start also returns.
func Start(ctx context.Context, cfg Config, emit func(Event)) (*Session, error) {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 64
	}
	s := &Session{cfg: cfg, emit: emit, precision: "f32",
		rep: report.Report{Tokens: []int{}, Errors: []string{}, Checks: []selfcheck.Result{}}}
	feats := s.detect(ctx)
	s.health("cpu", "idle", "not initialised until it is needed")
	if feats.Path.Backend == "webgpu" {
		s.health("webgpu", "starting", feats.Path.Why)
		s.openDevice(ctx, feats.Path.Precision)
	} else {
		s.health("webgpu", "unavailable", feats.Path.Why)
	}
	if err := s.load(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.check(ctx)
	if s.dev != nil {
		s.upload(ctx)
	}
	if s.runner != nil && cfg.Prefs.Backend != "webgpu" {
		s.choose(ctx)
	}
	if s.runner == nil {
		if err := s.materialize(); err != nil {
			s.Close()
			return nil, err
		}
		if s.healthOf("cpu") != "failed" {
			s.health("cpu", "ready", "chosen")
		}
	}
	backend, why := "cpu", feats.Path.Why
	if s.runner != nil {
		backend = "webgpu"
	} else {
		s.precision = "f32"
	}
	if s.rep.Probe != nil {
		why = fmt.Sprintf("measured: WebGPU %.1f ms a token, CPU %.1f", s.rep.Probe.WebGPUMillisPerToken, s.rep.Probe.CPUMillisPerToken)
	}
	s.setReport(func(r *report.Report) { r.Backend, r.Precision, r.Why = backend, s.precision, why })
	s.emit(Chosen{Backend: backend, Precision: s.precision, Why: why, Probe: s.rep.Probe})
	s.progress(PhaseReady, "ready")
	return s, nil
}

// health records backend name's state in the report's registry.
func (s *Session) health(name, health, why string) {
	s.setReport(func(r *report.Report) {
		for i := range r.Backends {
			if r.Backends[i].Name == name {
				r.Backends[i].Health, r.Backends[i].Why = health, why
				return
			}
		}
		r.Backends = append(r.Backends, report.Backend{Name: name, Health: health, Why: why})
	})
}

// healthOf is backend name's health in the registry.
func (s *Session) healthOf(name string) string {
	for _, b := range s.Report().Backends {
		if b.Name == name {
			return b.Health
		}
	}
	return ""
}

// gpuFailed records a failure of the GPU path, which it leaves (the
// runner and the device freed) for the CPU path.
func (s *Session) gpuFailed(e Error) {
	s.fail(e)
	s.health("webgpu", "failed", e.Message)
	s.dropDevice()
}

// Backends is the registry's state: each backend's health and why.
func (s *Session) Backends() []report.Backend {
	return append([]report.Backend(nil), s.Report().Backends...)
}

func (s *Session) progress(p Phase, format string, args ...any) {
	s.emit(Progress{Phase: p, Text: fmt.Sprintf(format, args...)})
}

// fail emits e and records it in the report.
func (s *Session) fail(e Error) {
	s.setReport(func(r *report.Report) { r.Errors = append(r.Errors, e.Message) })
	s.emit(e)
}

func (s *Session) setReport(f func(*report.Report)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.rep)
}

// detect reads the features and chooses the code path from them.
func (s *Session) detect(ctx context.Context) features.Report {
	s.progress(PhaseDetect, "detecting browser features")
	var feats features.Report
	if s.cfg.Detect != nil {
		var err error
		if feats, err = s.cfg.Detect(ctx); err != nil {
			s.fail(newError(CodeInternal, true, "features: %v", err))
		}
	}
	feats.Path = features.Choose(feats, s.cfg.Prefs)
	s.setReport(func(r *report.Report) {
		r.Engine = report.EngineFromUA(feats.UserAgent)
		r.Features = feats
	})
	s.emit(Detected{Features: feats})
	return feats
}

// openDevice opens WebGPU, shader-f16 only where f16 was chosen.
func (s *Session) openDevice(ctx context.Context, precision string) {
	s.progress(PhaseDevice, "opening the WebGPU device")
	var disable []string
	if precision != "f16" {
		disable = append(disable, "shader-f16")
	}
	dev, err := webgpu.Open(ctx, webgpu.Options{DisableFeatures: disable})
	if err != nil {
		s.gpuFailed(newError(CodeOf(err), true, "%v; falling back to the CPU path", err))
		return
	}
	s.dev, s.precision = dev, precision
	s.emit(DeviceOpened{Info: dev.Info()})
}

// name is the model as the user named it, for messages.
func (s *Session) name() string {
	if s.cfg.Name != "" {
		return s.cfg.Name
	}
	return s.cfg.Model
}

// load reads the model, reporting the bytes as they arrive.
func (s *Session) load(ctx context.Context) error {
	s.progress(PhaseFetch, "loading the model")
	t0 := time.Now()
	m, info, closeFn, err := source.Load(ctx, s.cfg.Model, func(p source.Progress) {
		s.emit(Progress{Phase: PhaseFetch, Text: "loading the model", Loaded: p.Loaded, Total: p.Total})
	})
	if err != nil {
		code := CodeOf(err)
		if code == CodeInternal {
			code = CodeNetwork // the file could not be read or fetched
		}
		e := newError(code, false, "model %s: %v", s.name(), err)
		s.fail(e)
		return e
	}
	if s.cfg.Name != "" {
		info.Name = source.NameOf(s.cfg.Name)
	}
	m.Profile = &model.StepProfile{} // the report's CPU step_ms
	s.mu.Lock()
	s.m, s.closeModel = m, closeFn
	s.mu.Unlock()
	ms := float64(time.Since(t0).Microseconds()) / 1000
	s.setReport(func(r *report.Report) { r.Metrics.LoadMillis = ms })
	s.emit(Loaded{Name: info.Name, Bytes: info.Bytes, Millis: ms})
	return nil
}

// check runs the CPU path's check and, with a device, the checks of the
// kernels generation will run there; a failure drops the device.
func (s *Session) check(ctx context.Context) {
	s.progress(PhaseCheck, "checking the kernels")
	defer func() {
		cpuRes := selfcheck.MatVecCPU()
		s.checked(cpuRes)
		if !cpuRes.OK {
			s.fail(newError(CodeKernelCheck, true, "CPU kernel check failed"))
			s.health("cpu", "failed", "its kernel check failed")
		}
	}()
	if s.dev == nil {
		return
	}
	if err := gpumodel.Supported(s.m); err != nil {
		s.gpuFailed(newError(CodeWebGPUUnavailable, true, "%v; generating on the CPU path", err))
		return
	}
	t0 := time.Now()
	plan := selfcheck.Plan{WeightTypes: gpumodel.WeightTypes(s.m), Target: gpumodel.DeviceTarget(s.dev.Info()), Vocab: s.m.Vocab}
	var failed []string
	for _, r := range selfcheck.Generation(ctx, s.dev, plan) {
		s.checked(r)
		if !r.OK {
			failed = append(failed, failure(r))
		}
	}
	ms := float64(time.Since(t0).Microseconds()) / 1000
	s.setReport(func(r *report.Report) { r.Metrics.CompileMillis = ms })
	if len(failed) > 0 {
		s.gpuFailed(newError(CodeKernelCheck, true, "WebGPU kernel check failed (%s); generating on the CPU path", strings.Join(failed, "; ")))
	}
}

// failure says what failed in a kernel's check.
func failure(r selfcheck.Result) string {
	if r.Error != "" {
		return r.Kernel + ": " + r.Error
	}
	for _, c := range r.Cases {
		if !c.OK {
			return fmt.Sprintf("%s: %s, %d outside the bound", r.Kernel, c.Name, c.Comparison.Failures)
		}
	}
	return r.Kernel
}

func (s *Session) checked(r selfcheck.Result) {
	s.setReport(func(rep *report.Report) { rep.Checks = append(rep.Checks, r) })
	s.emit(Checked{Result: r})
}

// upload makes the GPU runner.
func (s *Session) upload(ctx context.Context) {
	s.progress(PhaseUpload, "uploading the weights to the GPU")
	t0 := time.Now()
	defer func() {
		ms := float64(time.Since(t0).Microseconds()) / 1000
		s.setReport(func(r *report.Report) { r.Metrics.UploadMillis = ms })
	}()
	r, err := gpumodel.New(ctx, s.dev, s.m, engine.ContextSize(s.m, 0), s.cfg.MaxBatch, gpumodel.HalfActivations(s.precision == "f16"),
		gpumodel.Sequences(s.gpuStreams()))
	if err != nil {
		s.gpuFailed(newError(CodeOf(err), true, "%v; generating on the CPU path", err))
		return
	}
	s.runner = r
	s.health("webgpu", "ready", "its kernels checked, the weights uploaded")
}

// dropDevice frees the runner (its buffers) and the device.
func (s *Session) dropDevice() {
	if s.runner != nil {
		s.runner.Close()
		s.runner = nil
	}
	if s.dev != nil {
		s.dev.Destroy()
		s.dev = nil
	}
}

// materialize reads a lazily loaded model's weights into memory, for the
// CPU path (model.LoadLazy left them in the browser's Blob).
func (s *Session) materialize() error {
	if !s.m.Lazy() {
		return nil
	}
	s.progress(PhaseFetch, "reading the weights for the CPU path")
	if err := s.m.Materialize(); err != nil {
		e := newError(CodeBadModel, false, "model %s: %v", s.name(), err)
		s.fail(e)
		return e
	}
	return nil
}

// choose keeps the WebGPU backend only if it decodes faster than the CPU
// path here: on a software adapter (SwiftShader, lavapipe) the CPU path
// usually wins. On a hardware adapter a lazily loaded model keeps WebGPU
// unmeasured: the CPU path's measurement would need the whole model in
// memory, which the lazy load exists to avoid.
func (s *Session) choose(ctx context.Context) {
	if s.m.Lazy() && !s.dev.Info().Adapter.IsFallbackAdapter {
		return
	}
	if err := s.materialize(); err != nil {
		return
	}
	s.progress(PhaseChoose, "measuring the WebGPU and CPU paths")
	gpuMs, err := probe(ctx, s.m, s.runner)
	if err != nil {
		s.fail(newError(CodeOf(err), true, "measuring the backends: %v", err))
		return
	}
	cpuMs, err := probe(ctx, s.m, engine.CPUBackend(s.m))
	if err != nil {
		s.fail(newError(CodeOf(err), true, "measuring the backends: %v", err))
		return
	}
	p := &report.Probe{WebGPUMillisPerToken: gpuMs, CPUMillisPerToken: cpuMs, Chosen: "webgpu"}
	if cpuMs < gpuMs {
		p.Chosen = "cpu"
		s.dropDevice()
		s.health("webgpu", "idle", fmt.Sprintf("measured slower here: %.1f ms a token, the CPU path %.1f", gpuMs, cpuMs))
	}
	s.setReport(func(r *report.Report) { r.Probe = p })
}

// probe times greedy decode steps of one short prompt on be, after one
// warm-up step, and returns milliseconds per token.
func probe(ctx context.Context, m *model.Model, be engine.Backend) (float64, error) {
	if err := be.Reset(64); err != nil {
		return 0, err
	}
	next := func(logits []float32) []int32 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return []int32{int32(best)}
	}
	logits, err := be.Forward(ctx, m.Tokenizer.Encode("And", true, false))
	if err != nil {
		return 0, err
	}
	if logits, err = be.Forward(ctx, next(logits)); err != nil { // warm-up
		return 0, err
	}
	const steps = 4
	start := time.Now()
	for i := 0; i < steps; i++ {
		if logits, err = be.Forward(ctx, next(logits)); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Microseconds()) / 1000 / steps, nil
}

// Model is the loaded model.
func (s *Session) Model() *model.Model { return s.m }

// Backend is where generation runs: "webgpu" or "cpu".
func (s *Session) Backend() string {
	if s.runner != nil {
		return "webgpu"
	}
	return "cpu"
}

// Generate runs req on the chosen backend, emitting Started, a Token per
// token and Done to emit (the session's own emit when nil); an error also
// emits an Error (Done.Err says ctx ended: CodeAborted). Concurrent
// generations share steps on either backend (the scheduler: one token of
// each a step, each weight read once for all; on the GPU each step queued
// before the last one's tokens are read). A lost GPU device: a new one
// (or the CPU path) carries every sequence on from its tokens so far. The
// last generation to end puts its tokens, text and timings into Report.
func (s *Session) Generate(ctx context.Context, req engine.Request, emit func(Event)) (engine.Result, error) {
	if emit == nil {
		emit = s.emit
	}
	s.batched.Add(1)
	defer s.batched.Done()
	emit(Started{Prompt: req.Prompt})
	out := &output{emit: emit, s: s}
	b := s.scheduler()
	seq, err := b.sched.NewSequence(req)
	if err != nil {
		return out.end(ctx, engine.Result{}, err)
	}
	res, err := b.sched.GenerateSequence(ctx, seq, out.token)
	for tries := 0; err != nil && ctx.Err() == nil && b.gpu && tries < 2; tries++ {
		lost := CodeOf(err) == CodeDeviceLost
		if !lost && !(errors.Is(err, scheduler.ErrClosed) && s.current() != b) {
			break
		}
		if lost {
			emit(DeviceLost{Message: err.Error()})
		}
		if b, err = s.recover(ctx, b, emit); err != nil {
			break
		}
		seq.Resume()
		res, err = b.sched.GenerateSequence(ctx, seq, out.token)
	}
	return out.end(ctx, res, err)
}

// output gathers one generation's tokens and text as they are emitted.
type output struct {
	s      *Session
	emit   func(Event)
	tokens []int
	text   strings.Builder
}

func (o *output) token(t engine.Token) error {
	if t.ID >= 0 {
		o.tokens = append(o.tokens, int(t.ID))
		o.s.mu.Lock()
		o.s.lastToken = t.ID
		o.s.mu.Unlock()
	}
	o.text.WriteString(t.Text)
	o.emit(Token{Token: t})
	return nil
}

// end records the generation in the report and emits its end: an Error
// (unless it was aborted) and Done.
func (o *output) end(ctx context.Context, res engine.Result, err error) (engine.Result, error) {
	s := o.s
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", errAborted, err)
	}
	s.setReport(func(r *report.Report) {
		r.Tokens, r.Text = append([]int{}, o.tokens...), o.text.String()
		r.Metrics.TTFTMillis, r.Metrics.PrefillTokS, r.Metrics.DecodeTokS = res.TTFTMillis, res.PrefillTokS, res.DecodeTokS
		r.Metrics.ITLMillis = report.ITL(res.ITLMillis)
		r.Metrics.TTFTBreakdown = &report.TTFTBreakdown{Fetch: r.Metrics.LoadMillis, Upload: r.Metrics.UploadMillis,
			Compile: r.Metrics.CompileMillis, Prefill: res.TTFTMillis}
	})
	if err != nil && CodeOf(err) != CodeAborted {
		e := newError(CodeOf(err), true, "generate: %v", err)
		s.setReport(func(r *report.Report) { r.Errors = append(r.Errors, e.Message) })
		o.emit(e)
	}
	o.emit(Done{Result: res, Err: err})
	return res, err
}

// batch is the scheduler on the backend now and the means to stop it.
type batch struct {
	sched  *scheduler.Scheduler
	gpu    bool  // on the GPU runner
	budget int64 // its KV budget (on the GPU: what the runner's caches hold)
	stop   context.CancelFunc
	done   chan struct{}
}

// scheduler returns the scheduler on the backend now, started on first
// use: on the GPU runner, its sequences; on the CPU path, Config.Streams
// slots; each of the model's context, within the KV budget.
func (s *Session) scheduler() *batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batch == nil {
		n := engine.ContextSize(s.m, 0)
		cfg := scheduler.Config{Ctx: n, Target: s.cfg.Target, KVBudget: s.kvBudget(), PositionBytes: s.m.PositionBytes()}
		var be engine.Batcher
		budget := cfg.KVBudget
		if s.runner != nil {
			// The runner's caches are whole contexts, sized from the
			// budget at upload: no budget beyond its sequences, and what
			// they hold is the budget reported.
			cfg.Slots, cfg.KVBudget = s.runner.Sequences(), 0
			be, budget = s.runner, s.runner.KVBytes()
		} else {
			cfg.Slots = s.streams()
			be = engine.CPUBatch(s.m, cfg.Slots, n)
		}
		ctx, stop := context.WithCancel(context.Background())
		b := &batch{sched: scheduler.New(s.m, be, cfg), gpu: s.runner != nil, budget: budget, stop: stop, done: make(chan struct{})}
		go func() {
			b.sched.Run(ctx)
			// The CPU path's caches go back at once: in the browser they
			// live in the CPU pool's memory, which Go's collector does not
			// see (the GPU runner's stay with the device).
			if f, ok := be.(engine.KVFreer); ok {
				f.FreeKV()
			}
			close(b.done)
		}()
		s.batch = b
	}
	return s.batch
}

// current is the scheduler now (nil before the first generation).
func (s *Session) current() *batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batch
}

// streams is Config.Streams or DefaultStreams.
func (s *Session) streams() int {
	if s.cfg.Streams > 0 {
		return s.cfg.Streams
	}
	return DefaultStreams
}

// gpuStreams is how many sequences the GPU runner holds: as many whole
// contexts as the KV budget holds (at f32, an upper bound), at most
// streams, at least one.
func (s *Session) gpuStreams() int {
	s.mu.Lock()
	budget := s.kvBudget()
	s.mu.Unlock()
	per := int64(engine.ContextSize(s.m, 0)) * s.m.PositionBytes()
	return max(1, min(s.streams(), int(budget/max(per, 1)), s.cfg.MaxBatch))
}

// recover replaces the scheduler lost with its device (old): once, for
// every generation that was in it; those that come after take the new
// one. The new device's runner, or the CPU path when none comes back.
func (s *Session) recover(ctx context.Context, old *batch, emit func(Event)) (*batch, error) {
	s.recovering.Lock()
	defer s.recovering.Unlock()
	if b := s.current(); b != old {
		return b, nil // another generation recovered already
	}
	s.mu.Lock()
	s.batch = nil
	s.mu.Unlock()
	old.stop()
	<-old.done
	s.gen.Lock()
	err := s.recoverDevice(ctx, emit)
	s.gen.Unlock()
	if err != nil {
		return nil, err
	}
	return s.scheduler(), nil
}

// kvBudget is the KV cache budget: Config.KVBudget, else a
// sixteenth of the device's memory where the browser says it
// (navigator.deviceMemory, which it rounds and caps at 8 GiB), between
// 64 MiB and 1 GiB; 1 GiB where it does not say (natively). Caller holds
// s.mu.
func (s *Session) kvBudget() int64 {
	if s.cfg.KVBudget > 0 {
		return s.cfg.KVBudget
	}
	gib := s.rep.Features.DeviceMemoryGiB
	if gib <= 0 {
		return 1 << 30
	}
	return min(1<<30, max(64<<20, int64(gib*(1<<30))/16))
}

// Streams says how the generations share steps now.
type Streams struct {
	Running, Waiting int   // generating in the last step; waiting for a slot or memory
	KVBytes          int64 // the KV memory the caches hold
	KVReserved       int64 // what the running ones may come to hold (all their positions)
	Budget           int64 // the KV budget (0: none yet)
	Steps, Prefills  int   // steps run, and those that read a prompt chunk
	Batch, Chunk     int   // the controller's batch size and prefill chunk now
	// Decisions are the controller's last changes (at most keepDecisions),
	// oldest first: the batch size and chunk over time.
	Decisions []scheduler.Decision
}

// keepDecisions bounds Streams.Decisions.
const keepDecisions = 32

// Streams returns the batching now (zero before a generation).
func (s *Session) Streams() Streams {
	s.mu.Lock()
	b := s.batch
	s.mu.Unlock()
	if b == nil {
		return Streams{}
	}
	st := b.sched.Stats()
	if b.gpu {
		st.KVReserved = st.KVBytes
	}
	d := st.Decisions[max(0, len(st.Decisions)-keepDecisions):]
	return Streams{Running: st.Running, Waiting: st.Waiting, KVBytes: st.KVBytes, KVReserved: st.KVReserved, Budget: b.budget,
		Steps: st.Steps, Prefills: st.Prefills, Batch: st.Batch, Chunk: st.Chunk, Decisions: append([]scheduler.Decision(nil), d...)}
}

// recoverDevice replaces a lost GPU device: a new device and the weights
// uploaded again (from the model in memory), or, when no device comes
// back, the CPU path (emitting Fallback); an error when neither can run.
func (s *Session) recoverDevice(ctx context.Context, emit func(Event)) error {
	s.health("webgpu", "lost", "its device was lost; taking a new one")
	s.dropDevice()
	s.openDevice(ctx, s.precision)
	if s.dev != nil {
		s.upload(ctx)
	}
	if s.runner != nil {
		return nil
	}
	s.precision = "f32"
	s.setReport(func(r *report.Report) { r.Backend, r.Precision = "cpu", "f32" })
	emit(Fallback{From: "webgpu", To: "cpu", Why: "no GPU device came back after the loss"})
	if err := s.materialize(); err != nil {
		return err
	}
	s.health("cpu", "ready", "the GPU device was lost and none came back")
	return nil
}

// ProfileDecode times one more decode step on the GPU, kernel by kernel
// (timestamp queries), after the last generation, undoes it, and puts
// the times in the report; nothing without WebGPU, timestamp-query or a
// generated token.
func (s *Session) ProfileDecode(ctx context.Context) error {
	s.gen.Lock()
	defer s.gen.Unlock()
	if s.runner == nil || len(s.Report().Tokens) == 0 {
		return nil
	}
	s.mu.Lock()
	last := s.lastToken
	s.mu.Unlock()
	ops, err := s.runner.ProfileDecode(ctx, last)
	if errors.Is(err, webgpu.ErrUnsupported) || errors.Is(err, model.ErrContextFull) {
		return nil
	}
	if err != nil {
		s.fail(newError(CodeOf(err), true, "GPU kernel times: %v", err))
		return err
	}
	out := map[string]report.KernelTime{}
	for name, o := range ops {
		out[name] = report.KernelTime{Micros: float64(o.GPU.Nanoseconds()) / 1000, Dispatches: o.Count}
	}
	s.setReport(func(r *report.Report) { r.Metrics.GPUKernels = out })
	return nil
}

// profile is the model's step profile, nil before the model loads.
func (s *Session) profile() *model.StepProfile {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		return nil
	}
	return s.m.Profile
}

// Report is the run report so far (CONTRACTS.md section 4).
func (s *Session) Report() report.Report {
	s.mu.Lock()
	rep := s.rep
	s.mu.Unlock()
	if rep.Backend == "cpu" {
		threads, why := cpu.PoolStatus()
		rep.CPU = &report.CPUPath{Threads: threads, Kernels: cpu.SIMD(), Why: why}
		for _, k := range cpu.Kernels() {
			if k.Type == "threads" {
				rep.CPU.ThreadsGBs, rep.CPU.ThreadsWhy = k.GBs, k.Why
			}
		}
		if t := s.profile().Times(); t != nil {
			st := report.StepTimes(*t)
			rep.CPU.Step = &st
		}
	}
	return rep
}

// Fail records an error of the front end's (publishing the report, say)
// in the report and emits it.
func (s *Session) Fail(code Code, format string, args ...any) {
	s.fail(newError(code, true, format, args...))
}

// Close frees the GPU runner, the device and the model file.
// It waits for the generation running, if any, to end.
func (s *Session) Close() {
	s.batched.Wait()
	s.mu.Lock()
	b := s.batch
	s.batch = nil
	s.mu.Unlock()
	if b != nil {
		b.stop()
		<-b.done
	}
	s.gen.Lock()
	defer s.gen.Unlock()
	s.dropDevice()
	if s.closeModel != nil {
		s.closeModel()
		s.closeModel = nil
	}
}

// GPUBytes is what the session's GPU buffers hold (0 on the CPU path).
func (s *Session) GPUBytes() int64 {
	if s.dev == nil {
		return 0
	}
	return s.dev.Stats().BufferBytes
}

// Precision is the activations' precision: "f32" or "f16".
func (s *Session) Precision() string { return s.precision }

// LoseDevice destroys the GPU device as a driver reset would, for tests
// of what follows; false on the CPU path. Permanent: no new device comes
// back either (webgpu.WithholdAdapters), so the CPU path takes over.
func (s *Session) LoseDevice(permanent bool) bool {
	if s.dev == nil {
		return false
	}
	if permanent {
		webgpu.WithholdAdapters()
	}
	s.dev.Destroy()
	return true
}
