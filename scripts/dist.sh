#!/usr/bin/env bash
# dist.sh: the package for web apps (make dist): dist/webinfer/, a folder
# an app copies or installs from its path (npm install ./dist/webinfer),
# holding the JS API (webinfer.js and the modules it loads), the engine's
# WASM and Go's loader for it, the TypeScript declarations, a package.json
# and a short README. Run after `make build`.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
out=dist/webinfer
rm -rf "$out"; mkdir -p "$out"
cp shim/webinfer.js shim/errors.js shim/cache.js shim/remote.js shim/stream.js shim/worker.js shim/host.js shim/gpu.js shim/features.js shim/cpupool.js shim/cpuworker.js shim/webinfer.d.ts "$out/"
mkdir -p "$out/simd128"
cp shim/simd128/kernels.wasm "$out/simd128/"
cp dist/webinfer.wasm dist/wasm_exec.js "$out/"
# In the package everything lies beside webinfer.js.
cat > "$out/assets.js" <<'JS'
// assets.js (make dist): the engine's files, beside this module.
export const wasmURL = new URL("./webinfer.wasm", import.meta.url).href;
export const wasmExecURL = new URL("./wasm_exec.js", import.meta.url).href;
export const workerURL = new URL("./worker.js", import.meta.url).href;
JS
# npm wants a semver version: 0.0.0-<describe> for a build between tags.
semver=$version; [[ $semver =~ ^v?[0-9]+\.[0-9]+\.[0-9]+ ]] && semver=${semver#v} || semver="0.0.0-${version//[^0-9A-Za-z-]/-}"
cat > "$out/package.json" <<JSON
{
  "name": "webinfer",
  "version": "$semver",
  "description": "Run GGUF language models in the browser: WebGPU with a CPU path, in a Web Worker",
  "type": "module",
  "main": "./webinfer.js",
  "types": "./webinfer.d.ts",
  "exports": { ".": { "types": "./webinfer.d.ts", "default": "./webinfer.js" } },
  "license": "MIT"
}
JSON
cat > "$out/README.md" <<MD
# webinfer $version

Copy this folder into your app (or \`npm install path/to/webinfer\`) and
serve it with the rest of your files; everything it loads lies beside
\`webinfer.js\`, found from its own URL.

\`\`\`js
import { createEngine } from "./webinfer/webinfer.js";
const engine = await createEngine({ model: "model.gguf", onProgress: (p) => console.log(p.phase, p.loaded, p.total) });
for await (const c of engine.generate("Once upon a time", { maxTokens: 64, seed: 1 })) console.log(c.text);
\`\`\`

The engine runs in a Web Worker (\`worker: false\` keeps it on the page's
thread). Serve \`.wasm\` as \`application/wasm\`. Types: \`webinfer.d.ts\`.
The whole API: CONTRACTS.md section 3 of the webinfer repository.

What a user downloads (bytes; compressed as \`webinfer serve\` compresses):

$(go run ./scripts/sizes "$out")
MD
echo "dist: $out"
