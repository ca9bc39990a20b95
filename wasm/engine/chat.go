package engine

import (
	"fmt"
	"strings"
	"sync"

	"github.com/ardanlabs/jinja"
	"github.com/webinfer/webinfer/wasm/model"
)

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"` // "system", "user" or "assistant"
	Content string `json:"content"`
}

// DefaultChatTemplate is the template of a model without one (ChatML, as
// llama.cpp falls back to).
const DefaultChatTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// templates caches compiled chat templates by source: a model's template
// is compiled once, however many requests use it.
var templates sync.Map // string → compiled

type compiled struct {
	t   *jinja.Template
	err error
}

// ApplyChatTemplate renders messages with the model's own chat template
// (tokenizer.chat_template, a Jinja program; DefaultChatTemplate when the
// model has none), ending with the assistant's turn opened. A template
// that does not compile or render is the model's fault (model.ErrBadModel).
func ApplyChatTemplate(m *model.Model, msgs []Message) (string, error) {
	tok := m.Tokenizer
	bos, eos := "", ""
	if tok.BOS >= 0 {
		bos = tok.Text(tok.BOS)
	}
	if tok.EOS >= 0 {
		eos = tok.Text(tok.EOS)
	}
	out, err := RenderChat(m.ChatTemplate, msgs, bos, eos)
	if err != nil {
		return "", fmt.Errorf("%w: %w", model.ErrBadModel, err)
	}
	// The tokenizer adds the BOS itself; a template that writes it too
	// would double it (llama.cpp drops it the same way).
	if tok.AddBOS && bos != "" {
		out = strings.TrimPrefix(out, bos)
	}
	return out, nil
}

// RenderChat renders messages with template (Jinja; "" is
// DefaultChatTemplate) as Hugging Face's apply_chat_template does with
// add_generation_prompt: the variables messages, add_generation_prompt,
// bos_token and eos_token.
func RenderChat(template string, msgs []Message, bos, eos string) (string, error) {
	if template == "" {
		template = DefaultChatTemplate
	}
	v, ok := templates.Load(template)
	if !ok {
		t, err := jinja.Compile(template)
		v, _ = templates.LoadOrStore(template, compiled{t, err})
	}
	c := v.(compiled)
	if c.err != nil {
		return "", fmt.Errorf("engine: the chat template does not compile: %w", c.err)
	}
	list := make([]any, len(msgs))
	for i, m := range msgs {
		list[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	out, err := c.t.Render(map[string]any{"messages": list, "add_generation_prompt": true, "bos_token": bos, "eos_token": eos})
	if err != nil {
		return "", fmt.Errorf("engine: the chat template does not render: %w", err)
	}
	return out, nil
}
