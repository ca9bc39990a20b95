// boot.js: starts the page. Instantiates dist/app.wasm (Go: the Vugu UI,
// wasm/app) with Go's wasm_exec.js loader and gives it
// globalThis.webinferConnect (shim/webinfer.js's connectEngine): the page
// only renders; the engine runs in a Web Worker (shim/worker.js) and the two
// speak the JS API's messages (wasm/api).
import { connectEngine } from "./webinfer.js";

globalThis.webinferConnect = connectEngine;

function showFatal(msg) {
  const el = document.getElementById("status") || document.body;
  el.textContent = "webinfer failed to start: " + msg;
  globalThis.__webinferReport = { errors: [String(msg)] };
}

async function boot() {
  if (typeof Go !== "function") throw new Error("dist/wasm_exec.js did not load (run `make build`)");
  const go = new Go();
  const url = new URL("../dist/app.wasm", import.meta.url);
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status} (run \`make build\`)`);
  let result;
  if (WebAssembly.instantiateStreaming && (resp.headers.get("content-type") || "").startsWith("application/wasm")) {
    result = await WebAssembly.instantiateStreaming(resp, go.importObject);
  } else {
    result = await WebAssembly.instantiate(await resp.arrayBuffer(), go.importObject);
  }
  go.run(result.instance).then(() => showFatal("the Go program exited"));
}

boot().catch((err) => showFatal(err && err.message ? err.message : err));
