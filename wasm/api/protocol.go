package api

import (
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/report"
)

// The messages from the page to the engine: one JSON object each, told
// apart by Op. ID ties a request to the messages about it (the page
// numbers them from 1; 0 is the engine as a whole).
type In struct {
	Op Op  `json:"op"`
	ID int `json:"id,omitempty"`
	// load
	Model     string `json:"model,omitempty"` // a URL (File, Blob and ArrayBuffer arrive as blob: URLs)
	Name      string `json:"name,omitempty"`  // the model's URL or file name as the app gave it (Model may be a blob: URL)
	Backend   string `json:"backend,omitempty"`
	Precision string `json:"precision,omitempty"`
	// Threads is the CPU path's threads in the browser (its pool; 0: as
	// many as it started with, hardwareConcurrency up to 8).
	Threads int `json:"threads,omitempty"`
	// ReadPhase is the phase of the engine's read of Model: "cache" when
	// the page's side gives a kept file (shim/cache.js), else the fetch.
	ReadPhase string `json:"readPhase,omitempty"`
	// FetchMs is the page's side's download (or cache lookup) before.
	FetchMs float64 `json:"fetchMs,omitempty"`
	// Events asks for every session event as a "session" message (the
	// page's playground shows them all).
	Events bool `json:"events,omitempty"`
	// FetchHere: the engine's side (shim/host.js, never the Host) fetches
	// an http(s) Model itself, through the model cache, and loads it while
	// it downloads, posting the download's progress (phase fetch or cache).
	FetchHere bool `json:"fetchHere,omitempty"`
	// report: time one decode step kernel by kernel first (WebGPU)
	Profile bool `json:"profile,omitempty"`
	// loseDevice: no new device comes back either (the CPU path takes over)
	Permanent bool `json:"permanent,omitempty"`
	// generate: a prompt and options by the JS API's names
	Prompt  *string        `json:"prompt,omitempty"`
	Options map[string]any `json:"options,omitempty"`
	// chat: an OpenAI chat completion request (its options by their
	// OpenAI names, messages, stream)
	Request map[string]any `json:"request,omitempty"`
}

// Op names what a message from the page asks.
type Op string

const (
	OpLoad       Op = "load"       // load Model; answered by progress, then ready or error
	OpGenerate   Op = "generate"   // continue Prompt; token messages, then done or error
	OpChat       Op = "chat"       // a chat completion; chunk messages (or one completion), then done or error
	OpAbort      Op = "abort"      // end request ID early: it ends with an aborted error
	OpFeatures   Op = "features"   // the feature report with the code path; answered by reply
	OpUnload     Op = "unload"     // free the model and the device; answered by reply
	OpLoseDevice Op = "loseDevice" // tests: destroy the GPU device, as a driver reset would; answered by reply
	OpReport     Op = "report"     // the run report (CONTRACTS.md section 4) after the last generation; answered by reply
)

// Out is a message from the engine to the page: Ev says which, and which
// of the other fields are set.
type Out struct {
	Ev Ev  `json:"ev"`
	ID int `json:"id,omitempty"`
	// progress
	Phase  string  `json:"phase,omitempty"`
	Loaded int64   `json:"loaded,omitempty"`
	Total  int64   `json:"total,omitempty"`
	Text   string  `json:"text,omitempty"`
	ETAMs  float64 `json:"etaMs,omitempty"`
	// token: Token is -1 for text released at the end (held back as a
	// possible start of a stop string), which belongs to no token
	Token *int32  `json:"token,omitempty"`
	Index int     `json:"index,omitempty"`
	AtMs  float64 `json:"atMs,omitempty"`
	// chunk, completion
	Chunk      *ChatChunk      `json:"chunk,omitempty"`
	Completion *ChatCompletion `json:"completion,omitempty"`
	// done
	Result *Result `json:"result,omitempty"`
	// ready, stats, telemetry
	Stats *Stats `json:"stats,omitempty"`
	// error
	Code        string `json:"code,omitempty"`
	Message     string `json:"message,omitempty"`
	Recoverable bool   `json:"recoverable,omitempty"`
	// fallback: from, to and why in Text
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// session: one of the session's events (a load with Events)
	Event *SessionEvent `json:"event,omitempty"`
	// reply
	Value any `json:"value,omitempty"`
}

// Ev names a message from the engine.
type Ev string

const (
	EvProgress   Ev = "progress"   // the load ID's progress: Phase, Loaded, Total, Text, ETAMs
	EvReady      Ev = "ready"      // loaded: Stats
	EvToken      Ev = "token"      // request ID's next token: Token, Text, Index, AtMs
	EvChunk      Ev = "chunk"      // request ID's next OpenAI chunk
	EvCompletion Ev = "completion" // request ID's OpenAI completion (stream: false)
	EvDone       Ev = "done"       // request ID ended: Result
	EvError      Ev = "error"      // request ID (or the engine, ID 0) failed: Code, Message, Recoverable
	EvStats      Ev = "stats"      // the stats after a request ended
	EvTelemetry  Ev = "telemetry"  // the stats while generating, at most every 100 ms
	EvFallback   Ev = "fallback"   // generation moved From one backend To another (why in Text)
	EvDeviceLost Ev = "devicelost" // the GPU device was lost (why in Text)
	EvReply      Ev = "reply"      // the answer to request ID: Value
	EvSession    Ev = "session"    // one of the session's events: Event (a load with Events)
)

// Result is how a generation ended.
type Result struct {
	FinishReason string  `json:"finishReason"` // "stop" or "length"
	Usage        Usage   `json:"usage"`
	TTFTMs       float64 `json:"ttftMs"`
	PrefillTokS  float64 `json:"prefillTokS"`
	DecodeTokS   float64 `json:"decodeTokS"`
	ITLMs        ITL     `json:"itlMs"`
}

// Usage counts a generation's tokens.
type Usage struct {
	PromptTokens     int `json:"promptTokens"`
	CompletionTokens int `json:"completionTokens"`
	TotalTokens      int `json:"totalTokens"`
}

// ITL is the distribution of the gaps between tokens, in milliseconds.
type ITL struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

func resultOf(r engine.Result) *Result {
	return &Result{FinishReason: r.Reason,
		Usage:  Usage{PromptTokens: r.PromptTokens, CompletionTokens: r.Tokens, TotalTokens: r.PromptTokens + r.Tokens},
		TTFTMs: r.TTFTMillis, PrefillTokS: r.PrefillTokS, DecodeTokS: r.DecodeTokS,
		ITLMs: ITL{P50: r.ITLMillis.P50, P90: r.ITLMillis.P90, P99: r.ITLMillis.P99}}
}

// Stats are engine.stats() (CONTRACTS.md section 3), less worker and
// wasmHeapBytes, which the page's side of the shim adds.
type Stats struct {
	Backend         string        `json:"backend"` // "webgpu" or "cpu"
	Precision       string        `json:"precision"`
	Why             string        `json:"why"` // why this backend
	Model           string        `json:"model"`
	TTFTMs          float64       `json:"ttftMs"`
	TTFTBreakdownMs TTFTBreakdown `json:"ttftBreakdownMs"`
	PrefillTokS     float64       `json:"prefillTokS"`
	DecodeTokS      float64       `json:"decodeTokS"`
	ITLMs           ITL           `json:"itlMs"`
	BatchSize       int           `json:"batchSize"`               // sequences generating now (in the last step, on the CPU path)
	Waiting         int           `json:"waiting"`                 // requests queued behind them
	Tokens          int           `json:"tokens"`                  // generated so far by the running requests
	KVBytes         int64         `json:"kvBytes"`                 // the KV cache: what the GPU's or the CPU path's caches hold
	KVBudgetBytes   int64         `json:"kvBudgetBytes,omitempty"` // the KV budget (the GPU's: the whole contexts of its sequences)
	GPUBytes        int64         `json:"gpuBytes"`
	// Backends is the session's registry: each backend's health and why.
	Backends []report.Backend `json:"backends"`
	// GenAI is the telemetry over every request so far.
	GenAI GenAI `json:"genAI"`
	// Scheduler is the batching's state, once the scheduler ran.
	Scheduler *SchedulerStats `json:"scheduler,omitempty"`
	// CPU is how the CPU path runs its products, when it is the backend:
	// in a browser, its pool's threads (or why there is none) and each
	// weight type's kernel.
	CPU *report.CPUPath `json:"cpu,omitempty"`
}

// SchedulerStats is the batching scheduler's state: its counters, the
// controller's batch size and prefill chunk now, and its last decisions
// (the batch size and chunk over time).
type SchedulerStats struct {
	Steps     int        `json:"steps"`
	Prefills  int        `json:"prefills"` // steps that read a prompt chunk
	Batch     int        `json:"batch"`
	Chunk     int        `json:"chunk"`
	Decisions []Decision `json:"decisions"`
}

// Decision is one change of the controller: at step Step, after a step of
// Occupied sequences that took LatencyMs, the batch size became Batch and
// the prefill chunk Chunk, for the reason Why.
type Decision struct {
	Step      int     `json:"step"`
	LatencyMs float64 `json:"latencyMs"`
	Batch     int     `json:"batch"`
	Chunk     int     `json:"chunk"`
	Occupied  int     `json:"occupied"`
	Why       string  `json:"why"`
}

// TTFTBreakdown is where the first token's time went: the model's fetch
// (or cache read), the upload of the weights, the kernels' compilation
// (with their self-check), and the last request's prefill.
type TTFTBreakdown struct {
	Fetch   float64 `json:"fetch"`
	Upload  float64 `json:"upload"`
	Compile float64 `json:"compile"`
	Prefill float64 `json:"prefill"`
}
