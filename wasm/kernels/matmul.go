package kernels

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"text/template"
)

// The weight products: matmul.wgsl is one template for every weight type
// and fusion; weights_<type>.wgsl says how one type's 32-weight units are
// read and dequantized.

//go:embed matmul.wgsl
var matMulWGSL string

//go:embed weights_f32.wgsl
var weightsF32WGSL string

//go:embed weights_f16.wgsl
var weightsF16WGSL string

//go:embed weights_q8_0.wgsl
var weightsQ8_0WGSL string

//go:embed weights_q4_0.wgsl
var weightsQ4_0WGSL string

//go:embed weights_q4_k.wgsl
var weightsQ4KWGSL string

//go:embed weights_q6_k.wgsl
var weightsQ6KWGSL string

var matMulTemplate = template.Must(template.New("matmul.wgsl").Funcs(template.FuncMap{
	"div4": func(t int) int { return t / 4 },
	"mod4": func(t int) int { return t % 4 },
	"mul8": func(t int) int { return 8 * t },
	"add":  func(a, b int) int { return a + b },
}).Parse(matMulWGSL))

// stageGroups is main_wgb's tokens 0..MatMulBatchMax−1 in groups of
// stage, the template's unrolled staging rounds.
func stageGroups(stage int) [][]int {
	var out [][]int
	for t0 := 0; t0 < MatMulBatchMax; t0 += stage {
		var g []int
		for t := t0; t < min(t0+stage, MatMulBatchMax); t++ {
			g = append(g, t)
		}
		out = append(out, g)
	}
	return out
}

// WeightLayout describes how one weight type sits in GPU buffers.
type WeightLayout struct {
	wgsl string
	// Split is true when the GGUF blocks are split at upload into quants
	// (binding 0) and f32 scales (binding 1), because the blocks are not
	// word-aligned; else the data is uploaded as it is and bound once.
	Split bool
	// Block is the number of weights per GGUF block: cols must be a
	// multiple of it.
	Block int
	// For split types: the GGUF block's size in bytes and the offset of
	// its f16 scale; the other bytes, in order, are the quants.
	blockBytes, scaleAt int
}

// weightLayouts is every weight type the products read, by GGUF type name.
var weightLayouts = map[string]WeightLayout{
	"F32":  {wgsl: weightsF32WGSL, Block: 32},
	"F16":  {wgsl: weightsF16WGSL, Block: 32},
	"Q8_0": {wgsl: weightsQ8_0WGSL, Split: true, Block: 32, blockBytes: 34, scaleAt: 0},
	"Q4_0": {wgsl: weightsQ4_0WGSL, Split: true, Block: 32, blockBytes: 18, scaleAt: 0},
	"Q4_K": {wgsl: weightsQ4KWGSL, Block: 256},
	"Q6_K": {wgsl: weightsQ6KWGSL, Split: true, Block: 256, blockBytes: 210, scaleAt: 208},
}

// Layout returns the GPU layout of weight type typ (a GGUF type name), and
// whether the products read it.
func Layout(typ string) (WeightLayout, bool) {
	l, ok := weightLayouts[typ]
	return l, ok
}

// WeightTypes lists the weight types the products read.
func WeightTypes() []string {
	var out []string
	for t := range weightLayouts {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Fusion picks the operations fused into a product (see matmul.wgsl).
type Fusion struct {
	Norm  bool // RMS-normalise x and scale by nw first (binding 5)
	Gated bool // W is gate then up: y = silu(gate·x)·(up·x)
	Bias  bool // y += b (binding 6)
	Acc   bool // y += the result
	// Subgroups is not a fusion: main_wg reduces with subgroupAdd, for
	// devices with the "subgroups" feature whose subgroups are exactly 32
	// invocations (SubgroupsFit).
	Subgroups bool
	// HalfX and HalfY are not fusions either: x, or y, is stored as f16
	// (devices with "shader-f16"); sums stay f32. Acc needs an f32 y.
	HalfX, HalfY bool
	// StageTokens is not a fusion: how many tokens' x main_wgb stages in
	// workgroup memory at once (StageTokensFor the device's limit; 0: the
	// most that WebGPU's minimum limit holds). It changes the speed of the
	// batched form, never its sums.
	StageTokens int
}

// matMulReserve is the workgroup memory main_wgb needs besides its staged
// x: the reduction arrays of the workgroup forms (gate and up).
const matMulReserve = 2 * 256 * 4

// stageBytes is the workgroup memory a staged token's chunk of x takes:
// 32 units of 32 f32 values.
const stageBytes = 32 * 32 * 4

// StageTokensFor is the number of tokens' x main_wgb stages at once on a
// device whose maxComputeWorkgroupStorageSize is limit: as many as fit,
// from 2 (WebGPU's minimum limit, 16 KiB, holds 3) to MatMulBatchMax.
// With subgroups main_wgb reduces without workgroup memory, so 32 KiB
// holds all 8 tokens (and each unit is dequantized once per step).
func StageTokensFor(limit int64, subgroups bool) int {
	reserve := int64(matMulReserve)
	if subgroups {
		reserve = 0
	}
	return min(MatMulBatchMax, max(2, int((limit-reserve)/stageBytes)))
}

// SubgroupsFit says whether the workgroup form may use subgroups on an
// adapter with the "subgroups" feature and these subgroup sizes.
func SubgroupsFit(hasFeature bool, minSize, maxSize int) bool {
	return hasFeature && minSize == 32 && maxSize == 32
}

func (f Fusion) String() string {
	var s []string
	for _, p := range []struct {
		on   bool
		name string
	}{{f.Norm, "norm"}, {f.Gated, "gated"}, {f.Bias, "bias"}, {f.Acc, "acc"}, {f.Subgroups, "sg"}, {f.HalfX, "x16"}, {f.HalfY, "y16"}} {
		if p.on {
			s = append(s, p.name)
		}
	}
	return strings.Join(s, "+")
}

// MatMul is the product of a typ weight matrix with a batch of vectors,
// with fusions f, in its row-per-invocation form (entry main_row; dispatch
// (ceil(rows/64), T)). WorkgroupForm gives the workgroup-per-rows form.
// Bindings, numbered densely: the weights (quants and scales for split
// types, else one buffer), x, y, params (MatMulParams), nw (Norm), b (Bias).
func MatMul(typ string, f Fusion) (Kernel, error) {
	l, ok := weightLayouts[typ]
	if !ok {
		return Kernel{}, fmt.Errorf("kernels: matmul: no product for %s weights (WebGPU reads %s)", typ, strings.Join(WeightTypes(), ", "))
	}
	if f.Gated && f.Bias {
		return Kernel{}, fmt.Errorf("kernels: matmul: a gated product has no bias")
	}
	if f.Acc && f.HalfY {
		return Kernel{}, fmt.Errorf("kernels: matmul: a residual add needs an f32 y")
	}
	n := 1 // bindings of the weights
	if l.Split {
		n = 2
	}
	nw, bias := n+3, n+3
	if f.Norm {
		bias++
	}
	stage := f.StageTokens
	if stage == 0 {
		stage = StageTokensFor(16384, false)
	}
	if stage < 2 || stage > MatMulBatchMax {
		return Kernel{}, fmt.Errorf("kernels: matmul: %d staged tokens (2 to %d)", stage, MatMulBatchMax)
	}
	var b bytes.Buffer
	err := matMulTemplate.Execute(&b, struct {
		Weights                                         string
		Norm, Gated, Bias, Acc, Subgroups, HalfX, HalfY bool
		X, Y, P, NW, B, StageTokens                     int
		Stages, TokenPairs                              [][]int
		K, Tokens, Q, Pair                              []int
	}{l.wgsl, f.Norm, f.Gated, f.Bias, f.Acc, f.Subgroups, f.HalfX, f.HalfY, n, n + 1, n + 2, nw, bias, stage,
		stageGroups(stage), stageGroups(2), []int{0, 1, 2, 3, 4, 5, 6, 7}, stageGroups(MatMulBatchMax)[0],
		[]int{0, 1, 2, 3}, []int{0, 1}})
	if err != nil {
		return Kernel{}, err
	}
	name := "matmul_" + strings.ToLower(typ)
	if s := f.String(); s != "" {
		name += "+" + s
	}
	return Kernel{Name: name, WGSL: b.String(), EntryPoint: "main_row"}, nil
}

// WorkgroupForm turns a matmul kernel into its workgroup-per-rows form
// (entry main_wg): dispatch with MatMulWorkgroups. It is the form for real
// GPUs, where neighbouring invocations must read neighbouring memory; one
// row per invocation is faster on CPU adapters (SwiftShader, lavapipe).
func WorkgroupForm(k Kernel) Kernel {
	k.Name += "/wg"
	k.EntryPoint = "main_wg"
	return k
}

// TileForm turns a matmul kernel into its tiled form for batches on real
// GPUs (entry main_tile): dispatch with MatMulTiles.
func TileForm(k Kernel) Kernel {
	k.Name += "/tile"
	k.EntryPoint = "main_tile"
	return k
}

// BatchForm turns a matmul kernel into its few-tokens form (entry
// main_wgb): 2 to MatMulBatchMax tokens, each weight read once; dispatch
// MatMulWorkgroups(rows, 1). With Subgroups, as WorkgroupForm's.
func BatchForm(k Kernel) Kernel {
	k.Name += "/wgb"
	k.EntryPoint = "main_wgb"
	return k
}

// TransposedForm turns a matmul kernel into the few-tokens form for
// weights of many rows (entry main_wgt): 2 to MatMulBatchMax tokens, 32
// weight rows per workgroup (16 outputs when gated), one per lane, x read
// once for all of them; the sums are main_wg's bit for bit. It needs at
// least TransposedMinStage staged tokens. Dispatch
// MatMulTransposedWorkgroups.
func TransposedForm(k Kernel) Kernel {
	k.Name += "/wgt"
	k.EntryPoint = "main_wgt"
	return k
}

// TransposedMinStage is the fewest staged tokens main_wgt takes: its
// workgroup memory must also hold two tokens' 32×33 partial sums.
const TransposedMinStage = 3

// MatMulTransposedWorkgroups is the dispatch of TransposedForm: a
// workgroup per 32 output rows (16 when gated), over x and y.
func MatMulTransposedWorkgroups(rows int, gated bool, maxPerDim int) (x, y, z uint32) {
	per := 32
	if gated {
		per = 16
	}
	x, y = Grid(rows, per, maxPerDim)
	return x, y, 1
}

// MatMulBatchMax is the most tokens BatchForm takes.
const MatMulBatchMax = 8

// MatMulTiles is the dispatch of a tiled product: tiles of 64 output rows
// (32 when gated) by 64 tokens.
func MatMulTiles(rows, batch int, gated bool) (x, y, z uint32) {
	per := 64
	if gated {
		per = 32
	}
	return uint32((rows + per - 1) / per), uint32((batch + 63) / 64), 1
}

// MatMulRowsPerWorkgroup is the number of rows a main_wg workgroup computes.
const MatMulRowsPerWorkgroup = 8

// MatMulWorkgroups is the dispatch of a workgroup-form product: groups of
// rows over x and y (at most maxPerDim each), the batch over z.
func MatMulWorkgroups(rows, batch, maxPerDim int) (x, y, z uint32) {
	x, y = Grid(rows, MatMulRowsPerWorkgroup, maxPerDim)
	return x, y, uint32(batch)
}

// MatMulParams is the uniform block of matmul.wgsl: rows output rows of
// inner length cols for batch vectors, x read from element xOff, y[t][row]
// stored at yOff + t·yStride + row; eps is the fused norm's epsilon.
type MatMulParams struct {
	Rows, Cols, Batch   int
	XOff, YStride, YOff int
	Eps                 float32
}

// Bytes encodes p as the uniform block.
func (p MatMulParams) Bytes() []byte {
	stride := p.YStride
	if stride == 0 {
		stride = p.Rows
	}
	return u32s(uint32(p.Rows), uint32(p.Cols), uint32(p.Batch), uint32(p.XOff), uint32(stride), uint32(p.YOff), f32bits(p.Eps))
}

// RopeKV rotates the heads of a fused Q/K/V product's output and appends
// keys and values to a layer's cache: bindings qkv, cs, q, kc, vc, params
// (RopeKVParams), spans (AppendSpans). Dispatch RopeKVGrid.
func RopeKV(neox bool) Kernel {
	n := 0.0
	if neox {
		n = 1
	}
	return Kernel{Name: "rope_kv", WGSL: ropeKVWGSL, EntryPoint: "main", Constants: map[string]float64{"NEOX": n}}
}

//go:embed rope_kv.wgsl
var ropeKVWGSL string

// RopeKVParams is the uniform block of rope_kv.wgsl.
func RopeKVParams(heads, kvHeads, headDim, dims, batch int) []byte {
	return u32s(uint32(heads), uint32(kvHeads), uint32(headDim), uint32(dims), uint32(batch))
}

// Span is where a step's token sits in a layer's KV cache: its sequence's
// rows start at Base, and the token is at position Len−1 of it, so it is
// written to row Base+Len−1 and attends to rows Base … Base+Len−1. The
// tokens of one step may come from different sequences (batched decode)
// or be consecutive positions of one (prefill: see Consecutive).
type Span struct{ Base, Len int }

// Consecutive are the spans of T tokens at positions pos … pos+T−1 of the
// sequence whose rows start at base.
func Consecutive(base, pos, T int) []Span {
	s := make([]Span, T)
	for t := range s {
		s[t] = Span{Base: base, Len: pos + t + 1}
	}
	return s
}

// AppendSpans appends spans to b as rope_kv.wgsl and attention.wgsl read
// them (vec2<u32> each).
func AppendSpans(b []byte, spans []Span) []byte {
	for _, s := range spans {
		b = binary.LittleEndian.AppendUint32(b, uint32(s.Base))
		b = binary.LittleEndian.AppendUint32(b, uint32(s.Len))
	}
	return b
}

// RopeKVGrid is the dispatch of rope_kv for T tokens.
func RopeKVGrid(heads, kvHeads, headDim, batch int) (x, y uint32) {
	pairs := (heads + 2*kvHeads) * headDim / 2
	return uint32((pairs + 63) / 64), uint32(batch)
}

// Split turns typ's GGUF blocks into the buffers its product reads: for
// split types (Q8_0, Q4_0, Q6_K), the quant bytes of every block, one
// after the other, and the scales as float32; for the others the data as
// it is and nil scales.
func Split(typ string, blocks []byte, f16ToF32 func(uint16) float32) (data []byte, scales []float32) {
	l := weightLayouts[typ]
	if !l.Split {
		return blocks, nil
	}
	n := len(blocks) / l.blockBytes
	q := l.blockBytes - 2 // quant bytes per block
	data = make([]byte, q*n)
	scales = make([]float32, n)
	for b := 0; b < n; b++ {
		blk := blocks[b*l.blockBytes : (b+1)*l.blockBytes]
		scales[b] = f16ToF32(binary.LittleEndian.Uint16(blk[l.scaleAt:]))
		copy(data[q*b:], blk[:l.scaleAt])
		copy(data[q*b+l.scaleAt:], blk[l.scaleAt+2:])
	}
	return data, scales
}
