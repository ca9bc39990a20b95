// Package model is the Llama-family forward pass: llama (SmolLM, TinyLlama,
// Llama 3.x with its rope frequency factors) and qwen2 (with Q/K/V biases),
// grouped-query attention, tied or separate output embedding, a KV cache,
// batched prefill and single-token decode, on the CPU path (package cpu).
//
// In: a GGUF file (header and a ReaderAt for the data) and token ids.
// Out: the logits of the last position. Weights stay in their GGUF types:
// every product runs on the quantized blocks.
//
// The arithmetic follows llama.cpp's CPU backend step by step (RMSNorm
// summed in float64, RoPE angles by repeated float32 multiplication,
// llama.cpp's activation quantization for quantized weights) so that our
// logits stay within rounding of its logits and greedy tokens agree.
package model

import (
	"fmt"
	"math"

	"github.com/webinfer/webinfer/wasm/gguf"
)

// Config is the model's shape and hyper-parameters, from GGUF metadata.
type Config struct {
	Arch       string  // "llama" or "qwen2"
	Embd       int     // hidden size
	Blocks     int     // transformer blocks
	Heads      int     // query heads
	HeadsKV    int     // key/value heads (grouped-query attention when < Heads)
	HeadDim    int     // size of one head
	FF         int     // feed-forward hidden size
	Vocab      int     // tokens
	CtxTrain   int     // context length the model was trained for
	RMSEps     float32 // RMSNorm epsilon
	RopeBase   float32 // RoPE frequency base
	RopeDims   int     // dimensions rotated per head
	RopeScale  float32 // position scale (1/factor of linear rope scaling)
	RopeNeoX   bool    // rotate (x[i], x[i+d/2]) pairs rather than (x[2i], x[2i+1])
	QKVBias    bool    // qwen2: biases on the Q, K and V projections
	TiedOutput bool    // the output projection is the token embedding
}

// ConfigFromGGUF reads the model's configuration and checks it is one we
// can run.
func ConfigFromGGUF(f *gguf.File) (Config, error) {
	var c Config
	archV, _ := f.Get("general.architecture")
	c.Arch, _ = archV.Str()
	switch c.Arch {
	case "llama":
	case "qwen2":
		c.RopeNeoX = true
		c.QKVBias = true
	case "":
		return c, fmt.Errorf("no general.architecture")
	default:
		return c, fmt.Errorf("unsupported architecture %q (want llama or qwen2)", c.Arch)
	}
	key := func(k string) string { return c.Arch + "." + k }
	intKey := func(k string, def int, required bool) (int, error) {
		v, ok := f.Get(key(k))
		if !ok {
			if required {
				return 0, fmt.Errorf("missing %s", key(k))
			}
			return def, nil
		}
		n, ok := v.Int()
		if !ok || n <= 0 || n > 1<<30 {
			return 0, fmt.Errorf("%s = %v is not a positive integer", key(k), v)
		}
		return int(n), nil
	}
	floatKey := func(k string, def float64) (float32, error) {
		v, ok := f.Get(key(k))
		if !ok {
			return float32(def), nil
		}
		x, ok := v.Float()
		if !ok || math.IsNaN(x) || x <= 0 {
			return 0, fmt.Errorf("%s = %v is not a positive number", key(k), v)
		}
		return float32(x), nil
	}
	var err error
	if c.Embd, err = intKey("embedding_length", 0, true); err != nil {
		return c, err
	}
	if c.Blocks, err = intKey("block_count", 0, true); err != nil {
		return c, err
	}
	if c.Heads, err = intKey("attention.head_count", 0, true); err != nil {
		return c, err
	}
	if c.HeadsKV, err = intKey("attention.head_count_kv", c.Heads, false); err != nil {
		return c, err
	}
	if c.FF, err = intKey("feed_forward_length", 0, true); err != nil {
		return c, err
	}
	if c.CtxTrain, err = intKey("context_length", 2048, false); err != nil {
		return c, err
	}
	if c.Heads%c.HeadsKV != 0 {
		return c, fmt.Errorf("%d heads is not a multiple of %d key/value heads", c.Heads, c.HeadsKV)
	}
	if c.HeadDim, err = intKey("attention.key_length", c.Embd/c.Heads, false); err != nil {
		return c, err
	}
	if c.RopeDims, err = intKey("rope.dimension_count", c.HeadDim, false); err != nil {
		return c, err
	}
	if c.RopeDims > c.HeadDim || c.RopeDims%2 != 0 {
		return c, fmt.Errorf("rope dimension count %d does not fit head size %d", c.RopeDims, c.HeadDim)
	}
	if c.RMSEps, err = floatKey("attention.layer_norm_rms_epsilon", 1e-5); err != nil {
		return c, err
	}
	if c.RopeBase, err = floatKey("rope.freq_base", 10000); err != nil {
		return c, err
	}
	c.RopeScale = 1
	if v, ok := f.Get(key("rope.scaling.type")); ok {
		if s, _ := v.Str(); s != "none" && s != "linear" {
			return c, fmt.Errorf("unsupported rope scaling %q", s)
		}
	}
	if v, ok := f.Get(key("rope.scaling.factor")); ok {
		if x, ok := v.Float(); ok && x > 0 {
			c.RopeScale = float32(1 / x)
		}
	}
	return c, nil
}

// KVDim is the size of one position's keys (or values) in one layer.
func (c Config) KVDim() int { return c.HeadsKV * c.HeadDim }
