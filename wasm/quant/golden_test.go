package quant

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
)

// TestAgainstLlamaCppGoldens decodes seeded random blocks of every type and
// compares with what llama.cpp's gguf-py decodes from the same bytes
// (testdata/goldens.json, made by scripts/quant-goldens.py). Random bytes
// exercise every bit of every field, so a layout mistake shows here even
// where our quantizer and dequantizer would agree with each other.
func TestAgainstLlamaCppGoldens(t *testing.T) {
	raw, err := os.ReadFile("testdata/goldens.json")
	require.NoError(t, err)
	var goldens map[string]struct {
		Blocks string    `json:"blocks"`
		Values []float64 `json:"values"`
	}
	require.NoError(t, json.Unmarshal(raw, &goldens))
	require.Len(t, goldens, len(Supported)-1, "every supported type but F32")
	for name, g := range goldens {
		t.Run(name, func(t *testing.T) {
			typ, ok := gguf.TypeByName(name)
			require.True(t, ok)
			blocks, err := hex.DecodeString(g.Blocks)
			require.NoError(t, err)
			got := make([]float32, len(g.Values))
			require.NoError(t, Dequantize(typ, blocks, got))
			bad := 0
			for i, want := range g.Values {
				// gguf-py computes in float32 numpy, in a different order for
				// some types (e.g. (d·sc)·q vs d·(sc·q)): allow 2 ulps.
				tol := 2 * math.Abs(want) * (1.0 / (1 << 23))
				if math.Abs(float64(got[i])-want) > tol {
					if bad < 5 {
						t.Errorf("element %d (block %d, index %d): got %g, llama.cpp %g", i, i/typ.BlockSize(), i%typ.BlockSize(), got[i], want)
					}
					bad++
				}
			}
			assert.Zero(t, bad, "%d of %d elements differ", bad, len(g.Values))
		})
	}
}
