// llamacpp.mjs: runs llama.cpp (through node-llama-cpp, CPU build) on a GGUF
// model and prints what the parity tests compare, as one JSON object:
//
//   node tests/parity/llamacpp.mjs '{"model":"m.gguf","prompt":"Hello","n":32,"threads":2}'
//
// Out: {"prompt_tokens":[...], "tokens":[...greedy ids...],
//       "steps":[{"top":[[id,logprob],[id,logprob]]}, ...]  (teacher-forced,
//        one per generated token: the two most likely next tokens there),
//       "last_logprobs":[...] (the whole distribution after the prompt)}
//
// Flash attention is off and the KV cache is F32, so llama.cpp computes
// attention the plain way our CPU engine does (shared/TESTING.md).
import { getLlama } from "node-llama-cpp";

const args = JSON.parse(process.argv[2]);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error", progressLogs: false });
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: args.ctx || 512,
  batchSize: args.ctx || 512,
  threads: args.threads || 2,
  flashAttention: false,
  experimentalKvCacheKeyType: "F32",
  experimentalKvCacheValueType: "F32",
});

let prompt = model.tokenize(args.prompt, false);
if (model.tokens.bos != null && model.tokens.shouldPrependBosToken) prompt = [model.tokens.bos, ...prompt];

// Greedy generation.
const seq = context.getSequence();
const tokens = [];
for await (const t of seq.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
  tokens.push(t);
  if (tokens.length >= args.n || model.isEogToken(t)) break;
}

// Teacher-forced distributions at every generated position.
seq.dispose();
const seq2 = context.getSequence();
const all = [...prompt, ...tokens];
const input = all.map((t, i) => (i >= prompt.length - 1 && i < all.length - 1)
  ? [t, { generateNext: { probabilities: true } }]
  : t);
const res = await seq2.controlledEvaluate(input);
const steps = [];
let last = null;
for (let i = prompt.length - 1; i < all.length - 1; i++) {
  const probs = res[i].next.probabilities;
  const it = probs.entries();
  const top = [it.next().value, it.next().value].filter(Boolean).map(([id, p]) => [id, Math.log(p)]);
  steps.push({ top });
  if (i === prompt.length - 1) {
    last = new Array(model.tokens.size ?? probs.size).fill(-Infinity);
    for (const [id, p] of probs) last[id] = Math.log(p);
  }
}
const clean = (a) => a.map((x) => (Number.isFinite(x) ? x : -1e30));
const json = JSON.stringify({ prompt_tokens: prompt, tokens, steps, last_logprobs: clean(last || []) }) + "\n";
await context.dispose();
await model.dispose();
// Writes to a pipe are asynchronous: exit only once the output is flushed.
process.stdout.write(json, () => process.exit(0));
