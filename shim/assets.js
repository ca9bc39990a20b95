// assets.js: where the engine's files are, relative to this module. In the
// repository (served from its root after `make build`) they are in dist/;
// `make dist` writes its own copy of this file, with everything beside it.
export const wasmURL = new URL("../dist/webinfer.wasm", import.meta.url).href;
export const wasmExecURL = new URL("../dist/wasm_exec.js", import.meta.url).href;
export const workerURL = new URL("./worker.js", import.meta.url).href;
