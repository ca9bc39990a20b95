// example.ts: an app's use of every call of the JS API, compiled (not run)
// by `make check` against shim/webinfer.d.ts, so that the declarations
// stay whole and usable. tsc --noEmit -p tests/types.
import {
  createEngine, detectFeatures, listCachedModels, deleteCachedModel, connectEngine, WebInferError,
  type Engine, type TokenChunk, type ChatCompletionChunk, type ChatCompletion, type Stats, type Progress, type FeatureReport,
} from "../../shim/webinfer.js";

export async function everyCall(file: File): Promise<string> {
  const phases: Progress["phase"][] = [];
  const engine: Engine = await createEngine({
    model: "assets/models/kjv-q8_0.gguf",
    backend: "auto",
    remote: "ws://127.0.0.1:8080/v1/stream",
    worker: true,
    precision: "auto",
    threads: 2,
    onProgress: ({ phase, loaded, total, text, etaMs }) => {
      phases.push(phase);
      console.log(text, loaded, total, etaMs);
    },
  });
  const fromFile = await createEngine({ model: file, worker: false, cache: false });
  const bounded = await createEngine({ model: "model.gguf", cache: { maxBytes: 2e9 } });
  await bounded.unload();
  const remote = await createEngine({ backend: "remote", remote: "ws://127.0.0.1:8080/v1/stream" });
  await remote.unload();
  await fromFile.unload();

  const ctl = new AbortController();
  let out = "";
  const stream = engine.generate("Once upon a time", { maxTokens: 64, temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, seed: 1, stop: ["\n\n"], signal: ctl.signal });
  for await (const chunk of stream) {
    const c: TokenChunk = chunk;
    out += c.text;
    if (c.token < 0 || c.index > 60 || c.atMs > 10_000) ctl.abort();
  }
  const r = await stream.result;
  console.log(r.finishReason, r.usage.completionTokens, r.ttftMs, r.itlMs.p99);

  const chunks = await engine.chat.completions.create({ messages: [{ role: "user", content: "Hi" }], stream: true, max_tokens: 64, temperature: 0, top_p: 1, top_k: 0, seed: 2, stop: "." });
  for await (const c of chunks) {
    const chunk: ChatCompletionChunk = c;
    out += chunk.choices[0].delta.content ?? "";
    if (chunk.usage) console.log(chunk.usage.total_tokens, chunk.choices[0].finish_reason);
  }
  const one: ChatCompletion = await engine.chat.completions.create({ messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }], stream: false, max_tokens: 8 });
  out += one.choices[0].message.content + one.usage.prompt_tokens;

  const s: Stats = engine.stats();
  if (s.cpu) console.log(s.cpu.threads, s.cpu.kernels, s.cpu.why ?? "");
  console.log(s.backend, s.precision, s.worker, s.ttftMs, s.ttftBreakdownMs.fetch, s.ttftBreakdownMs.upload, s.ttftBreakdownMs.compile,
    s.ttftBreakdownMs.prefill, s.prefillTokS, s.decodeTokS, s.itlMs.p50, s.itlMs.p90, s.batchSize, s.kvBytes, s.gpuBytes, s.wasmHeapBytes, s.backends.map((b) => `${b.name}: ${b.health} (${b.why})`));
  const off = engine.on("telemetry", (t) => console.log(t.decodeTokS));
  off();
  engine.on("fallback", ({ from, to, reason }) => console.log(from, to, reason));
  engine.on("devicelost", ({ reason }) => console.log(reason));
  engine.on("error", (e) => console.log(e.code, e.recoverable));
  const lost: boolean = await engine.debug.loseDevice();
  const forGood: boolean = await engine.debug.loseDevice({ permanent: true });
  console.log(lost, forGood);
  await engine.unload();

  const f: FeatureReport = await detectFeatures();
  console.log(f.path.backend, f.webgpu.adapter?.isFallbackAdapter, f.wasm.simd, f.workerWebGPU.webgpu, f.storage.quota, f.storage.opfs);
  for (const m of await listCachedModels()) {
    const gone: boolean = await deleteCachedModel(m.url);
    console.log(m.bytes, m.lastUsed, gone);
  }
  try {
    await createEngine({ model: "missing.gguf" });
  } catch (err) {
    if (err instanceof WebInferError && err.code === "network") console.log(err.message);
  }
  const telemetry: Stats = engine.stats();
  console.log(telemetry.genAI["gen_ai.server.time_to_first_token"].p99, telemetry.genAI["gen_ai.client.token.usage.output"]);
  const port = await connectEngine((json) => console.log(JSON.parse(json).ev), (msg) => console.error(msg), { worker: true });
  port.send(JSON.stringify({ op: "features", id: 1 }));
  console.log(port.worker);
  port.close();
  return out + phases.join();
}
