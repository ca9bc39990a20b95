package kernels

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"text/template"
)

// The kernels of a Llama-family forward pass on WebGPU. Bindings are listed
// in each .wgsl file; Params encode each kernel's uniform block.

//go:embed attention.wgsl
var attentionWGSL string

//go:embed get_rows.wgsl
var getRowsWGSL string

//go:embed argmax.wgsl
var argmaxWGSL string

//go:embed elementwise.wgsl
var elementwiseWGSL string

// Attention is causal attention over one layer's cache, one workgroup of
// wg invocations (64 or 256; head_dim at most 4·wg) per (head, token):
// bindings q, k, v, scores, out, params (AttentionParams), spans
// (AppendSpans), partials (AttentionPartialBytes; unused here, but bound),
// qkv and cs (read when AttentionParams.Fused, bound always). Dispatch
// (heads, batch).
func Attention(wg int) Kernel {
	return Kernel{Name: "attention", WGSL: attentionWGSL, EntryPoint: "main", Constants: map[string]float64{"WG": float64(wg)}}
}

// AttentionChunk is the positions a workgroup of AttentionSplit reads by
// default: as many as a workgroup has invocations.
const AttentionChunk = 256

// AttentionSplit is attention over long contexts (flash-decoding): one
// workgroup per (head, token, chunk of `chunk` positions), each writing a
// partial into partials; AttentionCombine then merges them. Bindings as
// Attention's; AttentionParams with the chunks per (head, token) the
// partials have room for. Dispatch (heads, batch, AttentionChunks(the
// longest span, chunk)); head_dim at most 256.
func AttentionSplit(wg, chunk int) Kernel {
	return Kernel{Name: "attention_split", WGSL: attentionWGSL, EntryPoint: "split", Constants: map[string]float64{"WG": float64(wg), "CHUNK": float64(chunk)}}
}

// AttentionCombine merges AttentionSplit's partials into the output.
// Bindings and params as AttentionSplit's. Dispatch (heads, batch).
func AttentionCombine(wg, chunk int) Kernel {
	return Kernel{Name: "attention_combine", WGSL: attentionWGSL, EntryPoint: "combine", Constants: map[string]float64{"WG": float64(wg), "CHUNK": float64(chunk)}}
}

// AttentionChunks is how many chunks of `chunk` positions cover n.
func AttentionChunks(n, chunk int) int { return (n + chunk - 1) / chunk }

// AttentionPartialBytes is the size of n partials of AttentionSplit.
func AttentionPartialBytes(n int) int64 { return int64(n) * (16 + 64*16) }

// GetRows is the embedding lookup for a matrix of type typ (a GGUF type
// name: any the products read) in its product layout: bindings the
// weights' (one buffer, or quants and scales), ids, x, params
// (GetRowsParams). Dispatch GetRowsGrid.
func GetRows(typ string) (Kernel, error) {
	l, ok := weightLayouts[typ]
	if !ok {
		return Kernel{}, fmt.Errorf("kernels: get_rows: no lookup for %s (WebGPU reads %s)", typ, strings.Join(WeightTypes(), ", "))
	}
	n := 1
	if l.Split {
		n = 2
	}
	var b bytes.Buffer
	if err := getRowsTemplate.Execute(&b, struct {
		Weights   string
		IDS, X, P int
	}{l.wgsl, n, n + 1, n + 2}); err != nil {
		return Kernel{}, err
	}
	return Kernel{Name: "get_rows_" + strings.ToLower(typ), WGSL: b.String(), EntryPoint: "main"}, nil
}

var getRowsTemplate = template.Must(template.New("get_rows.wgsl").Parse(getRowsWGSL))

// GetRowsGrid is the dispatch of GetRows for batch rows of cols elements.
func GetRowsGrid(cols, batch int) (x, y uint32) {
	return uint32((cols/32 + 63) / 64), uint32(batch)
}

// GetRowsParams is the uniform block of get_rows.wgsl.
func GetRowsParams(cols, batch int) []byte { return u32s(uint32(cols), uint32(batch)) }

// Argmax finds the largest logit of each row, one workgroup a row:
// bindings logits (T, n), out (T u32), params (ArgmaxParams), parts
// (unused here, but bound). Dispatch (T, 1, 1).
func Argmax() Kernel { return Kernel{Name: "argmax", WGSL: argmaxWGSL, EntryPoint: "main"} }

// ArgmaxPartial is the split form's first dispatch, for large
// vocabularies on real GPUs: one workgroup per ArgmaxSlice logits of a
// row writes its best into parts (ArgmaxParts(n) per row, 8 bytes each).
// Bindings as Argmax's. Dispatch (ArgmaxParts(n), T, 1).
func ArgmaxPartial() Kernel { return Kernel{Name: "argmax", WGSL: argmaxWGSL, EntryPoint: "partial"} }

// ArgmaxFinal reduces ArgmaxPartial's parts. Dispatch (T, 1, 1).
func ArgmaxFinal() Kernel {
	return Kernel{Name: "argmax", WGSL: argmaxWGSL, EntryPoint: "finish_parts"}
}

// ArgmaxSlice is the logits one workgroup of ArgmaxPartial reads.
const ArgmaxSlice = 8192

// ArgmaxParts is the partials per row of n logits.
func ArgmaxParts(n int) int { return (n + ArgmaxSlice - 1) / ArgmaxSlice }

// ArgmaxParams is the uniform block of argmax.wgsl.
func ArgmaxParams(n int) []byte { return u32s(uint32(n), uint32(ArgmaxParts(n))) }

// SiLUMul is a = silu(a)·b: bindings a, b, params (ElementwiseParams).
func SiLUMul() Kernel { return Kernel{Name: "silu_mul", WGSL: elementwiseWGSL, EntryPoint: "silu_mul"} }

func u32s(vals ...uint32) []byte {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return pad16(b)
}

// pad16 pads a uniform block to a multiple of 16 bytes.
func pad16(b []byte) []byte {
	for len(b)%16 != 0 {
		b = append(b, 0)
	}
	return b
}

func f32bits(f float32) uint32 { return math.Float32bits(f) }

// AttentionParams is the uniform block of attention.wgsl.
type AttentionParams struct {
	Heads, KVHeads, HeadDim int
	Ctx                     int     // the scores' row length: at least every span's Len
	Batch                   int     // T
	Scale                   float32 // 1/sqrt(HeadDim)
	Chunks                  int     // partials per (head, token) in the split form
	// Fused: RoPE and the cache append happen in attention (bindings qkv
	// and cs, as rope_kv takes them), for steps whose tokens are each
	// their sequence's only new one; RopeDims and NeoX as rope_kv's.
	Fused    bool
	RopeDims int
	NeoX     bool
}

// Bytes is the uniform block.
func (a AttentionParams) Bytes() []byte {
	b := func(v bool) uint32 {
		if v {
			return 1
		}
		return 0
	}
	return u32s(uint32(a.Heads), uint32(a.KVHeads), uint32(a.HeadDim), uint32(a.Ctx), uint32(a.Batch), f32bits(a.Scale), uint32(a.Chunks),
		b(a.Fused), uint32(a.RopeDims), b(a.NeoX))
}

// ElementwiseParams is the uniform block of elementwise.wgsl.
func ElementwiseParams(n int) []byte { return u32s(uint32(n)) }

// ElementwiseGrid covers n elements with 64-wide workgroups.
func ElementwiseGrid(n int) (x, y uint32) { return Grid(n, 64, 65535) }

//go:embed sample.wgsl
var sampleWGSL string

// Sample picks each column's token from its logits as package sample's
// Pick does: bindings logits (T, vocab), out (T u32), cols (T
// SampleColumn), recent (T, 1 + ring u32), params (SampleParams).
// Dispatch (T, 1, 1).
func Sample() Kernel { return Kernel{Name: "sample", WGSL: sampleWGSL, EntryPoint: "main"} }

// SampleParams is the uniform block of sample.wgsl: the vocabulary size
// and the ring entries per column.
func SampleParams(vocab, ring int) []byte { return u32s(uint32(vocab), uint32(ring)) }

// SampleColumn is one column's sampling parameters (sample.Params in
// sample.wgsl's Column layout), its draw counter and its sequence's row of
// recent tokens.
type SampleColumn struct {
	Temperature, TopP, MinP                          float32
	TopK                                             int
	RepeatPenalty, FrequencyPenalty, PresencePenalty float32
	LastN                                            int
	Seed                                             uint64
	Draw, Row                                        uint32
}

// Bytes is c in sample.wgsl's Column layout (48 bytes).
func (c SampleColumn) Bytes() []byte {
	return u32s(f32bits(c.Temperature), uint32(max(c.TopK, 0)), f32bits(c.TopP), f32bits(c.MinP),
		f32bits(c.RepeatPenalty), f32bits(c.FrequencyPenalty), f32bits(c.PresencePenalty), uint32(c.LastN),
		uint32(c.Seed), uint32(c.Seed>>32), c.Draw, c.Row)
}
