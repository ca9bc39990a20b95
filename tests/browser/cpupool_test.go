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
func TestCPUPoolTokensEveryType(t *testing.T) {
	ts := startServer(t)
	all := []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_K, gguf.TypeQ6_K, gguf.TypeF16, gguf.TypeF32}
	for _, e := range engines {
		types := all
		if e.name != "chromium" {
			types = []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ4_K, gguf.TypeF16}
		}
		for _, typ := range types {
			t.Run(fmt.Sprintf("%s/%s", e.name, typ), func(t *testing.T) {
				path, err := synth.Cached("tiny", typ, 1)
				require.NoError(t, err)
				const prompt, n = "In the beginning", 16
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
