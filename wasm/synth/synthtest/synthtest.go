// Package synthtest gives tests a synthetic fixture model (package synth):
// its path, made once and cached, or a skip where llama.cpp's vocabularies
// are missing (scripts/setup.sh test unpacks them).
package synthtest

import (
	"errors"
	"testing"

	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/synth"
)

// Path is the cached fixture of preset, typ and seed.
func Path(t testing.TB, preset string, typ gguf.Type, seed uint64) string {
	t.Helper()
	path, err := synth.Cached(preset, typ, seed)
	if errors.Is(err, synth.ErrNoVocabularies) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}
