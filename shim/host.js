// host.js: starts the engine (dist/webinfer.wasm, Go: wasm/apihost) in this
// scope, a Web Worker or the page, and returns its side of the port: the
// page's messages go in through receive (JSON strings), the engine's come
// out through the post callback given (JSON strings). Messages carrying
// stats get the WASM memory's size added here, where the memory is.
import "./gpu.js";
import "./features.js";
import { wasmURL, wasmExecURL } from "./assets.js";

let ports = 0;

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
  if (!msg.startsWith('{"ev":"stats"') && !msg.startsWith('{"ev":"telemetry"') && !msg.startsWith('{"ev":"ready"')) return msg;
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
  const port = { post: (msg) => post(memory ? withMemory(msg, memory) : msg), ready: () => started() };
  globalThis[name] = port;
  const go = new Go();
  go.argv = ["webinfer", name];
  const { instance } = await instantiate(wasmURL, go.importObject);
  memory = instance.exports.mem;
  const exited = go.run(instance);
  await Promise.race([ready, exited.then(() => { throw new Error("the engine exited as it started"); })]);
  exited.then(() => post(JSON.stringify({ ev: "error", code: "internal", message: "the engine stopped (see the console)" })));
  return { receive: (msg) => port.receive(msg) };
}
