package synth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/webinfer/webinfer/wasm/gguf"
)

// ErrNoVocabularies means llama.cpp's vocabulary files are not unpacked
// (scripts/setup.sh test unpacks them into .cache/llama.cpp/models).
var ErrNoVocabularies = errors.New("synth: llama.cpp's vocabularies are missing (run scripts/setup.sh test)")

// RepoRoot finds the checkout's top folder from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("synth: not inside the webinfer checkout")
		}
		dir = parent
	}
}

// VocabDir is where llama.cpp's ggml-vocab-*.gguf files are.
func VocabDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".cache", "llama.cpp", "models")
	if _, err := os.Stat(dir); err != nil {
		return "", ErrNoVocabularies
	}
	return dir, nil
}

// Cached returns the path of the preset's model in type t with seed, made
// on first use under .cache/models and reused after (a model is a few MB
// to a GB; making one takes up to a minute).
func Cached(preset string, t gguf.Type, seed uint64) (string, error) {
	s, ok := Presets[preset]
	if !ok {
		return "", fmt.Errorf("synth: no preset %q", preset)
	}
	vdir, err := VocabDir()
	if err != nil {
		return "", err
	}
	root, _ := RepoRoot()
	dir := filepath.Join(root, ".cache", "models")
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-s%d.gguf", preset, t, seed))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	s.Type, s.Seed, s.Name = t, seed, fmt.Sprintf("%s-%s", preset, t)
	return path, WriteFile(path, s, filepath.Join(vdir, s.VocabFile))
}

// WriteFile writes the model of s to path, its vocabulary from vocabPath.
// It writes to a temporary file first, so a crash leaves no half model.
func WriteFile(path string, s Spec, vocabPath string) error {
	vf, fh, err := gguf.Open(vocabPath)
	if err != nil {
		return err
	}
	fh.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".synth-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := Write(tmp, s, vf); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
