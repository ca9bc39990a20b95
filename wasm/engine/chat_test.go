package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/synth"
)

// The chat templates of real models, rendered by the Jinja engine: the
// templates of SmolLM2 and TinyLlama (testdata/chat, as their
// tokenizer_config.json has them), and Qwen2.5's and Llama 3.x's from
// llama.cpp's own collection (.cache/llama.cpp/models/templates, unpacked
// by scripts/setup.sh test). tests/parity checks the same renderings
// against node-llama-cpp's.

var chatTurns = []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello."}, {Role: "user", Content: "Who made the light?"}}

// ChatTemplateCases are the real templates and what they render
// chatTurns to (BOS "<s>", EOS "</s>").
func chatTemplateCases(t testing.TB) []struct{ Name, Path, Want, Vocab string } {
	root, err := synth.RepoRoot()
	require.NoError(t, err)
	llamacpp := filepath.Join(root, ".cache", "llama.cpp", "models", "templates")
	return []struct{ Name, Path, Want, Vocab string }{
		{"SmolLM2", filepath.Join("testdata", "chat", "SmolLM2-Instruct.jinja"),
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nWho made the light?<|im_end|>\n<|im_start|>assistant\n", "ggml-vocab-gpt-2.gguf"},
		{"TinyLlama", filepath.Join("testdata", "chat", "TinyLlama-1.1B-Chat-v1.0.jinja"),
			"<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n<|user|>\nWho made the light?</s>\n<|assistant|>\n", "ggml-vocab-llama-spm.gguf"},
		{"Qwen2.5", filepath.Join(llamacpp, "Qwen-Qwen2.5-7B-Instruct.jinja"),
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nWho made the light?<|im_end|>\n<|im_start|>assistant\n", "ggml-vocab-qwen2.gguf"},
		{"Llama3.1", filepath.Join(llamacpp, "meta-llama-Llama-3.1-8B-Instruct.jinja"),
			"<s><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho made the light?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "ggml-vocab-llama-bpe.gguf"},
	}
}

func readTemplate(t *testing.T, path string) string {
	src, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Skipf("%s is missing (scripts/setup.sh test unpacks llama.cpp's templates)", path)
	}
	require.NoError(t, err)
	return string(src)
}

func TestChatTemplatesOfRealModels(t *testing.T) {
	for _, c := range chatTemplateCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			got, err := RenderChat(readTemplate(t, c.Path), chatTurns, "<s>", "</s>")
			require.NoError(t, err)
			assert.Equal(t, c.Want, got)
		})
	}
	// SmolLM2 adds its own system prompt when the chat has none.
	got, err := RenderChat(readTemplate(t, filepath.Join("testdata", "chat", "SmolLM2-Instruct.jinja")), chatTurns[1:2], "", "")
	require.NoError(t, err)
	assert.Equal(t, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", got)
	// No template: ChatML.
	got, err = RenderChat("", chatTurns[:2], "", "")
	require.NoError(t, err)
	assert.Equal(t, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", got)
}

func TestBrokenChatTemplateIsABadModel(t *testing.T) {
	m := tinyModel(t)
	broken := *m
	broken.ChatTemplate = "{% for message in messages %}{{ message['content'] }"
	_, err := NewSequence(&broken, Request{Messages: chatTurns[:2]})
	require.ErrorIs(t, err, model.ErrBadModel)
	assert.Contains(t, err.Error(), "chat template")
}

// The template written into a model file's metadata is the one a chat
// request is rendered with, and the BOS the tokenizer adds is not doubled
// by a template that writes it too.
func TestChatTemplateFromModelMetadata(t *testing.T) {
	vdir, err := synth.VocabDir()
	if err != nil {
		t.Skip(err)
	}
	for _, c := range chatTemplateCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			spec := synth.Presets["tiny"]
			spec.Type, spec.Seed, spec.Name, spec.ChatTemplate = gguf.TypeQ8_0, 1, "chat-"+c.Name, readTemplate(t, c.Path)
			path := filepath.Join(t.TempDir(), "chat.gguf")
			require.NoError(t, synth.WriteFile(path, spec, filepath.Join(vdir, c.Vocab)))
			f, fh, err := gguf.Open(path)
			require.NoError(t, err)
			defer fh.Close()
			m, err := model.Load(f, fh)
			require.NoError(t, err)
			require.Equal(t, spec.ChatTemplate, m.ChatTemplate)
			seq, err := NewSequence(m, Request{Messages: chatTurns})
			require.NoError(t, err)
			text, err := ApplyChatTemplate(m, chatTurns)
			require.NoError(t, err)
			assert.Equal(t, m.Tokenizer.Encode(text, true, true), seq.Prompt())
			bos := 0
			for _, id := range seq.Prompt() {
				if id == m.Tokenizer.BOS {
					bos++
				}
			}
			assert.LessOrEqual(t, bos, 1, "one BOS at most")
		})
	}
}
