// The npm `openai` client (pinned in package.json) against webinfer serve:
// one streamed chat completion and one not, printed as JSON for the Go
// test in internal/server (TestOpenAINodeClient).
//
//   node tests/openai/client.mjs http://127.0.0.1:PORT
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.argv[2] + "/v1", apiKey: "unused" });
const messages = [{ role: "user", content: "Hello world" }];
const stream = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 10, temperature: 0, stream: true });
let streamed = "";
let usage = null;
let chunks = 0;
for await (const c of stream) {
  chunks++;
  streamed += c.choices[0]?.delta?.content ?? "";
  if (c.usage) usage = c.usage;
}
const one = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 10, temperature: 0 });
let badOption = null;
try {
  await client.chat.completions.create({ model: "tiny", messages, max_tokens: 0 });
} catch (e) {
  badOption = { status: e.status, code: e.error?.code ?? e.code ?? null };
}
console.log(JSON.stringify({ streamed, chunks, usage, text: one.choices[0].message.content, finish: one.choices[0].finish_reason, badOption }));
