#!/usr/bin/env bash
# h100-bench.sh: the WebGPU benchmark on a GPU server without a browser
# (README: "Running on a GPU server"). Run from the repository root on the
# server, with the carried folders .gl (Vulkan loader debs), .dawn (node and
# dawn.node, xz) and either .h100t (the js/wasm tests: they run) or .h100
# (webinfer, gpubench.wasm, wasm_exec.js, the two vocabularies, and
# node-llama-cpp with its Vulkan build: the benchmarks run), made by
# `make h100-pack` here; both fit a call only on a larger allowance.
# PARTS=tests or PARTS=bench picks one where both are present;
# PARTS="tests streams" runs the tests and, from the light .h100s, the
# concurrent streams benchmark alone (before and after a change; WGT="0
# 1": once per transposed-form threshold); PARTS=formspeed times the
# product forms alone (wasm/kernels TestProductFormSpeed). Writes
# the logs and JSON to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
xz -dc .dawn/node.xz > /tmp/node && chmod +x /tmp/node
xz -dc .dawn/dawn.node.xz > /tmp/dawn.node
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
export DAWN_NODE=/tmp/dawn.node GOROOT=/tmp/goroot
mkdir -p /tmp/goroot/lib/wasm
parts=${PARTS:-$( [ -d .h100t ] && echo tests) $( [ -f .h100/gpubench.wasm.xz ] && echo bench)}
echo "parts: $parts"
if [[ $parts == *tests* ]]; then
cp .h100t/wasm_exec.js /tmp/goroot/lib/wasm/
# The kernel tests and the model tests that need no generated fixtures,
# on the real GPU (subgroup variants run only where subgroups fit).
for p in kernels gpumodel selfcheck; do
  xz -dc .h100t/$p.test.wasm.xz > /tmp/$p.test.wasm
done
(cd wasm/kernels && timeout 300 /tmp/node ../../scripts/node-gpu.mjs /tmp/kernels.test.wasm -test.count=1 -test.v > "$OUT/test-kernels.log" 2>&1; echo "kernels tests rc=$?")
grep -E "^(--- FAIL|FAIL|ok|PASS)" "$OUT/test-kernels.log" | head; grep -c "^=== RUN .*/sg/" "$OUT/test-kernels.log" | sed "s/^/subgroup variant runs: /"
(cd wasm/gpumodel && timeout 300 /tmp/node ../../scripts/node-gpu.mjs /tmp/gpumodel.test.wasm -test.count=1 -test.v -test.run 'TestGPUMatchesCPU/default|TestHalfActivations|TestLongPrompt|TestForwardArgmax|TestDecodeGreedy|TestDecodeSampled|TestStepBatch|TestAttentionSplit|TestProfile|TestEngineStreams' > "$OUT/test-gpumodel.log" 2>&1; echo "gpumodel tests rc=$?")
grep -E "^(--- |FAIL|ok|PASS)|max \|log-softmax|boundary" "$OUT/test-gpumodel.log" | head -30
# The start-up self-check in the real GPU's forms (workgroups, subgroups).
(cd wasm/selfcheck && timeout 300 /tmp/node ../../scripts/node-gpu.mjs /tmp/selfcheck.test.wasm -test.count=1 -test.v -test.run TestGeneration > "$OUT/test-selfcheck.log" 2>&1; echo "selfcheck tests rc=$?")
grep -E "^(--- |FAIL|ok|PASS)| ms \(" "$OUT/test-selfcheck.log" | head -30
fi
if [[ $parts == *formspeed* ]]; then
# The product forms timed alone on the benchmark models' shapes (one
# token, and eight through main_wg, main_wgb and main_wgt), each batched
# form checked bit for bit against main_wg on the way, and the batched
# forms' test in every type and fusion.
cp .h100t/wasm_exec.js /tmp/goroot/lib/wasm/
xz -dc .h100t/kernels.test.wasm.xz > /tmp/kernels.test.wasm
(cd wasm/kernels && WEBINFER_FORM_SPEED=1 timeout 400 /tmp/node ../../scripts/node-gpu.mjs /tmp/kernels.test.wasm -test.count=1 -test.v -test.run 'TestProductFormSpeed|TestBatchFormIsSolo' > "$OUT/formspeed.log" 2>&1; echo "formspeed rc=$?")
grep -E "^(--- FAIL|FAIL|ok|PASS)|formspeed:|Error" "$OUT/formspeed.log" | head -60
fi
if [[ $parts == *streams* ]]; then
# The concurrent streams alone (.h100s: light enough to carry beside
# .h100t): 1/2/4/8 streams through the scheduler, before (BEFORE=<commit>
# when packed) and after, on both shapes; STREAMS="1,8": those counts
# alone, without the controller's runs.
xz -dc .h100s/webinfer.xz > /tmp/webinfer && chmod +x /tmp/webinfer
mkdir -p /tmp/vocab && tar -C /tmp/vocab -xJf .h100s/vocab.tar.xz
cp .h100s/wasm_exec.js /tmp/goroot/lib/wasm/
/tmp/webinfer synth --preset smol135 --type Q8_0 --vocab /tmp/vocab/ggml-vocab-gpt-2.gguf --out /tmp/smol135-q8_0.gguf
/tmp/webinfer synth --preset llama1b --type Q4_0 --vocab /tmp/vocab/ggml-vocab-llama-bpe.gguf --out /tmp/llama1b-q4_0.gguf
for b in before after; do
  [ -f .h100s/gpubench-$b.wasm.xz ] || continue
  xz -dc .h100s/gpubench-$b.wasm.xz > /tmp/gpubench-$b.wasm
  for m in smol135-q8_0 llama1b-q4_0; do
    # WGT="0 1 …": one run per value of GPUBENCH_WGT_ROWS (the transposed
    # few-tokens form from that many rows; 0 never), else the default.
    for wgt in ${WGT:-default}; do
      tag=$b-$m; [ "$wgt" = default ] || tag=$tag-wgt$wgt
      (if [ "$wgt" != default ]; then export GPUBENCH_WGT_ROWS=$wgt; fi
       GPUBENCH_STREAMS=${STREAMS:-} GPUBENCH_ONLY=streams DAWN_FLAGS=disable-dawn-features=timestamp_quantization timeout 200 /tmp/node scripts/node-gpu.mjs /tmp/gpubench-$b.wasm /tmp/$m.gguf > "$OUT/streams-$tag.json" 2>> "$OUT/stderr.log"
       echo "streams $tag rc=$?")
      grep "gpubench: .* streams" "$OUT/stderr.log" | tail -n 12 | sed "s/^/  $tag /" | tail -n 6
      python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print({k:round(v['us']) for k,v in sorted(d['batch_gpu_us_per_op'].items()) if 'matmul' in k})" "$OUT/streams-$tag.json" 2>/dev/null
    done
  done
done
fi
[[ $parts == *bench* ]] || exit 0
xz -dc .h100/webinfer.xz > /tmp/webinfer && chmod +x /tmp/webinfer
xz -dc .h100/gpubench.wasm.xz > /tmp/gpubench.wasm
mkdir -p /tmp/vocab /tmp/nlcv
tar -C /tmp/vocab -xJf .h100/vocab.tar.xz
cp .h100/wasm_exec.js /tmp/goroot/lib/wasm/
tar -C /tmp/nlcv -xJf .h100/nlcv.tar.xz
cp tests/bench/llamacpp-gpu-bench.mjs /tmp/nlcv/
/tmp/webinfer synth --preset smol135 --type Q8_0 --vocab /tmp/vocab/ggml-vocab-gpt-2.gguf --out /tmp/smol135-q8_0.gguf
/tmp/webinfer synth --preset llama1b --type Q4_0 --vocab /tmp/vocab/ggml-vocab-llama-bpe.gguf --out /tmp/llama1b-q4_0.gguf
ls -la /tmp/*.gguf
for m in smol135-q8_0 llama1b-q4_0; do
  # Packed with BEFORE=<commit>: that commit's bench first, on the same GPU
  # in the same run, for a before/after comparison.
  if [ -f .h100/gpubench-before.wasm.xz ]; then
    xz -dc .h100/gpubench-before.wasm.xz > /tmp/gpubench-before.wasm
    DAWN_FLAGS=disable-dawn-features=timestamp_quantization timeout 300 /tmp/node scripts/node-gpu.mjs /tmp/gpubench-before.wasm /tmp/$m.gguf 32 128 512 > "$OUT/webgpu-before-$m.json" 2>> "$OUT/stderr.log"
    echo "webgpu before ($(cat .h100/before-commit)) $m rc=$?"; head -c 1500 "$OUT/webgpu-before-$m.json"; echo
  fi
  DAWN_FLAGS=disable-dawn-features=timestamp_quantization timeout 300 /tmp/node scripts/node-gpu.mjs /tmp/gpubench.wasm /tmp/$m.gguf 32 128 512 > "$OUT/webgpu-$m.json" 2>> "$OUT/stderr.log"
  echo "webgpu $m rc=$?"; cat "$OUT/webgpu-$m.json" | head -c 1500; echo
  (cd /tmp/nlcv && timeout 240 /tmp/node llamacpp-gpu-bench.mjs "{\"model\":\"/tmp/$m.gguf\",\"prompt\":32,\"decode\":128,\"prefill\":512}") > "$OUT/llamacpp-$m.json" 2>> "$OUT/stderr.log"
  echo "llama.cpp $m rc=$?"; cat "$OUT/llamacpp-$m.json"
done
