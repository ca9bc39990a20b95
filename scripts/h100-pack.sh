#!/usr/bin/env bash
# h100-pack.sh: packs what scripts/h100-bench.sh needs on a GPU server
# with no network into four ignored folders (about 57 MB in all):
#   .gl    the Vulkan loader and GL dispatch libraries (Debian amd64 debs)
#   .dawn  this machine's node and Dawn's dawn.node (npm webgpu@0.6.2), xz
#   .h100  bin/webinfer, the WebGPU bench (dist/gpubench.wasm), wasm_exec.js,
#          the two vocabularies the synthetic models use, with
#          BEFORE=<commit> that commit's WebGPU bench as well, and
#          node-llama-cpp 3.21.1 with its Vulkan build (for the peer)
#   .h100t the js/wasm tests of wasm/kernels, wasm/gpumodel, wasm/selfcheck
# The checkout and all four are over the device's 64 MiB a call: carry
# .gl .dawn .h100t for the tests and .gl .dawn .h100 for the benchmarks,
# in two calls (README: "Running on a GPU server").
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.h100/' .git/info/exclude 2>/dev/null || printf '/.gl/\n/.dawn/\n/.h100/\n' >> .git/info/exclude
grep -qx '/.h100t/' .git/info/exclude || echo /.h100t/ >> .git/info/exclude
mkdir -p .gl .dawn .h100 .h100t /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  apt-get $o update -q
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
# Stripped (symbols are not needed to run them): the carried folders must
# stay under the device's 64 MiB with the working tree.
tmp=$(mktemp -d)
cp "$(readlink -f "$(command -v node)")" "$tmp/node"
cp node_modules/webgpu/dist/linux-x64/dawn.node "$tmp/dawn.node"
strip "$tmp/node" "$tmp/dawn.node"
xz -9e -T0 -c "$tmp/node" > .dawn/node.xz
xz -9e -T0 -c "$tmp/dawn.node" > .dawn/dawn.node.xz
rm -rf "$tmp"
GOOS=js GOARCH=wasm go build -ldflags="-s -w" -o dist/gpubench.wasm ./tests/bench/gpubench
mkdir -p dist/h100
go build -ldflags="-s -w" -o dist/h100/webinfer ./cmd/webinfer
xz -9e -T0 -c dist/h100/webinfer > .h100/webinfer.xz
xz -9e -T0 -c dist/gpubench.wasm > .h100/gpubench.wasm.xz
# BEFORE=<commit>: that commit's WebGPU bench too, so that one run on the
# GPU server measures before and after a change side by side.
rm -f .h100/gpubench-before.wasm.xz
if [ -n "${BEFORE:-}" ]; then
  wt=$(mktemp -d); git worktree add -q --detach "$wt" "$BEFORE"
  (cd "$wt" && GOOS=js GOARCH=wasm go build -ldflags="-s -w" -o dist/gpubench.wasm ./tests/bench/gpubench)
  xz -9e -T0 -c "$wt/dist/gpubench.wasm" > .h100/gpubench-before.wasm.xz
  git rev-parse "$BEFORE" > .h100/before-commit
  git worktree remove --force "$wt"
fi
# The kernel and model tests, to run on the real GPU too.
for p in kernels gpumodel selfcheck; do
  mkdir -p dist/h100; GOOS=js GOARCH=wasm go test -c -ldflags="-s -w" -o dist/h100/$p.test.wasm ./wasm/$p
  xz -9 -T0 -c dist/h100/$p.test.wasm > .h100t/$p.test.wasm.xz
done
rm -f .h100/*.test.wasm.xz
cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" .h100/wasm_exec.js
cp .h100/wasm_exec.js .h100t/wasm_exec.js
tar -C .cache/llama.cpp/models -cJf .h100/vocab.tar.xz ggml-vocab-gpt-2.gguf ggml-vocab-llama-bpe.gguf
if [ ! -f .h100/nlcv.tar.xz ]; then
  tmp=$(mktemp -d)
  echo '{"name":"x","private":true,"type":"module"}' > "$tmp/package.json"
  (cd "$tmp" && npm install --no-audit --no-fund --omit=optional --ignore-scripts node-llama-cpp@3.21.1 @node-llama-cpp/linux-x64-vulkan@3.21.1 >/dev/null)
  rm -rf "$tmp/node_modules/node-llama-cpp/llama/gitRelease.bundle"
  tar -C "$tmp" -cf - node_modules package.json | xz -T0 -9 > .h100/nlcv.tar.xz
  rm -rf "$tmp"
fi
# .h100s: the concurrent streams bench alone, light enough to carry with
# .h100t in one call (PARTS="tests streams").
grep -qx '/.h100s/' .git/info/exclude || echo /.h100s/ >> .git/info/exclude
rm -rf .h100s && mkdir -p .h100s
cp .h100/webinfer.xz .h100/vocab.tar.xz .h100/wasm_exec.js .h100s/
cp .h100/gpubench.wasm.xz .h100s/gpubench-after.wasm.xz
[ -f .h100/gpubench-before.wasm.xz ] && cp .h100/gpubench-before.wasm.xz .h100s/
du -sh .gl .dawn .h100 .h100t .h100s
