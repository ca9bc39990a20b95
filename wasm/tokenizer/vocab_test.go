package tokenizer

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
)

// llamaCppModels is where scripts/setup.sh unpacks llama.cpp's source (from
// the npm package node-llama-cpp): its models/ggml-vocab-*.gguf files and
// their .inp/.out test vectors.
func llamaCppModels(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", ".cache", "llama.cpp", "models")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("llama.cpp's vocabularies are missing (%v): scripts/setup.sh test unpacks them", err)
		}
		t.Skipf("llama.cpp's vocabularies are missing: run scripts/setup.sh test (%v)", err)
	}
	return dir
}

func loadVocab(t *testing.T, path string) *Tokenizer {
	f, fh, err := gguf.Open(path)
	require.NoError(t, err)
	fh.Close()
	tok, err := FromGGUF(f)
	require.NoError(t, err)
	return tok
}

// readVocabTests parses llama.cpp's test files as test-tokenizer-0.cpp does:
// inputs separated by "\n__ggml_vocab_test__\n", one output line each.
func readVocabTests(t *testing.T, inp, out string) (inputs []string, want [][]int32) {
	rawIn, err := os.ReadFile(inp)
	require.NoError(t, err)
	rawOut, err := os.ReadFile(out)
	require.NoError(t, err)
	s := string(rawIn)
	const sep = "\n__ggml_vocab_test__\n"
	for len(s) > 0 {
		i := strings.Index(s, sep)
		if i < 0 {
			inputs = append(inputs, s)
			break
		}
		inputs = append(inputs, s[:i])
		s = s[i+len(sep):]
	}
	lines := strings.Split(strings.TrimSuffix(string(rawOut), "\n"), "\n")
	require.Equal(t, len(inputs), len(lines), "inputs and outputs of %s", filepath.Base(inp))
	for _, l := range lines {
		var ids []int32
		for _, f := range strings.Fields(l) {
			n, err := strconv.Atoi(f)
			require.NoError(t, err)
			ids = append(ids, int32(n))
		}
		want = append(want, ids)
	}
	return inputs, want
}

// TestLlamaCppVocabularies tokenizes llama.cpp's test inputs with each
// vocabulary type we support and requires llama.cpp's exact ids.
func TestLlamaCppVocabularies(t *testing.T) {
	dir := llamaCppModels(t)
	for _, name := range []string{"llama-spm", "phi-3", "llama-bpe", "qwen2", "gpt-2", "starcoder", "refact", "command-r", "mpt"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, "ggml-vocab-"+name+".gguf")
			tok := loadVocab(t, path)
			inputs, want := readVocabTests(t, path+".inp", path+".out")
			failures := 0
			for i, in := range inputs {
				got := tok.Encode(in, false, false)
				if !assert.Equal(t, want[i], nilIfEmpty(got), "input %q", in) {
					failures++
				}
				if tok.Kind == BPE && failures == 0 {
					assert.Equal(t, in, tok.Decode(got), "decode(encode(%q))", in)
				}
			}
			t.Logf("%s: %d inputs, %d failures", name, len(inputs), failures)
		})
	}
}

func nilIfEmpty(ids []int32) []int32 {
	if len(ids) == 0 {
		return nil
	}
	return ids
}
