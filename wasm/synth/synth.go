// Package synth writes synthetic Llama-family GGUF models for tests and
// benchmarks: real vocabularies (copied from a GGUF vocabulary file, such as
// llama.cpp's models/ggml-vocab-*.gguf), realistic shapes, seeded random
// weights in any supported tensor type.
//
// In: a Spec and a vocabulary file. Out: a GGUF file that llama.cpp and our
// engine both load.
//
// The weights follow shared/TESTING.md's recipe for stable greedy output:
// an untied token embedding with std 6 (300× the other weights), so the
// hidden state is dominated by an exact lookup, and Q/K projections scaled
// by 2.5 so attention is peaked. Near-ties between the top two logits are
// then rare and two correct implementations agree token for token.
package synth

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/quant"
)

// Spec describes a model to make.
type Spec struct {
	Name      string
	Arch      string // "llama" or "qwen2"
	Embd      int
	Blocks    int
	Heads     int
	HeadsKV   int
	FF        int
	CtxTrain  int
	RopeBase  float32
	Type      gguf.Type // of the 2-D weights (norms are always F32)
	Seed      uint64
	Tied      bool    // output projection = token embedding
	EmbdStd   float64 // token embedding std (default 6)
	QKScale   float64 // multiplier of the Q/K weights' std (default 2.5)
	RopeFreqs bool    // write a rope_freqs.weight (Llama 3 style)
	VocabFile string  // GGUF file whose tokenizer.* metadata is copied
	MaxVocab  int     // 0: the whole vocabulary
	// ChatTemplate, when set, is written as tokenizer.chat_template (over
	// the vocabulary file's).
	ChatTemplate string
	weightsStd   float64
}

// Presets are the shapes the tests and benchmarks use.
var Presets = map[string]Spec{
	// A tiny llama with SentencePiece vocabulary; dims are multiples of
	// 256 so every K-quant applies.
	"tiny": {Arch: "llama", Embd: 256, Blocks: 2, Heads: 4, HeadsKV: 2, FF: 512, CtxTrain: 2048, RopeBase: 10000, VocabFile: "ggml-vocab-llama-spm.gguf"},
	// SmolLM2-135M's shape with the GPT-2 vocabulary.
	"smol135": {Arch: "llama", Embd: 576, Blocks: 30, Heads: 9, HeadsKV: 3, FF: 1536, CtxTrain: 8192, RopeBase: 100000, VocabFile: "ggml-vocab-gpt-2.gguf"},
	// A qwen2-shaped model (Q/K/V biases, NeoX rope) with Qwen2's vocabulary.
	"qwen2": {Arch: "qwen2", Embd: 256, Blocks: 2, Heads: 4, HeadsKV: 2, FF: 512, CtxTrain: 4096, RopeBase: 1000000, VocabFile: "ggml-vocab-qwen2.gguf"},
	// A Llama 3 style model (llama-bpe vocabulary, rope frequency factors).
	"llama3": {Arch: "llama", Embd: 256, Blocks: 2, Heads: 4, HeadsKV: 1, FF: 768, CtxTrain: 8192, RopeBase: 500000, RopeFreqs: true, VocabFile: "ggml-vocab-llama-bpe.gguf"},
	// Llama-3.2-1B's shape, for benchmarks.
	"llama1b": {Arch: "llama", Embd: 2048, Blocks: 16, Heads: 32, HeadsKV: 8, FF: 8192, CtxTrain: 8192, RopeBase: 500000, RopeFreqs: true, Tied: true, EmbdStd: 1, VocabFile: "ggml-vocab-llama-bpe.gguf"},
}

// Write makes the model and writes it to w.
func Write(w io.Writer, s Spec, vocab *gguf.File) error {
	if s.EmbdStd == 0 {
		s.EmbdStd = 6
	}
	if s.QKScale == 0 {
		s.QKScale = 2.5
	}
	s.weightsStd = 0.02
	if s.Name == "" {
		s.Name = "synthetic"
	}
	out := gguf.NewWriter()
	arch := s.Arch
	out.Set("general.architecture", gguf.String(arch))
	out.Set("general.name", gguf.String(s.Name))
	out.Set("general.file_type", gguf.Uint32(fileType(s.Type)))
	out.Set(arch+".context_length", gguf.Uint32(uint32(s.CtxTrain)))
	out.Set(arch+".embedding_length", gguf.Uint32(uint32(s.Embd)))
	out.Set(arch+".block_count", gguf.Uint32(uint32(s.Blocks)))
	out.Set(arch+".feed_forward_length", gguf.Uint32(uint32(s.FF)))
	out.Set(arch+".attention.head_count", gguf.Uint32(uint32(s.Heads)))
	out.Set(arch+".attention.head_count_kv", gguf.Uint32(uint32(s.HeadsKV)))
	out.Set(arch+".attention.layer_norm_rms_epsilon", gguf.Float32(1e-5))
	out.Set(arch+".rope.freq_base", gguf.Float32(s.RopeBase))
	headDim := s.Embd / s.Heads
	out.Set(arch+".rope.dimension_count", gguf.Uint32(uint32(headDim)))

	nVocab := 0
	for _, kv := range vocab.Metadata {
		if !strings.HasPrefix(kv.Key, "tokenizer.") {
			continue
		}
		v := kv.Value
		if s.MaxVocab > 0 && v.Type == gguf.ValueArray && kv.Key != "tokenizer.ggml.merges" {
			v = truncate(v, s.MaxVocab)
		}
		if kv.Key == "tokenizer.ggml.tokens" {
			nVocab = v.Len()
		}
		out.Set(kv.Key, v)
	}
	if nVocab == 0 {
		return fmt.Errorf("synth: the vocabulary file has no tokenizer.ggml.tokens")
	}
	out.Set(arch+".vocab_size", gguf.Uint32(uint32(nVocab)))
	if s.ChatTemplate != "" {
		out.Set("tokenizer.chat_template", gguf.String(s.ChatTemplate))
	}

	rng := rand.New(rand.NewPCG(s.Seed, 0x5eed))
	normal := func(n int, std float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * std)
		}
		return x
	}
	ones := func(n int) []float32 {
		x := normal(n, 0.05)
		for i := range x {
			x[i] += 1
		}
		return x
	}
	add := func(name string, t gguf.Type, x []float32, dims ...int64) error {
		data, err := quant.Quantize(t, x)
		if err != nil {
			return fmt.Errorf("synth: %s: %w", name, err)
		}
		return out.AddTensor(name, t, dims, data)
	}
	E, F, kvDim := int64(s.Embd), int64(s.FF), int64(s.HeadsKV*headDim)
	std := s.weightsStd
	if err := add("token_embd.weight", s.Type, normal(nVocab*s.Embd, s.EmbdStd), E, int64(nVocab)); err != nil {
		return err
	}
	if err := add("output_norm.weight", gguf.TypeF32, ones(s.Embd), E); err != nil {
		return err
	}
	if !s.Tied {
		if err := add("output.weight", s.Type, normal(nVocab*s.Embd, std), E, int64(nVocab)); err != nil {
			return err
		}
	}
	if s.RopeFreqs {
		f := make([]float32, headDim/2)
		for i := range f {
			f[i] = 1 + float32(i)/float32(len(f)) // smoothly rising divisors, as Llama 3's
		}
		if err := add("rope_freqs.weight", gguf.TypeF32, f, int64(len(f))); err != nil {
			return err
		}
	}
	for b := 0; b < s.Blocks; b++ {
		p := fmt.Sprintf("blk.%d.", b)
		tensors := []tensorSpec{
			{"attn_norm.weight", gguf.TypeF32, ones(s.Embd), []int64{E}},
			{"attn_q.weight", s.Type, normal(s.Embd*s.Embd, std*s.QKScale), []int64{E, E}},
			{"attn_k.weight", s.Type, normal(s.Embd*int(kvDim), std*s.QKScale), []int64{E, kvDim}},
			{"attn_v.weight", s.Type, normal(s.Embd*int(kvDim), std), []int64{E, kvDim}},
			{"attn_output.weight", s.Type, normal(s.Embd*s.Embd, std), []int64{E, E}},
			{"ffn_norm.weight", gguf.TypeF32, ones(s.Embd), []int64{E}},
			{"ffn_gate.weight", s.Type, normal(s.Embd*s.FF, std), []int64{E, F}},
			{"ffn_up.weight", s.Type, normal(s.Embd*s.FF, std), []int64{E, F}},
			{"ffn_down.weight", s.Type, normal(s.Embd*s.FF, std), []int64{F, E}},
		}
		if s.Arch == "qwen2" {
			tensors = append(tensors,
				tensorSpec{"attn_q.bias", gguf.TypeF32, normal(s.Embd, 0.1), []int64{E}},
				tensorSpec{"attn_k.bias", gguf.TypeF32, normal(int(kvDim), 0.1), []int64{kvDim}},
				tensorSpec{"attn_v.bias", gguf.TypeF32, normal(int(kvDim), 0.1), []int64{kvDim}},
			)
		}
		for _, t := range tensors {
			if err := add(p+t.name, t.t, t.x, t.dims...); err != nil {
				return err
			}
		}
	}
	_, err := out.WriteTo(w)
	return err
}

// tensorSpec is one tensor to write.
type tensorSpec struct {
	name string
	t    gguf.Type
	x    []float32
	dims []int64
}

// truncate keeps the first n elements of an array value.
func truncate(v gguf.Value, n int) gguf.Value {
	switch a := v.Array.(type) {
	case []string:
		v.Array = a[:min(n, len(a))]
	case []float32:
		v.Array = a[:min(n, len(a))]
	case []int32:
		v.Array = a[:min(n, len(a))]
	}
	return v
}

// fileType is general.file_type (llama_ftype) for a model mostly of type t.
func fileType(t gguf.Type) uint32 {
	switch t {
	case gguf.TypeF32:
		return 0
	case gguf.TypeF16:
		return 1
	case gguf.TypeQ4_0:
		return 2
	case gguf.TypeQ4_1:
		return 3
	case gguf.TypeQ8_0:
		return 7
	case gguf.TypeQ5_0:
		return 8
	case gguf.TypeQ5_1:
		return 9
	case gguf.TypeQ2_K:
		return 10
	case gguf.TypeQ3_K:
		return 12 // Q3_K_M
	case gguf.TypeQ4_K:
		return 15 // Q4_K_M
	case gguf.TypeQ5_K:
		return 17 // Q5_K_M
	case gguf.TypeQ6_K:
		return 18
	case gguf.TypeBF16:
		return 32
	}
	return 0
}
