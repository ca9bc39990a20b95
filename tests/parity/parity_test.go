// Package parity checks the engine against llama.cpp (node-llama-cpp's CPU
// build, run by llamacpp.mjs) on synthetic models in every tensor type:
// the prompt's token ids, the greedy token ids, and the logits.
package parity

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/synth"
)

// reference is what llamacpp.mjs prints.
type reference struct {
	PromptTokens []int32 `json:"prompt_tokens"`
	Tokens       []int32 `json:"tokens"`
	Steps        []struct {
		Top [][2]float64 `json:"top"` // [id, log-probability] of the two most likely
	} `json:"steps"`
	LastLogprobs []float64 `json:"last_logprobs"`
}

const genTokens = 32

// nearTie is the top-two log-probability gap under which two correct
// implementations may disagree on the argmax (shared/TESTING.md measured
// disagreements at gaps of about 0.004): there we accept either token.
const nearTie = 0.01

// logitTolerance bounds |our log-softmax − llama.cpp's| at the prompt's last
// position. Both engines quantize activations the same way and accumulate
// in float32, so the differences are float32 rounding in a different order
// (about 1e-6 relative per dot product, growing through the layers and the
// 0.3-wide logit spread) plus f16 rounding of activation scales landing on
// the other side for a few blocks. Measured maxima are 1e-4 to 2e-3
// depending on type; a wrong layout, a wrong rope or a wrong norm shows as
// errors of 0.05 and more.
var logitTolerance = map[gguf.Type]float64{
	gguf.TypeF32: 2e-3,
}

const defaultLogitTolerance = 1e-2

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func runLlamaCpp(t *testing.T, modelPath, prompt string) reference {
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "node_modules", "node-llama-cpp")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node-llama-cpp is not installed: scripts/setup.sh test installs it")
		}
		t.Skip("node-llama-cpp is not installed: run scripts/setup.sh test")
	}
	args, _ := json.Marshal(map[string]any{"model": modelPath, "prompt": prompt, "n": genTokens, "threads": 2})
	cmd := exec.Command("node", filepath.Join(root, "tests", "parity", "llamacpp.mjs"), string(args))
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("llama.cpp failed: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(out, &ref); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			lo := max(0, int(se.Offset)-80)
			t.Fatalf("llama.cpp output is not JSON: %v near %q", err, out[lo:min(len(out), int(se.Offset)+40)])
		}
		t.Fatal(err)
	}
	return ref
}

func logSoftmax(x []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v) - mx)
	}
	lse := mx + math.Log(sum)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v) - lse
	}
	return out
}

func argmax(x []float32) int32 {
	best := 0
	for i := range x {
		if x[i] > x[best] {
			best = i
		}
	}
	return int32(best)
}

// check compares one model and prompt with llama.cpp.
func check(t *testing.T, modelPath, prompt string, typ gguf.Type) {
	checkMode(t, modelPath, prompt, typ, false)
}

// checkMode is check with exact set to run our engine with f32 activations
// (model.ExactActivations), as the WebGPU backend computes: llama.cpp's
// 8-bit activations then differ by more than rounding, so only the tokens
// are compared (the logits check is skipped).
func checkMode(t *testing.T, modelPath, prompt string, typ gguf.Type, exact bool) {
	ref := runLlamaCpp(t, modelPath, prompt)
	f, fh, err := gguf.Open(modelPath)
	require.NoError(t, err)
	defer fh.Close()
	m, err := model.Load(f, fh)
	require.NoError(t, err)
	m.ExactActivations = exact

	ids := m.Tokenizer.Encode(prompt, true, false)
	require.Equal(t, ref.PromptTokens, ids, "prompt token ids")

	// Teacher-forced: feed llama.cpp's tokens; at each step our argmax must
	// be llama.cpp's token unless its top two were a near tie.
	st := m.NewState(len(ids) + genTokens + 1)
	logits, err := m.Forward(st, ids)
	require.NoError(t, err)

	ours := logSoftmax(logits)
	require.Len(t, ref.LastLogprobs, len(ours))
	worst, sum, n, worstAt := 0.0, 0.0, 0, 0
	for i, lp := range ref.LastLogprobs {
		if lp < -1e29 {
			continue
		}
		d := math.Abs(ours[i] - lp)
		if d > worst {
			worst, worstAt = d, i
		}
		sum += d
		n++
	}
	t.Logf("mean |diff| %.2e; worst at token %d (ours %.4f, llama.cpp %.4f)", sum/float64(n), worstAt, ours[worstAt], ref.LastLogprobs[worstAt])
	tol, ok := logitTolerance[typ]
	if !ok {
		tol = defaultLogitTolerance
	}
	// Rounding differences compound through the blocks (the residual
	// stream carries them on): allow more for deep models.
	tol *= math.Max(1, float64(m.Blocks)/8)
	if exact {
		t.Logf("last-position log-softmax: max |ours − llama.cpp| = %.2e (f32 activations: not checked)", worst)
	} else {
		t.Logf("last-position log-softmax: max |ours − llama.cpp| = %.2e (tolerance %.0e, mean %.0e)", worst, tol, tol/4)
		assert.LessOrEqual(t, worst, tol)
		assert.LessOrEqual(t, sum/float64(n), tol/4)
	}

	ties, agree := 0, 0
	for i, want := range ref.Tokens {
		got := argmax(logits)
		gap := math.Inf(1)
		if top := ref.Steps[i].Top; len(top) == 2 {
			gap = top[0][1] - top[1][1]
		}
		if got != want {
			if gap < nearTie {
				ties++
			} else {
				t.Errorf("step %d: our argmax %d, llama.cpp's %d (its top-two gap %.4f)", i, got, want, gap)
				break
			}
		} else {
			agree++
		}
		if i+1 < len(ref.Tokens) {
			logits, err = m.Forward(st, []int32{want})
			require.NoError(t, err)
		}
	}
	t.Logf("%d/%d greedy tokens identical, %d near ties", agree, len(ref.Tokens), ties)
	if ties == 0 {
		assert.GreaterOrEqual(t, len(ref.Tokens), genTokens, "llama.cpp stopped early")
	}
}

var prompts = []string{
	"The quick brown fox jumps over the lazy dog.",
	"Once upon a time, in a land far away, 12345 people lived happily. ¿Qué tal? 🦙",
}

// TestParityEveryType runs the tiny llama in every supported type.
func TestParityEveryType(t *testing.T) {
	for _, typ := range []gguf.Type{
		gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_1,
		gguf.TypeQ5_0, gguf.TypeQ5_1, gguf.TypeQ2_K, gguf.TypeQ3_K, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K,
	} {
		t.Run(typ.String(), func(t *testing.T) {
			check(t, cachedModel(t, "tiny", typ), prompts[0], typ)
		})
	}
}

// TestParityArchitectures covers qwen2 (biases, NeoX rope, Qwen2's BPE),
// Llama 3 (rope frequency factors, llama-bpe), and SmolLM2-135M's shape.
func TestParityArchitectures(t *testing.T) {
	cases := []struct {
		preset string
		typ    gguf.Type
	}{
		{"qwen2", gguf.TypeQ8_0},
		{"qwen2", gguf.TypeQ4_K},
		{"llama3", gguf.TypeQ6_K},
		{"llama3", gguf.TypeF16},
		{"smol135", gguf.TypeQ8_0},
	}
	for _, tc := range cases {
		for i, p := range prompts {
			t.Run(fmt.Sprintf("%s/%s/prompt%d", tc.preset, tc.typ, i), func(t *testing.T) {
				check(t, cachedModel(t, tc.preset, tc.typ), p, tc.typ)
			})
		}
	}
}

// TestParityDefaultModel checks the committed default model (trained on
// the King James Bible) in both of its types, on its kind of prompt.
func TestParityDefaultModel(t *testing.T) {
	for _, c := range []struct {
		file string
		typ  gguf.Type
	}{{"kjv-q8_0.gguf", gguf.TypeQ8_0}, {"kjv-f16.gguf", gguf.TypeF16}} {
		for i, p := range []string{"And God said", "In the beginning"} {
			t.Run(fmt.Sprintf("%s/prompt%d", c.file, i), func(t *testing.T) {
				check(t, filepath.Join(repoRoot(t), "assets", "models", c.file), p, c.typ)
			})
		}
	}
}

// TestParityDefaultModelF32Activations checks the default model's greedy
// tokens with f32 activations (the arithmetic of the WebGPU backend, which
// the browser tests check against this same path) against llama.cpp's.
func TestParityDefaultModelF32Activations(t *testing.T) {
	for i, p := range []string{"And God said", "In the beginning"} {
		t.Run(fmt.Sprintf("prompt%d", i), func(t *testing.T) {
			checkMode(t, filepath.Join(repoRoot(t), "assets", "models", "kjv-q8_0.gguf"), p, gguf.TypeQ8_0, true)
		})
	}
}

func cachedModel(t *testing.T, preset string, typ gguf.Type) string {
	path, err := synth.Cached(preset, typ, 1)
	if errors.Is(err, synth.ErrNoVocabularies) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	require.NoError(t, err)
	return path
}

// TestChatTemplatesMatchNodeLlamaCpp renders a chat with the real chat
// templates of SmolLM2, TinyLlama, Qwen2.5 and Llama 3.1 and 3.2 through our
// Jinja rendering (engine.RenderChat) and through node-llama-cpp's: the
// same text.
func TestChatTemplatesMatchNodeLlamaCpp(t *testing.T) {
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "node_modules", "node-llama-cpp")); err != nil {
		t.Skip("node-llama-cpp is not installed: run scripts/setup.sh test")
	}
	msgs := []engine.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello."}, {Role: "user", Content: "Who made the light?"}}
	llamacpp := filepath.Join(root, ".cache", "llama.cpp", "models", "templates")
	for name, path := range map[string]string{
		"SmolLM2":   filepath.Join(root, "wasm", "engine", "testdata", "chat", "SmolLM2-Instruct.jinja"),
		"TinyLlama": filepath.Join(root, "wasm", "engine", "testdata", "chat", "TinyLlama-1.1B-Chat-v1.0.jinja"),
		"Qwen2.5":   filepath.Join(llamacpp, "Qwen-Qwen2.5-7B-Instruct.jinja"),
		"Llama3.1":  filepath.Join(llamacpp, "meta-llama-Llama-3.1-8B-Instruct.jinja"),
		"Llama3.3":  filepath.Join(llamacpp, "meta-llama-Llama-3.3-70B-Instruct.jinja"),
	} {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			require.NoError(t, err)
			ours, err := engine.RenderChat(string(src), msgs, "<s>", "</s>")
			require.NoError(t, err)
			args, _ := json.Marshal(map[string]any{"template": string(src), "messages": msgs, "bos": "<s>", "eos": "</s>"})
			cmd := exec.Command("node", filepath.Join(root, "tests", "parity", "chattemplate.mjs"), string(args))
			cmd.Dir = root
			theirs, err := cmd.Output()
			if ee, ok := err.(*exec.ExitError); ok {
				t.Fatalf("node-llama-cpp: %v\n%s", err, ee.Stderr)
			}
			require.NoError(t, err)
			assert.Equal(t, string(theirs), ours)
		})
	}
}
