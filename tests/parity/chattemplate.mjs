// chattemplate.mjs: renders a chat with a Jinja chat template the way
// node-llama-cpp does (JinjaTemplateChatWrapper, @huggingface/jinja), for
// the parity test of our template rendering (wasm/engine.RenderChat):
//
//   node tests/parity/chattemplate.mjs '{"template":"...","messages":[{"role":"user","content":"Hi"}],"bos":"<s>","eos":"</s>"}'
//
// Out: the rendered text on stdout, the generation prompt opened; its BOS
// and EOS special tokens written as the texts given.
import { JinjaTemplateChatWrapper } from "node-llama-cpp";

const args = JSON.parse(process.argv[2]);
const wrapper = new JinjaTemplateChatWrapper({ template: args.template, trimLeadingWhitespaceInResponses: false, convertUnsupportedSystemMessagesToUserMessages: false });
const chatHistory = args.messages.map((m) =>
  m.role === "assistant" ? { type: "model", response: [m.content] } : { type: m.role, text: m.content });
chatHistory.push({ type: "model", response: [] }); // the assistant's turn, opened
const { contextText } = wrapper.generateContextState({ chatHistory });
const special = { BOS: args.bos, EOS: args.eos };
const text = contextText.toJSON().map((v) => (typeof v === "string" ? v : v.type === "specialToken" ? special[v.value] ?? "" : v.value)).join("");
process.stdout.write(text);
