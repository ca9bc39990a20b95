// host.js: starts the engine (dist/webinfer.wasm, Go: wasm/apihost) in this
// scope, a Web Worker or the page, and returns its side of the port: the
// page's messages go in through receive (JSON strings), the engine's come
// out through the post callback given (JSON strings). Messages carrying
// stats get the WASM memory's size added here, where the memory is.
import "./gpu.js";
import "./features.js";
import { wasmURL, wasmExecURL } from "./assets.js";
import { loadDownloading } from "./stream.js";
import { startCPUPool } from "./cpupool.js";

let ports = 0;

// Growing sources: a model still downloading on the page's side, which
// the engine reads as it arrives (progressive loading). The page sends
// its bytes as Blob parts, in order from byte 0; the engine opens
// "webinfer-growing:NAME" and reads it as a Blob (size, slice(a, b)
// .arrayBuffer()) or with readAtLeast, each read waiting until the
// download has reached what it needs. When the download completes the source reads the kept file and the
// parts are dropped; when it fails, every read waiting and to come fails.
function growingSource(total) {
  const src = { size: total, parts: [], loaded: 0, file: null, error: null, waiters: [] };
  const wake = () => {
    for (const w of src.waiters.splice(0)) w();
  };
  const until = (end) => new Promise((resolve, reject) => {
    const check = () => {
      if (src.error) reject(src.error);
      else if (src.file || src.loaded >= end) resolve();
      else src.waiters.push(check);
    };
    check();
  });
  const read = async (a, b) => {
    await until(b);
    if (src.file) return src.file.slice(a, b).arrayBuffer();
    const pieces = [];
    for (const p of src.parts) {
      const end = p.offset + p.blob.size;
      if (end > a && p.offset < b) pieces.push(p.blob.slice(Math.max(0, a - p.offset), Math.min(p.blob.size, b - p.offset)));
    }
    return new Blob(pieces).arrayBuffer();
  };
  src.slice = (a, b) => ({ arrayBuffer: () => read(a, Math.min(b, total)) });
  // readAtLeast reads [a, b) as far as it has arrived, once [a, need) has.
  src.readAtLeast = async (a, b, need) => {
    await until(need);
    return read(a, src.file ? b : Math.min(b, Math.max(need, src.loaded)));
  };
  src.add = (offset, blob) => {
    if (offset !== src.loaded) {
      src.error = new Error(`the model's download went back to byte ${offset} after ${src.loaded} (the file changed on the server)`);
    } else {
      src.parts.push({ offset, blob });
      src.loaded += blob.size;
    }
    wake();
  };
  src.finish = (file) => {
    if (file.size !== total) src.error = new Error(`the model's download ended at ${file.size} bytes of ${total}`);
    src.file = file;
    src.parts = [];
    wake();
  };
  src.fail = (message) => {
    src.error = new Error(message);
    wake();
  };
  return src;
}

// part takes a message about a growing source: { growing: NAME, total }
// makes it; { growing, offset, blob } adds bytes; { growing, file } ends
// it; { growing, error } fails it; { growing, drop: true } forgets it.
function part(m) {
  const name = `webinfer-growing:${m.growing}`;
  if (m.total !== undefined) {
    globalThis[name] = growingSource(m.total);
    return;
  }
  const src = globalThis[name];
  if (!src) return;
  if (m.blob) src.add(m.offset, m.blob);
  else if (m.file) src.finish(m.file);
  else if (m.error) src.fail(m.error);
  else if (m.drop) delete globalThis[name];
}

async function instantiate(url, imports) {
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status} (run \`make build\`)`);
  if (WebAssembly.instantiateStreaming && (resp.headers.get("content-type") || "").startsWith("application/wasm")) {
    return WebAssembly.instantiateStreaming(resp, imports);
  }
  return WebAssembly.instantiate(await resp.arrayBuffer(), imports);
}

// withMemory adds stats.wasmHeapBytes to a message that carries stats.
function withMemory(msg, memory) {
  if (!/^\{"ev":"(stats|telemetry|ready|done|fallback)"/.test(msg)) return msg;
  const o = JSON.parse(msg);
  if (o.stats) o.stats.wasmHeapBytes = memory.buffer.byteLength;
  return JSON.stringify(o);
}

export async function startHost(post) {
  if (typeof globalThis.Go !== "function") await import(wasmExecURL);
  const name = `__webinferPort${++ports}`;
  let memory = null;
  let started;
  const ready = new Promise((resolve) => { started = resolve; });
  let watch = null; // sees the engine's messages (loadHere's ends)
  const port = {
    post: (msg) => {
      if (watch) watch(msg);
      post(memory ? withMemory(msg, memory) : msg);
    },
    ready: () => started(),
  };
  globalThis[name] = port;
  const go = new Go();
  go.argv = ["webinfer", name];
  // The CPU path's thread pool starts while the engine downloads; the
  // engine reads its face (or why there is none) as it starts.
  const pool = startCPUPool();
  const { instance } = await instantiate(wasmURL, go.importObject);
  memory = instance.exports.mem;
  globalThis.__webinferCPU = (await pool).attach(memory);
  const exited = go.run(instance);
  await Promise.race([ready, exited.then(() => { throw new Error("the engine exited as it started"); })]);
  exited.then(() => post(JSON.stringify({ ev: "error", code: "internal", message: "the engine stopped (see the console)" })));
  // A load with fetchHere (the page's playground): the model is fetched in
  // this scope, through the cache, and loaded while it downloads
  // (stream.js's loadDownloading, as the JS API does on the page's side).
  const ends = new Map(); // load id → settle(msg), for the loads fetched here
  watch = (msg) => {
    if (ends.size && (msg.startsWith('{"ev":"ready"') || msg.startsWith('{"ev":"error"'))) {
      const o = JSON.parse(msg);
      const end = ends.get(o.id);
      if (end) end(o);
    }
  };
  const loadHere = async (m) => {
    let told = false; // the load's error was posted
    const fail = (err) => {
      if (told) return;
      told = true;
      post(JSON.stringify({ ev: "error", id: m.id, code: err.code || "network", message: err.message || String(err) }));
    };
    const load = (model, readPhase, fetchMs) => {
      const done = new Promise((resolve, reject) => ends.set(m.id, (o) => (ends.delete(m.id), o.ev === "ready" ? resolve(o) : reject(o))));
      port.receive(JSON.stringify({ ...m, fetchHere: undefined, model, readPhase, fetchMs }));
      return done;
    };
    try {
      await loadDownloading(new URL(m.model, globalThis.location ? globalThis.location.href : undefined).href, {
        progress: (p) => post(JSON.stringify({ ev: "progress", id: m.id, phase: p.phase, loaded: p.loaded, total: p.total, etaMs: p.etaMs, text: p.text })),
        sendPart: part,
        load,
        // The download's error is the load's answer, posted before the
        // engine's that follows (the page takes the first).
        beforeFail: fail,
      });
    } catch (err) {
      if (err.ev !== "error") fail(err); // the engine's own error was posted already
    }
  };
  const receive = (msg) => {
    if (msg.startsWith('{"op":"load"') && msg.includes('"fetchHere":true')) {
      const m = JSON.parse(msg);
      if (/^https?:/.test(new URL(m.model, globalThis.location ? globalThis.location.href : undefined).href)) return void loadHere(m);
    }
    port.receive(msg);
  };
  return { receive: (msg) => (typeof msg === "string" ? receive(msg) : part(msg)) };
}
