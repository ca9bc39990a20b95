// Package synthtest gives tests a synthetic fixture model (package synth):
// its path (made once and cached) or the model loaded, or a skip where llama.cpp's vocabularies
// are missing (scripts/setup.sh test unpacks them).
package synthtest

import (
	"errors"
	"testing"

	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
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

// Model is the cached fixture of preset, typ and seed, loaded (its file
// closed when the test ends).
func Model(t testing.TB, preset string, typ gguf.Type, seed uint64) *model.Model {
	t.Helper()
	f, fh, err := gguf.Open(Path(t, preset, typ, seed))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	m, err := model.Load(f, fh)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
