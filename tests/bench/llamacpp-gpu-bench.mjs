// llamacpp-gpu-bench.mjs: llama.cpp's own GPU backend (node-llama-cpp with
// @node-llama-cpp/linux-x64-vulkan, every layer offloaded) on a model, for
// the WebGPU benchmark on a GPU server (README: "Running on a GPU server").
// Same inputs as tests/bench/gpubench: a prompt of synthetic token ids, greedy
// decode, and a long prefill (timed after a warm-up of the same size, since
// llama.cpp compiles pipelines on the first use of a batch size).
//
//   node llamacpp-gpu-bench.mjs '{"model":"m.gguf","prompt":32,"decode":128,"prefill":512}'
import { getLlama } from "node-llama-cpp";

const a = JSON.parse(process.argv[2]);
const llama = await getLlama({ gpu: a.gpu || "vulkan", build: "never", logLevel: "error", progressLogs: false });
const model = await llama.loadModel({ modelPath: a.model, gpuLayers: "max" });
const context = await model.createContext({ contextSize: Math.max(a.prefill, a.prompt + a.decode) + 64, batchSize: a.prefill, sequences: 1 });
const vocab = model.tokens.size ?? 32000;
const prompt = Array.from({ length: a.prompt }, (_, i) => (i * 7919 + 13) % vocab);
const long = Array.from({ length: a.prefill }, (_, i) => (i * 104729 + 7) % vocab);

async function decodeOnce() {
  const seq = context.getSequence();
  let n = 0, first = 0;
  for await (const _ of seq.evaluate(prompt, { temperature: 0 })) {
    if (n === 0) first = performance.now();
    if (++n >= a.decode + 1) break;
  }
  const t = (performance.now() - first) / 1000;
  seq.dispose();
  return a.decode / t;
}
async function prefillOnce() {
  const seq = context.getSequence();
  const t0 = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(long);
  const t = (performance.now() - t0) / 1000;
  seq.dispose();
  return a.prefill / t;
}
await decodeOnce();
await prefillOnce();
const decode = [], prefill = [];
for (let i = 0; i < 3; i++) {
  decode.push(await decodeOnce());
  prefill.push(await prefillOnce());
}
const out = JSON.stringify({ engine: "llama.cpp", gpu: llama.gpu, device: (await llama.getGpuDeviceNames()).join(", "), decode_tok_s: decode, prefill_tok_s: prefill }) + "\n";
await context.dispose();
await model.dispose();
process.stdout.write(out, () => process.exit(0));
