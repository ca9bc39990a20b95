// webinfer.js: the JS API for web apps (CONTRACTS.md section 3; types in
// webinfer.d.ts). The engine (Go, dist/webinfer.wasm) runs in a dedicated
// Web Worker unless worker: false; the two sides speak the closed message
// set of wasm/api (JSON strings: {op, id, ...} in, {ev, id, ...} out).
// This side keeps no engine state of its own beyond the last stats, so
// that stats() can answer at once.
import { workerURL } from "./assets.js";
import { WebInferError } from "./errors.js";
import * as cache from "./cache.js";
import { remoteTransport } from "./remote.js";
import { loadDownloading } from "./stream.js";

export { WebInferError };

const badOption = (msg) => new WebInferError("bad-option", msg, true);

const BACKENDS = ["auto", "webgpu", "cpu", "remote"];
const PRECISIONS = ["auto", "f32", "f16"];
const CREATE_OPTIONS = ["model", "backend", "remote", "worker", "onProgress", "precision", "cache", "threads"];
const EVENTS = ["telemetry", "fallback", "devicelost", "error"];

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function isSignal(v) {
  return isObject(v) && typeof v.aborted === "boolean" && typeof v.addEventListener === "function";
}

function checkCreateOptions(o) {
  if (!isObject(o)) throw badOption("createEngine: want an options object, such as { model: \"model.gguf\" }");
  for (const k of Object.keys(o)) {
    if (!CREATE_OPTIONS.includes(k)) throw badOption(`${k}: not an option of createEngine; the options are ${CREATE_OPTIONS.join(", ")}`);
  }
  const m = o.model;
  const isBlob = typeof Blob === "function" && m instanceof Blob;
  const remoteOnly = o.backend === "remote" && m === undefined; // the server has its model
  if (!remoteOnly && !(typeof m === "string" && m !== "") && !(m instanceof URL) && !isBlob && !(m instanceof ArrayBuffer) && !ArrayBuffer.isView(m)) {
    throw badOption("model: want a URL (string or URL), a File, a Blob or an ArrayBuffer");
  }
  if (o.backend !== undefined && !BACKENDS.includes(o.backend)) throw badOption(`backend: ${JSON.stringify(o.backend)}: want one of ${BACKENDS.join(", ")}`);
  if (o.remote !== undefined && (typeof o.remote !== "string" || !remoteURL(o.remote))) throw badOption("remote: want the server's WebSocket URL, such as ws://127.0.0.1:8080/v1/stream");
  if (o.backend === "remote" && o.remote === undefined) throw badOption("remote: backend \"remote\" needs the server's URL in remote");
  if (o.precision !== undefined && !PRECISIONS.includes(o.precision)) throw badOption(`precision: ${JSON.stringify(o.precision)}: want one of ${PRECISIONS.join(", ")}`);
  if (o.worker !== undefined && typeof o.worker !== "boolean") throw badOption("worker: want true or false");
  if (o.threads !== undefined && !(Number.isInteger(o.threads) && o.threads >= 1 && o.threads <= 64)) throw badOption("threads: want a whole number from 1 to 64");
  if (o.onProgress !== undefined && typeof o.onProgress !== "function") throw badOption("onProgress: want a function");
  const c = o.cache;
  if (c !== undefined && typeof c !== "boolean" && !(isObject(c) && Object.keys(c).every((k) => k === "maxBytes") && (c.maxBytes === undefined || (typeof c.maxBytes === "number" && c.maxBytes > 0)))) {
    throw badOption("cache: want true (the default), false, or { maxBytes: a number above 0 }");
  }
}

// remoteURL is a remote engine's WebSocket URL (http(s) and relative
// URLs are taken to mean the same server's), or "" for none.
function remoteURL(s) {
  try {
    const u = new URL(s, globalThis.location ? globalThis.location.href : undefined);
    if (u.protocol === "http:") u.protocol = "ws:";
    if (u.protocol === "https:") u.protocol = "wss:";
    return u.protocol === "ws:" || u.protocol === "wss:" ? u.href : "";
  } catch {
    return "";
  }
}

// A transport carries JSON strings to the engine and back.
function workerTransport(onMessage, onFail) {
  const w = new Worker(workerURL, { type: "module" });
  w.onmessage = (e) => onMessage(e.data);
  w.onerror = (e) => {
    e.preventDefault();
    onFail(`the engine's worker failed: ${e.message || "could not load shim/worker.js"}`);
  };
  // part: a growing source's message (host.js), with a Blob: not JSON.
  return { send: (s) => w.postMessage(s), part: (m) => w.postMessage(m), close: () => w.terminate(), worker: true };
}

async function mainThreadTransport(onMessage, onFail) {
  const { startHost } = await import("./host.js");
  const pending = [];
  let host = null;
  startHost((s) => queueMicrotask(() => onMessage(s))).then((h) => {
    host = h;
    for (const s of pending.splice(0)) host.receive(s);
  }, (err) => onFail(`the engine did not start: ${err && err.message ? err.message : err}`));
  return {
    send: (s) => (host ? host.receive(s) : pending.push(s)),
    part: (m) => (host ? host.receive(m) : pending.push(m)),
    close: () => {},
    worker: false,
  };
}

function moduleWorkers() {
  if (typeof Worker !== "function") return false;
  let supported = false;
  try {
    // Reading `type` is how browsers that ignore the option can be told apart.
    new Worker("data:text/javascript,", { get type() { supported = true; return "module"; } }).terminate();
  } catch {
    return false;
  }
  return supported;
}

/**
 * The low level of createEngine, for a front end that speaks the engine's
 * messages itself (the page's playground, dist/app.wasm): starts an engine
 * in a module worker (on this thread with worker: false, or where module
 * workers are missing) and resolves to its port, { send(json), close(),
 * worker }. onMessage gets the engine's messages (JSON strings of wasm/api's
 * Out), onFail a text when the engine cannot start or its worker dies.
 */
export async function connectEngine(onMessage, onFail, { worker = true } = {}) {
  return worker && moduleWorkers() ? workerTransport(onMessage, onFail) : mainThreadTransport(onMessage, onFail);
}

/**
 * Loads a model and returns the engine, once it can generate.
 * Rejects with a WebInferError (bad-option, bad-model, network, ...).
 */
export async function createEngine(options = {}) {
  checkCreateOptions(options);
  const engine = new Engine(options);
  try {
    await engine._start(options.worker !== false && moduleWorkers());
  } catch (err) {
    // auto with a remote configured: the server is the last fallback.
    if ((options.backend || "auto") !== "auto" || !options.remote || err.code === "bad-option") throw err;
    const remote = new Engine({ ...options, backend: "remote" });
    await remote._start(false);
    remote._stats = { ...remote._stats, why: `the local engine failed (${err.code}: ${err.message}); streaming from ${remoteURL(options.remote)}` };
    return remote;
  }
  return engine;
}

/** The feature report of CONTRACTS.md section 4, with the code path the engine will take. */
export async function detectFeatures() {
  const engine = new Engine({});
  await engine._start(moduleWorkers());
  try {
    return await engine._call("features");
  } finally {
    engine._close(null);
  }
}

/** The models kept in this browser's storage: [{ url, bytes, lastUsed }]. */
export async function listCachedModels() {
  return cache.listCached();
}

/** Deletes a kept model (a partial download too); false when there was none. */
export async function deleteCachedModel(url) {
  if (typeof url !== "string" && !(url instanceof URL)) throw badOption("url: want the model's URL");
  return cache.deleteCached(new URL(String(url), globalThis.location ? globalThis.location.href : undefined).href);
}

// Channel is an async iterator fed by pushes: chunks in order, then the
// end or an error.
class Channel {
  constructor(onReturn) {
    this.items = [];
    this.waiting = null;
    this.ended = false;
    this.error = null;
    this.onReturn = onReturn;
  }
  push(v) {
    if (this.ended) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w.resolve({ value: v, done: false });
    } else this.items.push(v);
  }
  end(err) {
    if (this.ended) return;
    this.ended = true;
    this.error = err || null;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      if (err) w.reject(err);
      else w.resolve({ value: undefined, done: true });
    }
  }
  next() {
    if (this.items.length) return Promise.resolve({ value: this.items.shift(), done: false });
    if (this.ended) {
      if (this.error) {
        const e = this.error;
        this.error = null; // thrown once; then the iterator is done
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => { this.waiting = { resolve, reject }; });
  }
  return() {
    // The caller stopped early (break in for await): end the request.
    if (!this.ended) this.onReturn();
    this.ended = true;
    this.items = [];
    return Promise.resolve({ value: undefined, done: true });
  }
  [Symbol.asyncIterator]() {
    return this;
  }
}

class Engine {
  constructor(options) {
    this._options = options;
    this._nextID = 1;
    this._requests = new Map(); // id → handler(message)
    this._listeners = new Map(EVENTS.map((e) => [e, new Set()]));
    this._stats = null;
    this._dead = null; // the WebInferError every call gets once the engine is gone
    this._revoke = () => {};
    this.chat = { completions: { create: (req) => this._create(req) } };
    this.debug = { loseDevice: (opts) => this._call("loseDevice", { permanent: Boolean(opts && opts.permanent) }) };
  }

  async _start(inWorker) {
    const onMessage = (s) => this._onMessage(s);
    const onFail = (msg) => this._close(new WebInferError("internal", msg, false));
    if (this._options.backend === "remote") {
      this._transport = remoteTransport(remoteURL(this._options.remote), onMessage, onFail);
      try {
        const ready = await this._request({ op: "load" }, (m, done, fail) => (m.ev === "ready" ? done(m) : m.ev === "error" && fail(m)));
        this._stats = ready.stats;
      } catch (err) {
        this._close(err);
        throw err;
      }
      return;
    }
    this._transport = inWorker ? workerTransport(onMessage, onFail) : await mainThreadTransport(onMessage, onFail);
    if (this._options.model === undefined) return; // detectFeatures: no model
    const onProgress = (p) => {
      if (!this._options.onProgress) return;
      try {
        this._options.onProgress({ phase: p.phase, loaded: p.loaded || 0, total: p.total || 0, text: p.text || "", etaMs: p.etaMs || 0 });
      } catch (err) {
        console.error("webinfer: onProgress threw", err);
      }
    };
    const m = this._options.model;
    const name = typeof m === "string" || m instanceof URL ? String(m) : (m && m.name) || "";
    const load = (url, readPhase, fetchMs) => this._request({ op: "load", model: url, name, backend: this._options.backend || "auto", precision: this._options.precision || "",
      threads: this._options.threads || 0, readPhase, fetchMs }, (m, done, fail) => {
      if (m.ev === "progress") onProgress(m);
      else if (m.ev === "ready") done(m);
      else if (m.ev === "error") fail(m);
    });
    try {
      let ready;
      const url = typeof m === "string" || m instanceof URL ? new URL(String(m), globalThis.location ? globalThis.location.href : undefined).href : "";
      if (/^https?:/.test(url)) {
        ready = await loadDownloading(url, { cacheOption: this._options.cache, progress: onProgress, sendPart: (p) => this._transport.part(p), load });
      } else if (url) {
        ready = await load(url, "", 0); // another scheme: the engine reads it itself
      } else {
        // Bytes given: the engine reads them lazily from their Blob.
        const blobURL = URL.createObjectURL(typeof Blob === "function" && m instanceof Blob ? m : new Blob([m]));
        this._revoke = () => URL.revokeObjectURL(blobURL);
        ready = await load(blobURL, "", 0);
      }
      this._stats = ready.stats;
    } catch (err) {
      this._close(err);
      throw err;
    }
  }

  _onMessage(s) {
    let m;
    try {
      m = JSON.parse(s);
    } catch {
      return;
    }
    if (m.stats) this._stats = m.stats;
    if (m.id && this._requests.has(m.id)) {
      this._requests.get(m.id)(m);
      return;
    }
    switch (m.ev) {
      case "progress": // a load's, handled by its request
        return;
      case "telemetry":
        return this._emit("telemetry", this.stats());
      case "fallback":
        return this._emit("fallback", { from: m.from, to: m.to, reason: m.text || "" });
      case "devicelost":
        return this._emit("devicelost", { reason: m.text || "" });
      case "error": {
        const err = new WebInferError(m.code, m.message, Boolean(m.recoverable));
        if (!m.recoverable) this._close(err); // the engine itself is gone
        return this._emit("error", err);
      }
    }
  }

  _emit(event, value) {
    for (const fn of this._listeners.get(event)) {
      try {
        fn(value);
      } catch (err) {
        console.error(`webinfer: a ${event} listener threw`, err);
      }
    }
  }

  // _request sends msg with a fresh id and returns a promise settled by
  // handler(message, done, fail) as the engine's messages for it arrive.
  _request(msg, handler) {
    if (this._dead) return Promise.reject(this._dead);
    const id = this._nextID++;
    return new Promise((resolve, reject) => {
      const settle = () => this._requests.delete(id);
      const done = (v) => { settle(); resolve(v); };
      const fail = (m) => { settle(); reject(m instanceof Error ? m : new WebInferError(m.code, m.message, Boolean(m.recoverable))); };
      this._requests.set(id, (m) => (m === null ? fail(this._dead) : handler(m, done, fail, id)));
      this._transport.send(JSON.stringify({ ...msg, id }));
    });
  }

  // _call is a request answered by one reply.
  _call(op, fields = {}) {
    return this._request({ op, ...fields }, (m, done, fail) => (m.ev === "reply" ? done(m.value) : m.ev === "error" && fail(m)));
  }

  // _stream starts a request whose messages feed a Channel through
  // onMessage(m, channel); abort and an early return send abort.
  _stream(msg, signal, onMessage) {
    if (signal !== undefined && !isSignal(signal)) throw badOption("signal: want an AbortSignal");
    let id = 0;
    const abort = () => id && this._transport.send(JSON.stringify({ op: "abort", id }));
    const ch = new Channel(abort);
    if (signal && signal.aborted) {
      ch.end(new WebInferError("aborted", "aborted before it began", true));
      return ch;
    }
    const onAbort = () => {
      abort();
      ch.end(new WebInferError("aborted", "aborted", true)); // at once: no token after the abort is given
    };
    if (signal) signal.addEventListener("abort", onAbort, { once: true });
    const finished = this._request(msg, (m, done, fail, rid) => {
      id = rid;
      if (m.ev === "error") fail(m);
      else if (onMessage(m, ch) === "end") done(m);
    });
    id = this._nextID - 1; // the id _request gave (it sends synchronously)
    finished.then(() => ch.end(), (err) => ch.end(err)).finally(() => signal && signal.removeEventListener("abort", onAbort));
    return ch;
  }

  /**
   * Continues prompt: an async iterator of one chunk per token
   * ({ token, text, index, atMs }); `.result` settles with how it ended.
   */
  generate(prompt, options = {}) {
    if (typeof prompt !== "string") throw badOption("prompt: want a string");
    if (!isObject(options)) throw badOption("options: want an object, such as { maxTokens: 64 }");
    const { signal, ...rest } = options;
    let resolveResult, rejectResult;
    const result = new Promise((res, rej) => { resolveResult = res; rejectResult = rej; });
    result.catch(() => {}); // the iterator throws the same error
    const ch = this._stream({ op: "generate", prompt, options: rest }, signal, (m, c) => {
      if (m.ev === "token") c.push({ token: m.token, text: m.text || "", index: m.index || 0, atMs: m.atMs || 0 });
      else if (m.ev === "done") {
        resolveResult(m.result);
        return "end";
      }
    });
    const end = ch.end.bind(ch);
    ch.end = (err) => {
      if (err) rejectResult(err);
      end(err);
    };
    ch.result = result;
    return ch;
  }

  // _create is chat.completions.create: with stream: true a promise of an
  // async iterator of chunks (settled when the first arrives, so a bad
  // request rejects here), else a promise of one completion.
  _create(req) {
    if (!isObject(req)) return Promise.reject(badOption("create: want a request object, such as { messages: [...] }"));
    const { signal, ...rest } = req;
    if (rest.stream) {
      let ch;
      try {
        ch = this._stream({ op: "chat", request: rest }, signal, (m, c) => {
          if (m.ev === "chunk") c.push(m.chunk);
          else if (m.ev === "done") return "end";
        });
      } catch (err) {
        return Promise.reject(err);
      }
      return ch.next().then((first) => {
        const rest = ch;
        let head = first.done ? null : first.value;
        return {
          [Symbol.asyncIterator]() { return this; },
          next() {
            if (head) {
              const v = head;
              head = null;
              return Promise.resolve({ value: v, done: false });
            }
            return rest.next();
          },
          return() { return rest.return(); },
        };
      });
    }
    let completion = null;
    let ch;
    try {
      ch = this._stream({ op: "chat", request: rest }, signal, (m) => {
        if (m.ev === "completion") completion = m.completion;
        else if (m.ev === "done") return "end";
      });
    } catch (err) {
      return Promise.reject(err);
    }
    return ch.next().then(() => completion);
  }

  /** The engine's state now (CONTRACTS.md section 3). */
  stats() {
    const s = this._stats || {};
    return { ...s, worker: Boolean(this._transport && this._transport.worker), wasmHeapBytes: s.wasmHeapBytes || 0 };
  }

  /** Calls fn on each telemetry, fallback, devicelost or error event; returns a function that stops it. */
  on(event, fn) {
    if (!EVENTS.includes(event)) throw badOption(`event: ${JSON.stringify(event)}: want one of ${EVENTS.join(", ")}`);
    if (typeof fn !== "function") throw badOption("listener: want a function");
    this._listeners.get(event).add(fn);
    return () => this._listeners.get(event).delete(fn);
  }

  /** Ends every request, frees the model and the GPU, and ends the worker. */
  async unload() {
    if (this._dead) return;
    try {
      await this._call("unload");
    } finally {
      this._close(new WebInferError("aborted", "the engine was unloaded", false));
    }
  }

  // _close ends the engine: every pending request fails with err.
  _close(err) {
    if (this._dead) return;
    this._dead = err || new WebInferError("aborted", "the engine was closed", false);
    for (const h of [...this._requests.values()]) h(null);
    this._requests.clear();
    if (this._transport) this._transport.close();
    this._revoke();
  }
}
