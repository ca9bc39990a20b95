//go:build browser

package browser

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gen "github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/synth"
)

// TestCPUPoolTokensEveryType: the page's CPU path, its products in the
// SIMD128 kernels on the thread pool, generates the native engine's
// greedy tokens on a synthetic model of each type the pool has (the
// native engine is held to llama.cpp's tokens by tests/parity), and its
// report says the pool ran that type's kernel. Chromium runs every type;
// Firefox and WebKit (whose pool is another engine's WebAssembly) three.
// The parity suite's other architectures (tests/parity
// TestParityArchitectures: qwen2's biases and NeoX rope, Llama 3's rope
// frequency factors, in the types it checks them in) run too, with its
// second prompt (digits, accents, an emoji).
func TestCPUPoolTokensEveryType(t *testing.T) {
	ts := startServer(t)
	type fixture struct {
		preset string
		typ    gguf.Type
	}
	var all []fixture
	for _, typ := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_K, gguf.TypeQ6_K, gguf.TypeF16, gguf.TypeF32} {
		all = append(all, fixture{"tiny", typ})
	}
	archs := []fixture{{"qwen2", gguf.TypeQ8_0}, {"qwen2", gguf.TypeQ4_K}, {"llama3", gguf.TypeQ6_K}, {"llama3", gguf.TypeF16}}
	for _, e := range engines {
		fixtures := append(all, archs...)
		if e.name != "chromium" {
			fixtures = []fixture{{"tiny", gguf.TypeQ8_0}, {"tiny", gguf.TypeQ4_K}, {"tiny", gguf.TypeF16}, {"qwen2", gguf.TypeQ4_K}}
		}
		for _, fx := range fixtures {
			typ := fx.typ
			name := typ.String()
			if fx.preset != "tiny" {
				name = fx.preset + "/" + name
			}
			t.Run(fmt.Sprintf("%s/%s", e.name, name), func(t *testing.T) {
				path, err := synth.Cached(fx.preset, typ, 1)
				require.NoError(t, err)
				prompt, n := "In the beginning", 16
				if fx.preset != "tiny" {
					prompt = "Once upon a time, in a land far away, 12345 people lived happily. ¿Qué tal? 🦙"
				}
				want := nativeTokens(t, path, prompt, n)
				u := ts.URL + "/?autorun=1&backend=cpu&temperature=0&maxTokens=" + fmt.Sprint(n) + "&prompt=" + url.QueryEscape(prompt) +
					"&model=" + url.QueryEscape("/test/models/"+filepath.Base(path)) + "&report=" + url.QueryEscape(ts.URL+"/test/result")
				rep := decode[report.Report](t, runInBrowser(t, ts, e, u, ts.fromChannel()))
				require.Empty(t, rep.Errors)
				require.Equal(t, "cpu", rep.Backend)
				require.NotNil(t, rep.CPU, "the report says how the CPU path ran")
				t.Logf("%s %s: pool of %d threads, kernels %s, %.1f tok/s", e.name, typ, rep.CPU.Threads, rep.CPU.Kernels, rep.Metrics.DecodeTokS)
				assert.Positive(t, rep.CPU.Threads, "the pool runs (%s)", rep.CPU.Why)
				assert.Contains(t, rep.CPU.Kernels, typ.String()+":wasm-simd128")
				assert.Equal(t, want, rep.Tokens, "greedy tokens in %s vs native", e.name)
			})
		}
	}
}

// nativeTokens is the native engine's greedy continuation of prompt with
// the model at path.
func nativeTokens(t *testing.T, path, prompt string, n int) []int {
	f, fh, err := gguf.Open(path)
	require.NoError(t, err)
	defer fh.Close()
	m, err := model.Load(f, fh)
	require.NoError(t, err)
	ids := []int{}
	_, err = gen.Generate(context.Background(), m, gen.Request{Prompt: prompt, MaxTokens: n}, func(tk gen.Token) error {
		if tk.ID >= 0 {
			ids = append(ids, int(tk.ID))
		}
		return nil
	})
	require.NoError(t, err)
	return ids
}
