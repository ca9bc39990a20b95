package tokenizer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
)

func TestTrainBPERoundTrips(t *testing.T) {
	corpus := []string{
		"In the beginning God created the heaven and the earth.",
		"And the earth was without form, and void; and darkness was upon the face of the deep.",
		"And God said, Let there be light: and there was light.",
	}
	tokens, merges, err := TrainBPE(corpus, 300, []string{"<|endoftext|>"})
	require.NoError(t, err)
	assert.Equal(t, "<|endoftext|>", tokens[len(tokens)-1])
	assert.LessOrEqual(t, len(tokens), 300)
	assert.NotEmpty(t, merges)
	assert.Contains(t, merges, "t h", "'th' is among the most frequent pairs")

	// Build a tokenizer from it, as a GGUF file would hold it.
	w := gguf.NewWriter()
	types := make([]int32, len(tokens))
	for i := range types {
		types[i] = typeNormal
	}
	types[len(types)-1] = typeControl
	w.Set("tokenizer.ggml.model", gguf.String("gpt2"))
	w.Set("tokenizer.ggml.pre", gguf.String("gpt-2"))
	w.Set("tokenizer.ggml.tokens", gguf.Strings(tokens))
	w.Set("tokenizer.ggml.token_type", gguf.Int32s(types))
	w.Set("tokenizer.ggml.merges", gguf.Strings(merges))
	var b strings.Builder
	_, err = w.WriteTo(&b)
	require.NoError(t, err)
	f, _, err := gguf.Read(strings.NewReader(b.String()))
	require.NoError(t, err)
	tok, err := FromGGUF(f)
	require.NoError(t, err)
	for _, s := range append(corpus, "Unseen wörds: 42!") {
		ids := tok.Encode(s, false, false)
		assert.Equal(t, s, tok.Decode(ids))
		if s == corpus[2] {
			assert.Less(t, len(ids), len(s)/2, "trained text compresses")
		}
	}
}

func TestTrainBPEErrors(t *testing.T) {
	_, _, err := TrainBPE(nil, 100, nil)
	assert.ErrorContains(t, err, "smaller than the 256 bytes")
}
