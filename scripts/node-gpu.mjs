// node-gpu.mjs: runs a Go js/wasm program (the engine, or a `go test -c`
// binary) under Node with WebGPU from Dawn (npm package `webgpu`), with the
// same shim the browser loads. This is how the engine runs on a GPU server
// without a browser (see ../shared/gpu/README.md and the README's H100
// section), and how CI runs the WebGPU Go tests a fourth way.
//
//   node scripts/node-gpu.mjs PROGRAM.wasm [args...]
//
// Environment: DAWN_NODE (path to dawn.node; default: the npm package's),
// DAWN_FLAGS (comma-separated Dawn toggles, e.g. "backend=vulkan").
// Exits with the Go program's exit status.
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");

const program = process.argv[2];
if (!program) {
  console.error("usage: node scripts/node-gpu.mjs PROGRAM.wasm [args...]");
  process.exit(2);
}

const dawnPath = process.env.DAWN_NODE || path.join(root, "node_modules/webgpu/dist/linux-x64/dawn.node");
const { create, globals } = require(dawnPath);
Object.assign(globalThis, globals);
const flags = (process.env.DAWN_FLAGS || "").split(",").filter(Boolean);
globalThis.navigator = {
  gpu: create(flags),
  userAgent: `Node.js/${process.versions.node} Dawn`,
  hardwareConcurrency: os.cpus().length,
};

// What Go's wasm_exec.js expects of its host (as lib/wasm/wasm_exec_node.js sets up).
globalThis.require = require;
globalThis.fs = fs;
globalThis.path = path;
globalThis.TextEncoder ??= require("node:util").TextEncoder;
globalThis.TextDecoder ??= require("node:util").TextDecoder;
globalThis.performance ??= require("node:perf_hooks").performance;
globalThis.crypto ??= require("node:crypto").webcrypto;

const goroot = process.env.GOROOT || require("node:child_process").execFileSync("go", ["env", "GOROOT"], { encoding: "utf8" }).trim();
require(path.join(goroot, "lib/wasm/wasm_exec.js"));
await import(path.join(root, "shim/gpu.js"));

const go = new globalThis.Go();
go.argv = [program, ...process.argv.slice(3)];
go.env = Object.assign({ TMPDIR: os.tmpdir() }, process.env);
// Dawn keeps the event loop alive while a device exists: leave explicitly.
go.exit = (code) => process.exit(code);
const { instance } = await WebAssembly.instantiate(fs.readFileSync(program), go.importObject);
await go.run(instance);
process.exit(0);
