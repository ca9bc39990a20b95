// cache.js: the model cache of the JS API. A model fetched by URL is kept
// in the browser's origin private file system (OPFS), keyed by its URL,
// with a record of its size and validator (ETag or Last-Modified):
//   - a second load reads the kept file, with no network request;
//   - a download that breaks goes on with an HTTP Range request from the
//     byte it reached (If-Range: the validator, so a changed file starts
//     over), in the same load and in a later one;
//   - navigator.storage.estimate() is asked before a download, and the
//     least recently used models are evicted when the new one would not
//     fit; a model that cannot fit at all is a clear error.
// Where OPFS (or writable files in it) is missing, nothing is kept and the
// engine fetches the URL itself.
import { WebInferError } from "./errors.js";

const DIR = "webinfer-models";
const RETRIES = 5; // requests again after a broken download, in one load

export function cacheSupported() {
  return Boolean(globalThis.navigator && navigator.storage && navigator.storage.getDirectory &&
    globalThis.FileSystemFileHandle && "createWritable" in FileSystemFileHandle.prototype);
}

async function dir() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(DIR, { create: true });
}

// key is the file name of a URL's entry: a hash, since URLs are long and
// hold characters file names cannot.
async function key(url) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(url));
  return Array.from(new Uint8Array(digest).slice(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readMeta(d, k) {
  try {
    const f = await (await d.getFileHandle(`${k}.json`)).getFile();
    return JSON.parse(await f.text());
  } catch {
    return null;
  }
}

async function writeMeta(d, k, meta) {
  const w = await (await d.getFileHandle(`${k}.json`, { create: true })).createWritable();
  await w.write(JSON.stringify(meta));
  await w.close();
}

async function remove(d, k) {
  for (const name of [`${k}.json`, `${k}.gguf`]) {
    try {
      await d.removeEntry(name);
    } catch {}
  }
}

async function entries(d) {
  const out = [];
  for await (const [name] of d.entries()) {
    if (!name.endsWith(".json")) continue;
    const k = name.slice(0, -5);
    const meta = await readMeta(d, k);
    if (meta) out.push({ k, meta });
  }
  return out;
}

/** The complete models kept: [{ url, bytes, lastUsed }]. */
export async function listCached() {
  if (!cacheSupported()) return [];
  const d = await dir();
  return (await entries(d)).filter((e) => e.meta.complete).map((e) => ({ url: e.meta.url, bytes: e.meta.bytes, lastUsed: e.meta.lastUsed }));
}

/** Deletes url's entry (complete or partial); false when there was none. */
export async function deleteCached(url) {
  if (!cacheSupported()) return false;
  const d = await dir();
  const k = await key(url);
  const had = (await readMeta(d, k)) !== null;
  await remove(d, k);
  return had;
}

// makeRoom evicts the least recently used complete models (never url's
// own entry) until need more bytes fit under the quota and maxBytes; when
// they could not fit even with every other model evicted, it evicts
// nothing and says so.
async function makeRoom(d, k, need, maxBytes) {
  const est = navigator.storage.estimate ? await navigator.storage.estimate() : { quota: Infinity, usage: 0 };
  const others = (await entries(d)).filter((e) => e.k !== k);
  const size = (e) => e.meta.have || 0;
  const kept = others.reduce((n, e) => n + size(e), 0);
  const evictable = others.filter((e) => e.meta.complete).sort((a, b) => a.meta.lastUsed - b.meta.lastUsed);
  const freed = evictable.reduce((n, e) => n + size(e), 0);
  const freeWith = (released) => Math.min((est.quota || Infinity) - (est.usage || 0) + released, maxBytes - kept + released);
  if (need > freeWith(freed)) {
    throw new WebInferError("out-of-memory", `model: ${need} bytes do not fit the storage this site may use (${Math.max(0, Math.floor(freeWith(freed)))} bytes with every other model evicted); nothing was evicted`, true);
  }
  const evicted = [];
  let released = 0;
  for (const e of evictable) {
    if (need <= freeWith(released)) break;
    await remove(d, e.k);
    evicted.push(e.meta.url);
    released += size(e);
  }
  return evicted;
}

/** forget drops url's entry after its file proved no model (bad-model). */
export async function forget(url) {
  try {
    await deleteCached(url);
  } catch {}
}

function validatorOf(resp) {
  return resp.headers.get("ETag") || resp.headers.get("Last-Modified") || "";
}

// memorySink keeps a download in memory, for browsers without OPFS.
function memorySink() {
  let parts = [];
  return {
    async begin(from) {
      if (from === 0) parts = [];
    },
    async write(chunk) {
      parts.push(chunk);
    },
    async end() {},
    async file() {
      return new Blob(parts);
    },
    async prefix(n) {
      return new Blob(parts).slice(0, n);
    },
  };
}

// fileSink writes a download into an OPFS file, from byte `from` on.
function fileSink(fh) {
  let w = null;
  return {
    async begin(from) {
      w = await fh.createWritable({ keepExistingData: from > 0 });
      if (from > 0) await w.seek(from);
      else await w.truncate(0);
    },
    async write(chunk) {
      await w.write(chunk);
    },
    async end() {
      await w.close();
    },
    async file() {
      return fh.getFile();
    },
    async prefix(n) {
      return (await fh.getFile()).slice(0, n);
    },
  };
}

// download fetches url into sink, going on with a Range request (If-Range:
// the validator) from the bytes it has whenever the connection breaks, up
// to RETRIES times. state is { have, total, validator } (have > 0: a
// partial download to go on with); onStart(state) runs when a download
// starts from byte 0 (the cache makes room there); onBytes(state) after
// each write. tap, when given, sees the bytes as they arrive (the engine
// reads the model while it downloads): tap.start(total, prefix) once the
// size is known (prefix: a Blob of the bytes kept from before), then
// tap.write(offset, chunk) for each chunk. It returns whether the
// download completed.
async function download(url, sink, state, { onStart, onBytes, progress, signal, tap }) {
  const start = performance.now();
  let startHave = state.have;
  let broken = null;
  for (let attempt = 0; attempt <= RETRIES; attempt++) {
    const headers = {};
    if (state.have > 0 && state.validator) {
      headers.Range = `bytes=${state.have}-`;
      headers["If-Range"] = state.validator;
    }
    let resp;
    try {
      resp = await fetch(url, { headers, signal, cache: "no-store" });
    } catch (err) {
      if (signal && signal.aborted) throw new WebInferError("aborted", "model: the download was aborted", true);
      broken = err;
      await new Promise((r) => setTimeout(r, 100 * (attempt + 1))); // a broken connection: again, a little later
      continue;
    }
    if (!resp.ok) throw new WebInferError("network", `model ${url}: HTTP ${resp.status}`, true);
    const partial = resp.status === 206;
    const length = Number(resp.headers.get("Content-Length") || 0);
    if (!partial) {
      Object.assign(state, { have: 0, total: length, validator: validatorOf(resp) });
      startHave = 0;
      if (onStart) await onStart(state);
    }
    await sink.begin(state.have);
    if (tap && !tap.started && state.total > 0) {
      tap.started = true;
      tap.start(state.total, state.have > 0 ? await sink.prefix(state.have) : null);
    }
    const reader = resp.body.getReader();
    broken = null;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (tap && tap.started) tap.write(state.have, value);
        await sink.write(value);
        state.have += value.byteLength;
        const rate = (state.have - startHave) / Math.max(1, performance.now() - start);
        progress({ phase: "fetch", loaded: state.have, total: state.total, etaMs: state.total > state.have && rate > 0 ? (state.total - state.have) / rate : 0 });
      }
    } catch (err) {
      broken = err;
    }
    await sink.end();
    if (onBytes) await onBytes(state);
    if (!broken && (state.total === 0 || state.have === state.total)) return true;
    if (signal && signal.aborted) throw new WebInferError("aborted", "model: the download was aborted", true);
  }
  throw new WebInferError("network", `model ${url}: the download broke at byte ${state.have} of ${state.total} (${broken && broken.message ? broken.message : "cut short"}) ${RETRIES + 1} times`, true);
}

/** fetchBlob downloads url into memory (a Blob), resuming a broken download, keeping nothing. */
export async function fetchBlob(url, { progress = () => {}, signal, tap } = {}) {
  const sink = memorySink();
  await download(url, sink, { have: 0, total: 0, validator: "" }, { progress, signal, tap });
  return sink.file();
}

/**
 * open returns a File (or Blob) of url's model, from the cache or
 * downloaded (into the cache where there is one): { file, fromCache,
 * evicted }. progress({ phase, loaded, total, etaMs }).
 */
export async function open(url, { progress = () => {}, maxBytes = Infinity, signal, tap } = {}) {
  if (!cacheSupported()) return { file: await fetchBlob(url, { progress, signal, tap }), fromCache: false, evicted: [] };
  const d = await dir();
  const k = await key(url);
  let meta = await readMeta(d, k);
  const fh = await d.getFileHandle(`${k}.gguf`, { create: true });
  if (meta && meta.complete) {
    const file = await fh.getFile();
    if (file.size === meta.bytes) {
      meta.lastUsed = Date.now();
      await writeMeta(d, k, meta);
      progress({ phase: "cache", loaded: file.size, total: file.size, etaMs: 0 });
      return { file, fromCache: true, evicted: [] };
    }
    meta = null; // the kept file is not what was recorded: fetch it again
  }
  // A partial download kept from before goes on from where it stopped.
  const onDisk = meta ? (await fh.getFile()).size : 0;
  const state = meta ? { have: Math.min(onDisk, meta.have || 0), total: meta.bytes, validator: meta.validator } : { have: 0, total: 0, validator: "" };
  let evicted = [];
  const record = async (complete) => {
    meta = { url, bytes: state.total, have: state.have, validator: state.validator, complete, lastUsed: Date.now() };
    await writeMeta(d, k, meta);
  };
  await download(url, fileSink(fh), state, {
    progress,
    signal,
    tap,
    onStart: async (st) => {
      if (st.total > 0) evicted = evicted.concat(await makeRoom(d, k, st.total, maxBytes));
      await record(false);
    },
    onBytes: () => record(false),
  });
  if (state.total === 0) state.total = state.have;
  await record(true);
  return { file: await fh.getFile(), fromCache: false, evicted };
}
