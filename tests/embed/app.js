// app.js: the cases the browser tests check (tests/browser/embed_test.go),
// run through the JS API exactly as an app would use it. Each case puts
// what it saw into `out`; the Go test compares it with the native engine.
import { createEngine, detectFeatures, listCachedModels, deleteCachedModel, WebInferError } from "./webinfer/webinfer.js";

const q = new URLSearchParams(location.search);
const model = q.get("model");
const out = { cases: {}, errors: [] };
const log = (s) => { document.getElementById("log").textContent += s + "\n"; };

const PROMPT = "And God said";

async function tokens(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

// errorOf runs f and returns the WebInferError it throws (or null).
async function errorOf(f) {
  try {
    await f();
    return null;
  } catch (err) {
    return { isWebInferError: err instanceof WebInferError, code: err.code, message: err.message, recoverable: err.recoverable };
  }
}

// step names where a case is, for the error when it hangs.
let step = "";

async function run(name, f) {
  log(`${name}...`);
  step = "";
  try {
    // A case that hangs fails here, named, rather than the whole page.
    let timer;
    const hung = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within 120 s (at ${step || "its start"})`)), 120000); });
    out.cases[name] = await Promise.race([f(), hung]).finally(() => clearTimeout(timer));
  } catch (err) {
    out.errors.push(`${name}: ${err && err.code ? err.code + ": " : ""}${err && err.message ? err.message : err}`);
  }
}

// heapCase loads a model on a backend (WebGPU, or the CPU path) and
// reports the WASM memory after (WASM memory never shrinks: its size is
// the peak).
async function heapCase(url, backend) {
  const engine = await createEngine({ model: url, backend });
  const got = await tokens(engine.generate(PROMPT, { maxTokens: 2, temperature: 0 }));
  const s = engine.stats();
  await engine.unload();
  return { backend: s.backend, wasmHeapBytes: s.wasmHeapBytes, gpuBytes: s.gpuBytes, tokens: got.length, cpu: s.cpu || null };
}

async function main() {
  if (q.get("heap")) {
    await run("heap", () => heapCase(q.get("heap"), q.get("backend") || "webgpu"));
    return;
  }
  const progress = [];
  const engine = await createEngine({ model, onProgress: (p) => progress.push(p) });
  out.progress = progress;

  await run("seeded", async () => {
    const s = engine.generate(PROMPT, { maxTokens: 24, temperature: 0.8, seed: 5 });
    const chunks = await tokens(s);
    return { ids: chunks.filter((c) => c.token >= 0).map((c) => c.token), chunks, result: await s.result };
  });

  await run("concurrent", async () => {
    const streams = [11, 12, 13].map((seed) => engine.generate(PROMPT, { maxTokens: 12, seed }));
    const all = await Promise.all(streams.map(tokens));
    return all.map((chunks) => chunks.filter((c) => c.token >= 0).map((c) => c.token));
  });

  await run("abort", async () => {
    const ctl = new AbortController();
    const got = [];
    const err = await errorOf(async () => {
      for await (const c of engine.generate(PROMPT, { maxTokens: 200, signal: ctl.signal })) {
        got.push(c);
        if (got.length === 3) ctl.abort();
      }
    });
    // The engine goes on: a short request after the abort.
    const after = await tokens(engine.generate("And", { maxTokens: 2, temperature: 0 }));
    return { err, tokens: got.length, after: after.length };
  });

  await run("stop", async () => {
    const greedy = await tokens(engine.generate(PROMPT, { maxTokens: 24, temperature: 0 }));
    const text = greedy.map((c) => c.text).join("");
    // A stop string spanning two tokens: the end of one token's text and
    // the start of the next's.
    let i = 3;
    while (i + 1 < greedy.length && (greedy[i].text.length < 2 || greedy[i + 1].text.length < 1)) i++;
    const stop = greedy[i].text.slice(-2) + greedy[i + 1].text.slice(0, 1);
    const s = engine.generate(PROMPT, { maxTokens: 24, temperature: 0, stop: [stop] });
    const chunks = await tokens(s);
    return { stop, want: text.slice(0, text.indexOf(stop)), got: chunks.map((c) => c.text).join(""), result: await s.result };
  });

  await run("chat", async () => {
    const messages = [{ role: "user", content: "Who made the light?" }];
    const chunks = [];
    for await (const c of await engine.chat.completions.create({ messages, stream: true, max_tokens: 16, seed: 3 })) chunks.push(c);
    const one = await engine.chat.completions.create({ messages, stream: false, max_tokens: 16, seed: 3 });
    return { chunks, one };
  });

  await run("badOptions", async () => ({
    maxTokens: await errorOf(() => tokens(engine.generate(PROMPT, { maxTokens: -1 }))),
    unknown: await errorOf(() => tokens(engine.generate(PROMPT, { max_tokens: 3 }))),
    temperature: await errorOf(() => tokens(engine.generate(PROMPT, { temperature: "hot" }))),
    chat: await errorOf(() => engine.chat.completions.create({ messages: [], stream: true })),
    create: await errorOf(() => createEngine({ model: 5 })),
    backend: await errorOf(() => createEngine({ model, backend: "tpu" })),
    prompt: await errorOf(() => tokens(engine.generate(42))),
  }));

  await run("contextFull", async () => errorOf(() => tokens(engine.generate("And God said, Let there be light. ".repeat(200), { maxTokens: 4 }))));

  await run("stats", async () => engine.stats());

  await run("features", async () => detectFeatures());

  await run("cache", async () => listCachedModels());

  await run("brokenModel", async () => errorOf(() => createEngine({ model: q.get("broken") })));
  // No model, still downloading: the load fails at the header and the
  // download is broken off, not waited for.
  await run("garbageModel", async () => errorOf(() => createEngine({ model: `/test/garbage/${Math.random().toString(36).slice(2, 10)}.gguf` })));

  await run("mainThread", async () => {
    const local = await createEngine({ model, worker: false });
    const chunks = await tokens(local.generate(PROMPT, { maxTokens: 24, temperature: 0.8, seed: 5 }));
    const stats = local.stats();
    await local.unload();
    return { ids: chunks.filter((c) => c.token >= 0).map((c) => c.token), worker: stats.worker, backend: stats.backend };
  });

  if (q.get("webgpu") === "1") {
    await run("webgpu", async () => {
      const gpu = await createEngine({ model, backend: "webgpu" });
      const lost = [];
      gpu.on("devicelost", (e) => lost.push(e));
      const chunks = await tokens(gpu.generate(PROMPT, { maxTokens: 24, temperature: 0.8, seed: 5 }));
      const stats = gpu.stats();
      // The device lost mid-stream: the stream goes on, the same tokens.
      const resumed = [];
      let destroyed = false;
      for await (const c of gpu.generate(PROMPT, { maxTokens: 24, temperature: 0.8, seed: 5 })) {
        resumed.push(c);
        if (resumed.length === 3) destroyed = await gpu.debug.loseDevice();
      }
      const after = gpu.stats();
      // And between requests.
      await gpu.debug.loseDevice();
      const next = await tokens(gpu.generate(PROMPT, { maxTokens: 24, temperature: 0.8, seed: 5 }));
      await gpu.unload();
      const ids = (cs) => cs.filter((c) => c.token >= 0).map((c) => c.token);
      return { ids: ids(chunks), resumed: ids(resumed), next: ids(next), backend: stats.backend, backendAfter: after.backend, gpuBytes: stats.gpuBytes, destroyed, lost: lost.length };
    });
    // No device comes back: the CPU path carries the stream on, greedy,
    // with the tokens the CPU path gives from the start.
    await run("webgpuGone", async () => {
      const gpu = await createEngine({ model, backend: "webgpu" });
      const fallbacks = [];
      gpu.on("fallback", (e) => fallbacks.push(e));
      const got = [];
      for await (const c of gpu.generate(PROMPT, { maxTokens: 16, temperature: 0 })) {
        got.push(c);
        if (got.length === 4) await gpu.debug.loseDevice({ permanent: true });
      }
      const after = gpu.stats();
      await gpu.unload();
      const cpu = await createEngine({ model, backend: "cpu" });
      const want = await tokens(cpu.generate(PROMPT, { maxTokens: 16, temperature: 0 }));
      await cpu.unload();
      const ids = (cs) => cs.filter((c) => c.token >= 0).map((c) => c.token);
      return { ids: ids(got), cpu: ids(want), fallbacks, backendAfter: after.backend };
    });
  }

  if (q.get("cut")) {
    await run("modelCache", async () => {
      const base = new URL(q.get("cut"), location.href).href;
      const [a, b, c] = [base + "a.gguf", base + "b.gguf", base + "c.gguf"];
      const uniq = (xs) => xs.filter((x, i) => i === 0 || xs[i - 1] !== x);
      const ids = (cs) => cs.filter((x) => x.token >= 0).map((x) => x.token);
      const load = async (url, extra = {}) => {
        const phases = [];
        const e = await createEngine({ model: url, onProgress: (p) => phases.push(p.phase), ...extra });
        const got = ids(await tokens(e.generate(PROMPT, { maxTokens: 8, temperature: 0 })));
        const stats = e.stats();
        await e.unload();
        return { phases: uniq(phases), ids: got, fetchMs: stats.ttftBreakdownMs.fetch };
      };
      const first = await load(a); // the download breaks, and resumes
      const listed = await listCachedModels();
      const second = await load(a); // from the cache
      const size = (listed.find((m) => m.url === a) || {}).bytes || 0;
      const third = await load(b, { cache: { maxBytes: Math.max(1, Math.floor(size * 1.5)) } }); // room for one: a goes
      const afterEvict = await listCachedModels();
      const tooBig = await errorOf(() => createEngine({ model: c, cache: { maxBytes: 1000 } }));
      const deleted = await deleteCachedModel(b);
      return { first, second, third, listed, afterEvict, tooBig, deleted, size, urls: [a, b, c], after: await listCachedModels() };
    });
  }

  if (q.get("remote")) {
    await run("remote", async () => {
      const ids = (cs) => cs.filter((x) => x.token >= 0).map((x) => x.token);
      step = "connect";
      const r = await createEngine({ backend: "remote", remote: q.get("remote") });
      step = "seeded";
      const seeded = ids(await tokens(r.generate(PROMPT, { maxTokens: 24, temperature: 0.8, seed: 5 })));
      const concurrent = (await Promise.all([11, 12, 13].map((seed) => tokens(r.generate(PROMPT, { maxTokens: 12, seed }))))).map(ids);
      step = "abort";
      const ctl = new AbortController();
      let got = 0;
      const abort = await errorOf(async () => {
        for await (const c of r.generate(PROMPT, { maxTokens: 200, signal: ctl.signal })) {
          if (++got === 3) ctl.abort();
        }
      });
      const messages = [{ role: "user", content: "Who made the light?" }];
      const chunks = [];
      step = "chat stream";
      for await (const c of await r.chat.completions.create({ messages, stream: true, max_tokens: 16, seed: 3 })) chunks.push(c);
      step = "chat";
      const one = await r.chat.completions.create({ messages, stream: false, max_tokens: 16, seed: 3 });
      step = "bad option";
      const bad = await errorOf(() => tokens(r.generate(PROMPT, { maxTokens: -1 })));
      const stats = r.stats();
      await r.unload();
      // auto: the server is the last fallback when the local engine fails.
      step = "fallback";
      const fb = await createEngine({ model: q.get("broken"), remote: q.get("remote") });
      const fallback = { backend: fb.stats().backend, why: fb.stats().why, ids: ids(await tokens(fb.generate(PROMPT, { maxTokens: 4, temperature: 0 }))) };
      await fb.unload();
      step = "server down";
      const down = await errorOf(() => createEngine({ backend: "remote", remote: "ws://127.0.0.1:9/v1/stream" }));
      return { seeded, concurrent, abort, got, chunks, one, bad, backend: stats.backend, fallback, down };
    });
  }

  // Progressive loading: the server holds the file's last 64 KiB back
  // until the engine's compile (or upload) phase shows, which it can only
  // reach while the download runs if it loads as the bytes arrive.
  await run("streaming", async () => {
    const url = new URL(`/test/slow/kjv-${Math.random().toString(36).slice(2, 10)}.gguf`, location.href).href;
    let downloaded = 0;
    let total = 0;
    let atEngine = null; // { phase, downloaded } when the engine's first compile/upload progress came
    const phases = [];
    const e = await createEngine({ model: url, backend: q.get("webgpu") === "1" ? "webgpu" : "cpu", onProgress: (p) => {
      if (phases[phases.length - 1] !== p.phase) phases.push(p.phase);
      if (p.text === "downloading the model") {
        downloaded = Math.max(downloaded, p.loaded);
        total = p.total;
      } else if (!atEngine && (p.phase === "compile" || p.phase === "upload")) {
        atEngine = { phase: p.phase, downloaded };
        fetch(`/test/release?path=${encodeURIComponent(new URL(url).pathname)}`);
      }
    } });
    const ids = (await tokens(e.generate(PROMPT, { maxTokens: 8, temperature: 0 }))).filter((c) => c.token >= 0).map((c) => c.token);
    const backend = e.stats().backend;
    await e.unload();
    await deleteCachedModel(url);
    return { ids, atEngine, total, phases, backend };
  });

  await run("unload", async () => {
    await engine.unload();
    return errorOf(() => tokens(engine.generate(PROMPT, { maxTokens: 2 })));
  });
}

main().catch((err) => out.errors.push(`main: ${err && err.code ? err.code + ": " : ""}${err && err.message ? err.message : err}`)).finally(async () => {
  log(JSON.stringify(out.errors));
  window.__embedResult = out;
  const report = q.get("report");
  if (report) await fetch(report, { method: "POST", body: JSON.stringify(out) });
});
