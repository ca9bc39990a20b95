package tokenizer

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
)

func TestSpecialTokensAndBOS(t *testing.T) {
	tok := loadVocab(t, filepath.Join(llamaCppModels(t), "ggml-vocab-llama-bpe.gguf"))
	assert.True(t, tok.AddBOS)
	text := "<|start_header_id|>user<|end_header_id|>"
	plain := tok.Encode(text, false, false)
	parsed := tok.Encode(text, false, true)
	assert.Len(t, parsed, 3, "control tokens parsed: %v", parsed)
	assert.Greater(t, len(plain), 3, "control tokens left as text without parseSpecial")
	withBOS := tok.Encode("hi", true, false)
	assert.Equal(t, tok.BOS, withBOS[0])
	assert.Equal(t, "hi", tok.Decode(withBOS), "BOS decodes to nothing")
	assert.Equal(t, "<|start_header_id|>", string(tok.Piece(parsed[0], true)))
	assert.Empty(t, tok.Piece(parsed[0], false))
	eot, ok := tok.toID["<|eot_id|>"]
	require.True(t, ok)
	assert.True(t, tok.IsEOG(eot))
	assert.True(t, tok.IsEOG(tok.EOS))
}

func TestSPMByteFallbackAndDecode(t *testing.T) {
	tok := loadVocab(t, filepath.Join(llamaCppModels(t), "ggml-vocab-llama-spm.gguf"))
	for _, s := range []string{"Hello world", " leading space", "🦙 llama", "\x01ctl", "naïve café"} {
		ids := tok.Encode(s, true, false)
		assert.Equal(t, tok.BOS, ids[0])
		assert.Equal(t, s, tok.Decode(ids[1:]), "round trip of %q", s)
	}
}

func TestDecoderNeverSplitsUTF8(t *testing.T) {
	tok := loadVocab(t, filepath.Join(llamaCppModels(t), "ggml-vocab-llama-spm.gguf"))
	text := "emoji 🦙 and 日本語 text"
	ids := tok.Encode(text, false, false)
	d := tok.NewDecoder()
	var b strings.Builder
	for _, id := range ids {
		piece := d.Next(id)
		assert.True(t, isValidUTF8(piece), "piece %q", piece)
		b.WriteString(piece)
	}
	b.WriteString(d.Flush())
	assert.Equal(t, text, b.String())
}

func isValidUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestCompleteUTF8(t *testing.T) {
	llama := []byte("🦙") // 4 bytes
	for cut := 0; cut <= 4; cut++ {
		b := append([]byte("a"), llama[:cut]...)
		want := 1
		if cut == 4 || cut == 0 {
			want = len(b)
		}
		assert.Equal(t, want, completeUTF8(b), "cut %d", cut)
	}
	assert.Equal(t, 2, completeUTF8([]byte{'a', 0xff}), "invalid bytes pass through")
}

func TestFromGGUFErrors(t *testing.T) {
	mk := func(kv map[string]gguf.Value) *gguf.File {
		w := gguf.NewWriter()
		for k, v := range kv {
			w.Set(k, v)
		}
		var buf strings.Builder
		_ = buf
		data := writeFile(t, w)
		f, _, err := gguf.Read(strings.NewReader(string(data)))
		require.NoError(t, err)
		return f
	}
	cases := []struct {
		name string
		kv   map[string]gguf.Value
		err  string
	}{
		{"no model", map[string]gguf.Value{}, "no tokenizer.ggml.model"},
		{"bert", map[string]gguf.Value{"tokenizer.ggml.model": gguf.String("bert")}, `unsupported tokenizer: model "bert"`},
		{"unknown pre", map[string]gguf.Value{"tokenizer.ggml.model": gguf.String("gpt2"), "tokenizer.ggml.pre": gguf.String("klingon")}, `pre-tokenizer "klingon"`},
		{"no tokens", map[string]gguf.Value{"tokenizer.ggml.model": gguf.String("llama")}, "no tokenizer.ggml.tokens"},
		{"scores mismatch", map[string]gguf.Value{"tokenizer.ggml.model": gguf.String("llama"), "tokenizer.ggml.tokens": gguf.Strings([]string{"a", "b"}), "tokenizer.ggml.scores": gguf.Float32s([]float32{1})}, "1 entries for 2 tokens"},
		{"no merges", map[string]gguf.Value{"tokenizer.ggml.model": gguf.String("gpt2"), "tokenizer.ggml.pre": gguf.String("gpt-2"), "tokenizer.ggml.tokens": gguf.Strings([]string{"a"})}, "needs tokenizer.ggml.merges"},
		{"bad bos", map[string]gguf.Value{"tokenizer.ggml.model": gguf.String("llama"), "tokenizer.ggml.tokens": gguf.Strings([]string{"a"}), "tokenizer.ggml.bos_token_id": gguf.Uint32(9)}, "is not a token id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromGGUF(mk(tc.kv))
			assert.ErrorContains(t, err, tc.err)
		})
	}
}

func writeFile(t *testing.T, w *gguf.Writer) []byte {
	var b strings.Builder
	_, err := w.WriteTo(&b)
	require.NoError(t, err)
	return []byte(b.String())
}

func TestPreTokenizers(t *testing.T) {
	words := func(s splitter, text string) []string {
		c := []rune(text)
		var out []string
		pos := 0
		for _, n := range s(c) {
			out = append(out, string(c[pos:pos+n]))
			pos += n
		}
		return out
	}
	assert.Equal(t, []string{"Hello", " world", "'s", " 12345", "  ", " x"}, words(splitGPT2, "Hello world's 12345   x"))
	assert.Equal(t, []string{"Hello", " world", "'S", " ", "123", "45", "\n\n", "x"}, words(splitLlama3(3), "Hello world'S 12345\n\nx"))
	assert.Equal(t, []string{"a", "1", "2", "b"}, words(splitDigits, "a12b"))
	assert.Equal(t, []string{"x", " ", "1", "2"}, words(chain(splitDigits, splitGPT2), "x 12"))
}
