import "/shim/gpu.js";
import { startCPUPool } from "/shim/cpupool.js";

const params = new URLSearchParams(location.search);
const bin = params.get("bin");
const reportURL = params.get("report");
const lines = [];
const out = document.getElementById("out");

// wasm_exec.js writes the program's stdout and stderr through console.log
// and console.error, a line at a time.
for (const level of ["log", "error", "warn"]) {
  const orig = console[level].bind(console);
  console[level] = (...args) => { lines.push(args.join(" ")); orig(...args); };
}

async function report(exit) {
  out.textContent = lines.join("\n") + `\nexit ${exit}`;
  const body = JSON.stringify({ bin, exit, output: lines.join("\n"), ua: navigator.userAgent });
  if (reportURL) await fetch(reportURL, { method: "POST", body, headers: { "content-type": "application/json" } });
}

async function main() {
  const go = new Go();
  go.argv = ["js", "-test.v", "-test.timeout=330s"];
  let done;
  const exited = new Promise((resolve) => { done = resolve; });
  go.exit = (code) => done(code);
  const resp = await fetch("/test/bin/" + bin);
  if (!resp.ok) throw new Error(`${bin}: HTTP ${resp.status}`);
  const { instance } = await WebAssembly.instantiate(await resp.arrayBuffer(), go.importObject);
  // The CPU path's thread pool, as shim/host.js starts it for the engine
  // (wasm/cpu's tests run its kernels against the Go ones).
  globalThis.__webinferCPU = (await startCPUPool()).attach(instance.exports.mem);
  go.run(instance);
  await report(await exited);
}

main().catch(async (err) => {
  lines.push("gotest.js: " + (err && err.stack ? err.stack : err));
  await report(99);
});
