// webinfer.d.ts: the types of shim/webinfer.js (CONTRACTS.md section 3).

/** Every error of this API. */
export class WebInferError extends Error {
  readonly name: "WebInferError";
  readonly code: ErrorCode;
  /** True when the engine is still usable after it. */
  readonly recoverable: boolean;
  constructor(code: ErrorCode, message: string, recoverable?: boolean);
}

export type ErrorCode =
  | "webgpu-unavailable"
  | "out-of-memory"
  | "device-lost"
  | "bad-model"
  | "bad-option"
  | "context-full"
  | "aborted"
  | "network"
  | "remote"
  /** A failure of the engine itself (its worker stopped, say). */
  | "internal";

export type Backend = "auto" | "webgpu" | "cpu" | "remote";

export interface Progress {
  phase: "fetch" | "cache" | "upload" | "compile" | "ready";
  /** Bytes so far (fetch), else 0. */
  loaded: number;
  /** Bytes in all (fetch; 0 when unknown), else 0. */
  total: number;
  text: string;
  /** Estimated milliseconds left of the fetch; 0 when unknown. */
  etaMs: number;
}

export interface CreateEngineOptions {
  /** A URL (resolved against the page), a File, a Blob or an ArrayBuffer (or a view of one); not needed with backend "remote" (the server has its model). */
  model?: string | URL | Blob | ArrayBuffer | ArrayBufferView;
  /** Default "auto": WebGPU where it is there and faster here, else the CPU path, and with remote set the server when the local engine fails. "remote": the server only. */
  backend?: Backend;
  /** The server's WebSocket URL (webinfer serve's /v1/stream; http(s) and relative URLs mean the same server's). */
  remote?: string;
  /** Default true: the engine runs in a dedicated Web Worker. */
  worker?: boolean;
  /** Default "auto": f16 activations where the adapter has shader-f16 and it is chosen. */
  precision?: "auto" | "f32" | "f16";
  /** The CPU path's threads (its pool of workers, this one included): default measured at load (the fewest of 1 … navigator.hardwareConcurrency, at most 8, within 5% of the fastest); more than the pool started with is the pool's size. */
  threads?: number;
  onProgress?: (p: Progress) => void;
  /**
   * Default true: a model fetched by URL is kept in the browser (OPFS) and
   * read from there next time; a broken download goes on where it stopped;
   * the least recently used models are evicted to make room. maxBytes bounds
   * what all kept models may take. false: nothing is kept.
   */
  cache?: boolean | { maxBytes?: number };
}

/** The options of generate; each is checked, and a wrong one is a bad-option error naming it. */
export interface GenerateOptions {
  /** 1 to 4096; default 256. */
  maxTokens?: number;
  /** 0 (greedy) to 2; default 0.8. */
  temperature?: number;
  /** 0 (off) to 1000; default 40. */
  topK?: number;
  /** Above 0, at most 1 (off); default 0.95. */
  topP?: number;
  /** 0 (off) to 1; default 0.05. */
  minP?: number;
  repeatPenalty?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** The same seed, prompt and model give the same tokens. */
  seed?: number;
  /** Generation ends before any of these; they are never emitted. */
  stop?: string | string[];
  signal?: AbortSignal;
}

export interface TokenChunk {
  /** The token id; -1 for text released at the end that belongs to no token (held back as a possible start of a stop string). */
  token: number;
  /** The text this token completed (UTF-8 safe: empty while a character is incomplete). */
  text: string;
  /** Counts the generated tokens from 0. */
  index: number;
  /** Milliseconds since the request was made. */
  atMs: number;
}

export interface ITL {
  p50: number;
  p90: number;
  p99: number;
}

export interface GenerateResult {
  finishReason: "stop" | "length";
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
  ttftMs: number;
  prefillTokS: number;
  decodeTokS: number;
  itlMs: ITL;
}

export interface TokenStream extends AsyncIterable<TokenChunk>, AsyncIterator<TokenChunk> {
  /** How the generation ended; rejects with the iterator's error. */
  readonly result: Promise<GenerateResult>;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatCompletionRequest {
  messages: ChatMessage[];
  stream?: boolean;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repeat_penalty?: number;
  frequency_penalty?: number;
  presence_penalty?: number;
  seed?: number;
  stop?: string | string[];
  signal?: AbortSignal;
  /** Accepted and ignored (the engine has one model). */
  model?: string;
  /** Only 1. */
  n?: number;
  stream_options?: unknown;
  user?: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: { index: number; delta: { role?: "assistant"; content?: string }; finish_reason: "stop" | "length" | null }[];
  /** On the last chunk only. */
  usage?: Usage;
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: { index: number; message: { role: "assistant"; content: string }; finish_reason: "stop" | "length" }[];
  usage: Usage;
}

export interface Stats {
  backend: "webgpu" | "cpu" | "remote" | "";
  precision: string;
  /** Why this backend. */
  why: string;
  model: string;
  /** True when the engine runs in a Web Worker. */
  worker: boolean;
  ttftMs: number;
  ttftBreakdownMs: { fetch: number; upload: number; compile: number; prefill: number };
  prefillTokS: number;
  decodeTokS: number;
  itlMs: ITL;
  /** Sequences generating now. */
  batchSize: number;
  /** Requests waiting for their turn. */
  waiting: number;
  /** Tokens generated so far by the running requests. */
  tokens: number;
  /** The KV cache's memory: the GPU's, or what the CPU path's caches hold. */
  kvBytes: number;
  /** The KV memory budget, once a generation ran (requests beyond it wait; on WebGPU the whole contexts of the runner's sequences). */
  kvBudgetBytes?: number;
  /**
   * The batching scheduler, once it ran: steps, those that read a prompt chunk, the
   * controller's batch size and prefill chunk now, and its last 32 decisions (the
   * batch size and chunk over time).
   */
  scheduler?: {
    steps: number;
    prefills: number;
    batch: number;
    chunk: number;
    decisions: { step: number; latencyMs: number; batch: number; chunk: number; occupied: number; why: string }[];
  };
  /**
   * The CPU path, when it is the backend: its thread pool's threads (0: none
   * started, and why says why: a page without cross-origin isolation, no WASM
   * SIMD) and each weight type's kernel ("Q8_0:wasm-simd128 ...").
   */
  cpu?: {
    threads: number;
    kernels: string;
    why?: string;
    /** One token's product on each thread count of the pool (GB/s), timed at load to choose the count (the fewest within 5% of the fastest). */
    threads_gb_s?: Record<string, number>;
    /** What chose the thread count when it was not measured: "the threads option". */
    threads_why?: string;
    /** Where a CPU decode token's time went: mean ms per phase (embed, norm, products, rope_kv, attention, ffn_act, residual, logits, and pass: the whole forward pass) and the layer products' GB/s. */
    step_ms?: {
      passes: number; tokens: number; ms_per_token: Record<string, number>; product_gb_s: number;
      /** Per batch size ("1" to "8", "8" counting larger ones too): "passes", and the mean ms a pass of "pass" and each phase. */
      by_batch?: Record<string, Record<string, number>>;
    };
  };
  gpuBytes: number;
  wasmHeapBytes: number;
  /**
   * Telemetry over every request so far, by the OpenTelemetry GenAI names (seconds, tokens);
   * the distributions over the last 4096 requests or inter-token gaps.
   */
  genAI: {
    "gen_ai.server.request.count": number;
    "gen_ai.client.token.usage.input": number;
    "gen_ai.client.token.usage.output": number;
    "gen_ai.server.time_to_first_token": Quantiles;
    "gen_ai.server.time_per_output_token": Quantiles;
    "gen_ai.server.request.duration": Quantiles;
  };
  /** Every backend and its health: unavailable, starting, ready, idle (not initialised, or measured slower), failed, lost. */
  backends: { name: "webgpu" | "cpu" | "remote"; health: "unavailable" | "starting" | "ready" | "idle" | "failed" | "lost"; why: string }[];
}

export interface Quantiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface EngineEvents {
  telemetry: Stats;
  fallback: { from: string; to: string; reason: string };
  devicelost: { reason: string };
  error: WebInferError;
}

export interface Engine {
  generate(prompt: string, options?: GenerateOptions): TokenStream;
  chat: {
    completions: {
      create(req: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
      create(req: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
    };
  };
  stats(): Stats;
  /** Returns a function that removes the listener. */
  on<E extends keyof EngineEvents>(event: E, fn: (value: EngineEvents[E]) => void): () => void;
  debug: {
    /**
     * For tests: destroys the GPU device as a driver reset would; false on the CPU path.
     * permanent: the browser gives no new device either (in this engine's scope), so the
     * CPU path takes over, with a fallback event.
     */
    loseDevice(options?: { permanent?: boolean }): Promise<boolean>;
  };
  unload(): Promise<void>;
}

export interface FeatureReport {
  userAgent: string;
  webgpu: { present: boolean; adapter: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter: boolean } | null; features?: string[]; limits?: Record<string, number>; wgslLanguageFeatures?: string[]; error?: string };
  wasm: { present: boolean; simd: boolean; relaxedSimd: boolean; threads: boolean; memory64: boolean; jspi: boolean };
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  deviceMemoryGiB: number;
  /** opfs: the origin private file system with writable files, where models are kept. */
  storage: { quota: number; usage: number; opfs: boolean };
  workerWebGPU: { worker: boolean; webgpu: boolean; adapter: boolean };
  /** The code path the engine takes here. */
  path: { backend: "webgpu" | "cpu"; precision: string; why: string };
}

export interface CachedModel {
  url: string;
  bytes: number;
  lastUsed: number;
}

export function createEngine(options: CreateEngineOptions): Promise<Engine>;
export function detectFeatures(): Promise<FeatureReport>;
export function listCachedModels(): Promise<CachedModel[]>;
export function deleteCachedModel(url: string): Promise<boolean>;

/** The engine's port: JSON strings of the engine's messages (wasm/api In) in. */
export interface EnginePort {
  send(json: string): void;
  close(): void;
  worker: boolean;
}
/**
 * The low level of createEngine, for a front end that speaks the engine's
 * messages (wasm/api In and Out, JSON) itself, as the page's playground does.
 */
export function connectEngine(onMessage: (json: string) => void, onFail: (message: string) => void, options?: { worker?: boolean }): Promise<EnginePort>;
