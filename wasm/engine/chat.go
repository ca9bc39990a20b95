package engine

import (
	"strings"

	"github.com/webinfer/webinfer/wasm/model"
)

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"` // "system", "user" or "assistant"
	Content string `json:"content"`
}

// ChatFormat names a family of chat templates.
type ChatFormat string

const (
	ChatML ChatFormat = "chatml" // <|im_start|>role\n...<|im_end|> (Qwen2, SmolLM2)
	Llama3 ChatFormat = "llama3" // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
	Llama2 ChatFormat = "llama2" // [INST] ... [/INST]
	Zephyr ChatFormat = "zephyr" // <|user|>\n...</s> (TinyLlama chat)
)

// detectTemplate recognises a Jinja chat template (tokenizer.chat_template)
// by its markers, as llama.cpp's llm_chat_detect_template does; models
// without one get ChatML. We do not run Jinja: these four families cover
// the models we target.
func detectTemplate(t string) ChatFormat {
	switch {
	case strings.Contains(t, "<|start_header_id|>"):
		return Llama3
	case strings.Contains(t, "<|im_start|>"):
		return ChatML
	case strings.Contains(t, "<|user|>"):
		return Zephyr
	case strings.Contains(t, "[INST]"):
		return Llama2
	}
	return ChatML
}

// ApplyChatTemplate renders messages in the model's chat format, ending
// with the assistant's turn opened (the generation prompt).
func ApplyChatTemplate(m *model.Model, msgs []Message) string {
	return Render(m.ChatTemplate, msgs)
}

// Render renders messages in format f.
func Render(f string, msgs []Message) string {
	var b strings.Builder
	switch detectTemplate(f) {
	case Llama3:
		for _, m := range msgs {
			b.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n" + strings.TrimSpace(m.Content) + "<|eot_id|>")
		}
		b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	case Zephyr:
		for _, m := range msgs {
			b.WriteString("<|" + m.Role + "|>\n" + m.Content + "</s>\n")
		}
		b.WriteString("<|assistant|>\n")
	case Llama2:
		system := ""
		for _, m := range msgs {
			switch m.Role {
			case "system":
				system = "<<SYS>>\n" + m.Content + "\n<</SYS>>\n\n"
			case "user":
				b.WriteString("[INST] " + system + strings.TrimSpace(m.Content) + " [/INST]")
				system = ""
			default:
				b.WriteString(" " + m.Content + "</s><s>")
			}
		}
	default:
		for _, m := range msgs {
			b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
		}
		b.WriteString("<|im_start|>assistant\n")
	}
	return b.String()
}
