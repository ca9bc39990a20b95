// llamacpp-bench.mjs: measures llama.cpp (node-llama-cpp, CPU build) on a
// model the way `webinfer bench` measures our engine: prefill of the prompt,
// then greedy decode of n tokens, repeated `samples` times after a warm-up.
//
//   node tests/bench/llamacpp-bench.mjs '{"model":"m.gguf","prompt":"...","n":32,"samples":5,"threads":2}'
//
// Out (JSON): {"version": "...", "prompt_tokens": N,
//              "prefill_tok_s": [...], "decode_tok_s": [...]}
import { getLlama } from "node-llama-cpp";
import { readFileSync } from "node:fs";

const args = JSON.parse(process.argv[2]);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error", progressLogs: false });
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: 512, batchSize: 512, threads: args.threads || 2, sequences: 1,
  flashAttention: false,
});
let prompt = model.tokenize(args.prompt, false);
if (model.tokens.bos != null && model.tokens.shouldPrependBosToken) prompt = [model.tokens.bos, ...prompt];

// once times one run: prefill is the prompt's tokens over the time to the
// first generated token; decode is the tokens after the first over the time
// after it (as webinfer's engine reports them).
async function once() {
  const seq = context.getSequence();
  const t0 = performance.now();
  let n = 0, first = 0;
  for await (const t of seq.evaluate(prompt, { temperature: 0 })) {
    if (n === 0) first = performance.now();
    if (++n >= args.n) break;
  }
  const t2 = performance.now();
  seq.dispose();
  return { prefill: prompt.length / ((first - t0) / 1000), decode: (n - 1) / ((t2 - first) / 1000) };
}

await once(); // warm-up: first use of each batch size includes set-up
const prefill = [], decode = [];
for (let i = 0; i < (args.samples || 5); i++) {
  const r = await once();
  prefill.push(r.prefill);
  decode.push(r.decode);
}
const pkg = JSON.parse(readFileSync(new URL("../../node_modules/node-llama-cpp/package.json", import.meta.url)));
const out = JSON.stringify({ version: `node-llama-cpp ${pkg.version}`, prompt_tokens: prompt.length, prefill_tok_s: prefill, decode_tok_s: decode }) + "\n";
await context.dispose();
await model.dispose();
process.stdout.write(out, () => process.exit(0));
