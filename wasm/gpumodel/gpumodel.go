// Package gpumodel runs a loaded model (package model) on WebGPU: weights
// uploaded once in their quantized form, one command list and one submit
// per step, a token id (or the logits) read back.
//
// In: a *model.Model, an open *webgpu.Device, token ids. Out: the logits of
// the last token, as model.Forward gives them on the CPU (to within the
// float32 rounding of a different summation order: activations stay f32 on
// the GPU, where the CPU path quantizes them as llama.cpp does), or the
// greedy token ids, one step queued ahead of the one being read.
//
// A block is six dispatches: norm+Q/K/V (+biases) in one product, RoPE and
// the cache append in one, attention, the output projection with the
// residual add, norm+gate/up+SwiGLU in one product, and the down
// projection with the residual add (kernels.Fusion). Weights of F32, F16,
// Q8_0, Q4_0, Q4_K and Q6_K; llama and qwen2 architectures. The embedding
// lookup runs on the GPU for F32/F16/Q8_0/Q4_0 embeddings (on the CPU for
// the others); the RoPE angle table is computed on the CPU and written
// each step.
package gpumodel

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/webinfer/webinfer/wasm/cpu"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/quant"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// uniformStride is the offset between packed uniform blocks: WebGPU's
// minUniformBufferOffsetAlignment is 256 bytes on every adapter.
const uniformStride = 256

// maxUniformBlocks is the room in the step's uniform buffer: blocks are
// shared by every layer, so a model needs about a dozen.
const maxUniformBlocks = 64

// weight is a 2-D weight on the GPU, in its product's layout
// (kernels.Layout): one buffer, or quants and scales. A weight larger
// than a storage binding may be (maxStorageBufferBindingSize, 128 MiB in
// Firefox) is split by rows into parts, each its own product.
type weight struct {
	typ        string // GGUF type name
	rows, cols int
	split      bool
	parts      []weightPart
}

// weightPart is rows row0 … row0+rows−1 of a weight.
type weightPart struct {
	row0, rows   int
	data, scales webgpu.Buffer
}

// bindings are the part's bindings in a product.
func (w *weight) bindings(p weightPart) []webgpu.Binding {
	if w.split {
		return []webgpu.Binding{webgpu.Whole(p.data), webgpu.Whole(p.scales)}
	}
	return []webgpu.Binding{webgpu.Whole(p.data)}
}

// getRowsTypes are the embedding types get_rows.wgsl reads.
var getRowsTypes = map[string]bool{"F32": true, "F16": true, "Q8_0": true, "Q4_0": true}

// Runner holds a model's GPU buffers, pipelines and bind groups.
type Runner struct {
	dev      *webgpu.Device
	m        *model.Model
	ctx      int // positions the KV cache holds
	maxBatch int
	pos      int

	// Activations, (maxBatch, ·) f32: the residual stream x, the fused
	// Q/K/V output qkv, rotated queries q, attention output att, the
	// SwiGLU output h (and up, when gate and up are not fused).
	x, qkv, q, att, h, up, scores, cs webgpu.Buffer
	logits, best                      webgpu.Buffer
	kc, vc                            []webgpu.Buffer // per layer (ctx, kvDim)
	params                            webgpu.Buffer   // packed uniform blocks
	paramBlocks                       [][]byte        // this step's blocks, in slot order
	slots                             map[string]int

	layers  []layerGPU
	output  weight
	outNorm webgpu.Buffer
	steps   []func(cl *webgpu.CommandList, T int) // one dispatch each
	names   []string                              // each step's kernel
	cl      webgpu.CommandList
	pipes   map[string]webgpu.Pipeline
	allBufs []webgpu.Buffer
	stepPre []func(T, pos int) // fill paramBlocks
	wgRows  *bool              // matmul form, see WorkgroupPerRow
	// subgroups: the workgroup form reduces with subgroupAdd
	// (kernels.SubgroupsFit).
	subgroups bool
	timings   Timings
	argmax    func(cl *webgpu.CommandList)
	// The sampler (kernels.Sample), made on first use: its parameters,
	// the ring of recent tokens its penalties see, and the draw counter.
	sampler     func(cl *webgpu.CommandList)
	sampleCols  webgpu.Buffer
	recent      webgpu.Buffer
	ring        int
	samplePicks kernels.SampleColumn
	ids         webgpu.Buffer // (maxBatch) u32 token ids, when the lookup runs on the GPU
	embed       *weight       // the token embedding on the GPU, nil: looked up on the CPU
	maxDim      int           // maxComputeWorkgroupsPerDimension
	// maxBinding is the most bytes one weight buffer may hold: the
	// smaller of maxStorageBufferBindingSize and maxBufferSize.
	maxBinding int64
	// Per-step input buffers, reused: a step allocates nothing for them.
	idsBuf    []byte
	csBuf     []float32
	paramsBuf []byte
}

// layerGPU is one block's weights on the GPU. qkv is Wq, Wk and Wv as one
// matrix when their types agree (else q, k, v apart); gateUp is Wgate then
// Wup when theirs do (else gate, up apart).
type layerGPU struct {
	attnNorm, ffnNorm webgpu.Buffer
	qkv, q, k, v      *weight
	bqkv, bq, bk, bv  webgpu.Buffer // biases (qwen2), as the weights are split
	wo, wd            weight
	gateUp, gate, upW *weight
	hasBias, fusedQKV bool
	fusedGate         bool
}

// Supported says whether the runner handles m, and if not why.
func Supported(m *model.Model) error {
	check := func(w cpu.Weight) error {
		if _, ok := kernels.Layout(w.Type.String()); !ok {
			return fmt.Errorf("gpumodel: %s is %s; WebGPU runs F32, F16, Q8_0, Q4_0, Q4_K and Q6_K weights so far", w.Name, w.Type)
		}
		return nil
	}
	if err := check(m.Output); err != nil {
		return err
	}
	for _, l := range m.Layers {
		for _, w := range []cpu.Weight{l.Wq, l.Wk, l.Wv, l.Wo, l.Wgate, l.Wup, l.Wdown} {
			if err := check(w); err != nil {
				return err
			}
		}
	}
	return nil
}

// Option tunes New.
type Option func(*Runner)

// WorkgroupPerRow picks the product forms: workgroups (for real GPUs: one
// workgroup per 8 rows for single tokens, tiles of 32 rows × 32 tokens
// for batches) or one invocation per row (for CPU adapters). By default
// New picks from the adapter: one invocation per row on a fallback
// (software) adapter, workgroups otherwise.
func WorkgroupPerRow(on bool) Option { return func(r *Runner) { r.wgRows = &on } }

// MaxBindingSize caps the bytes of one weight buffer below the adapter's
// limits, so that weights are split into more parts (for tests).
func MaxBindingSize(n int64) Option { return func(r *Runner) { r.maxBinding = n } }

// New uploads m to dev, with a KV cache of ctx positions and room for
// prefill batches of up to maxBatch tokens.
func New(ctx context.Context, dev *webgpu.Device, m *model.Model, ctxLen, maxBatch int, opts ...Option) (*Runner, error) {
	if err := Supported(m); err != nil {
		return nil, err
	}
	r := &Runner{dev: dev, m: m, ctx: ctxLen, maxBatch: maxBatch, pipes: map[string]webgpu.Pipeline{}, slots: map[string]int{}}
	for _, o := range opts {
		o(r)
	}
	if r.wgRows == nil {
		on := !dev.Info().Adapter.IsFallbackAdapter
		r.wgRows = &on
	}
	info := dev.Info()
	r.subgroups = kernels.SubgroupsFit(info.HasFeature("subgroups"), info.Adapter.SubgroupMinSize, info.Adapter.SubgroupMaxSize)
	r.maxDim = int(info.Limit("maxComputeWorkgroupsPerDimension"))
	// WebGPU's defaults where the device says nothing.
	orDefault := func(v, def int64) int64 {
		if v <= 0 {
			return def
		}
		return v
	}
	limit := min(orDefault(info.Limit("maxStorageBufferBindingSize"), 128<<20), orDefault(info.Limit("maxBufferSize"), 256<<20))
	if r.maxBinding == 0 || r.maxBinding > limit {
		r.maxBinding = limit
	}
	if r.maxDim == 0 {
		r.maxDim = 65535
	}
	if err := r.build(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close frees the GPU buffers.
func (r *Runner) Close() {
	for _, b := range r.allBufs {
		r.dev.DestroyBuffer(b)
	}
	r.allBufs = nil
}

// Reset starts a new sequence (engine.Backend): the KV cache is simply
// overwritten from position 0. It fails if ctx exceeds the cache.
func (r *Runner) Reset(ctx int) error {
	if ctx > r.ctx {
		return fmt.Errorf("gpumodel: a context of %d positions does not fit the cache of %d", ctx, r.ctx)
	}
	r.pos = 0
	return nil
}

// Pos is the number of positions filled.
func (r *Runner) Pos() int { return r.pos }

const rw = webgpu.UsageStorage | webgpu.UsageCopyDst | webgpu.UsageCopySrc

func (r *Runner) buf(size int64, label string) (webgpu.Buffer, error) {
	b, err := r.dev.CreateBuffer(size, rw, label)
	if err == nil {
		r.allBufs = append(r.allBufs, b)
	}
	return b, err
}

func (r *Runner) upload(data []byte, label string) (webgpu.Buffer, error) {
	b, err := r.buf(int64(len(data)), label)
	if err != nil {
		return b, err
	}
	return b, r.dev.WriteBuffer(b, 0, data)
}

// uploadWeight uploads ws (of one type and width) as one matrix, their
// rows one after the other.
// Parts of rows beyond the first are split off when the matrix is larger
// than a binding may be (see fits).
func (r *Runner) uploadWeight(ws ...cpu.Weight) (*weight, error) {
	g := &weight{typ: ws[0].Type.String(), cols: ws[0].Cols}
	layout, _ := kernels.Layout(g.typ)
	g.split = layout.Split
	var blocks []byte
	for _, w := range ws {
		g.rows += w.Rows
		blocks = append(blocks, w.Data...)
	}
	if len(ws) == 1 {
		blocks = ws[0].Data
	}
	rowBytes := len(blocks) / g.rows
	perPart := max(1, int(r.maxBinding)/rowBytes)
	for row0 := 0; row0 < g.rows; row0 += perPart {
		n := min(perPart, g.rows-row0)
		data, scales := kernels.Split(g.typ, blocks[row0*rowBytes:(row0+n)*rowBytes], quant.F16ToF32)
		p := weightPart{row0: row0, rows: n}
		var err error
		if p.data, err = r.upload(data, ws[0].Name); err != nil {
			return g, err
		}
		if g.split {
			if p.scales, err = r.upload(webgpu.Float32Bytes(scales), ws[0].Name+".scales"); err != nil {
				return g, err
			}
		}
		g.parts = append(g.parts, p)
	}
	return g, nil
}

// fits says whether ws, as one matrix, fits one storage binding (their
// GGUF size bounds every buffer their product reads).
func (r *Runner) fits(ws ...cpu.Weight) bool {
	var n int
	for _, w := range ws {
		n += len(w.Data)
	}
	return int64(n) <= r.maxBinding
}

func (r *Runner) pipeline(ctx context.Context, k kernels.Kernel) (webgpu.Pipeline, error) {
	key := k.Name + "/" + k.EntryPoint + fmt.Sprint(k.Constants)
	if p, ok := r.pipes[key]; ok {
		return p, nil
	}
	p, err := r.dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
	if err == nil {
		r.pipes[key] = p
	}
	return p, err
}

// slot returns the uniform block for name, making it on first use; fill
// sets its bytes each step.
func (r *Runner) slot(name string, fill func(T, pos int) []byte) webgpu.Binding {
	i, ok := r.slots[name]
	if !ok {
		i = len(r.paramBlocks)
		r.slots[name] = i
		r.paramBlocks = append(r.paramBlocks, nil)
		r.stepPre = append(r.stepPre, func(T, pos int) { r.paramBlocks[i] = fill(T, pos) })
	}
	return webgpu.Binding{Buffer: r.params, Offset: int64(i * uniformStride), Size: 32}
}

func f32n(n int) int64 { return int64(4 * n) }

func sameShape(ws ...cpu.Weight) bool {
	for _, w := range ws[1:] {
		if w.Type != ws[0].Type || w.Cols != ws[0].Cols {
			return false
		}
	}
	return true
}

func (r *Runner) build(ctx context.Context) error {
	m := r.m
	c := m.Config
	B := r.maxBatch
	qDim, kvDim := c.Heads*c.HeadDim, c.KVDim()
	var err error
	mk := func(dst *webgpu.Buffer, n int, label string) {
		if err == nil {
			*dst, err = r.buf(f32n(n), label)
		}
	}
	mk(&r.x, B*c.Embd, "x")
	mk(&r.qkv, B*(qDim+2*kvDim), "qkv")
	mk(&r.q, B*qDim, "q")
	mk(&r.att, B*qDim, "att")
	mk(&r.h, B*c.FF, "h")
	mk(&r.scores, B*c.Heads*r.ctx, "scores")
	mk(&r.cs, B*c.RopeDims, "rope.cs")
	mk(&r.logits, m.Vocab, "logits")
	mk(&r.best, 1, "argmax")
	if err == nil {
		r.params, err = r.dev.CreateBuffer(maxUniformBlocks*uniformStride, webgpu.UsageUniform|webgpu.UsageCopyDst, "params")
		r.allBufs = append(r.allBufs, r.params)
	}
	if err != nil {
		return err
	}
	for l := range m.Layers {
		var kb, vb webgpu.Buffer
		mk(&kb, r.ctx*kvDim, fmt.Sprintf("kv.%d.k", l))
		mk(&vb, r.ctx*kvDim, fmt.Sprintf("kv.%d.v", l))
		r.kc, r.vc = append(r.kc, kb), append(r.vc, vb)
	}
	if err != nil {
		return err
	}
	if r.outNorm, err = r.upload(webgpu.Float32Bytes(m.OutputNorm), "output_norm"); err != nil {
		return err
	}
	out, err := r.uploadWeight(m.Output)
	if err != nil {
		return err
	}
	r.output = *out
	// The embedding lookup runs on the GPU for the types get_rows reads,
	// from the output product's buffers when the two are tied.
	// (get_rows reads one buffer: a split embedding is looked up on the CPU.)
	if getRowsTypes[m.TokEmbd.Type.String()] && r.fits(m.TokEmbd) {
		if m.TiedOutput {
			r.embed = &r.output
		} else if r.embed, err = r.uploadWeight(m.TokEmbd); err != nil {
			return err
		}
		if r.ids, err = r.dev.CreateBuffer(int64(4*B), webgpu.UsageStorage|webgpu.UsageCopyDst, "ids"); err != nil {
			return err
		}
		r.allBufs = append(r.allBufs, r.ids)
	}
	for _, ly := range m.Layers {
		g := layerGPU{hasBias: c.QKVBias}
		if g.attnNorm, err = r.upload(webgpu.Float32Bytes(ly.AttnNorm), "attn_norm"); err != nil {
			return err
		}
		if g.ffnNorm, err = r.upload(webgpu.Float32Bytes(ly.FFNNorm), "ffn_norm"); err != nil {
			return err
		}
		g.fusedQKV = sameShape(ly.Wq, ly.Wk, ly.Wv) && (!g.hasBias || r.fits(ly.Wq, ly.Wk, ly.Wv))
		if g.fusedQKV {
			if g.qkv, err = r.uploadWeight(ly.Wq, ly.Wk, ly.Wv); err != nil {
				return err
			}
			if g.hasBias {
				b := append(append(append([]float32(nil), ly.Bq...), ly.Bk...), ly.Bv...)
				if g.bqkv, err = r.upload(webgpu.Float32Bytes(b), "bqkv"); err != nil {
					return err
				}
			}
		} else {
			for _, p := range []struct {
				dst  **weight
				w    cpu.Weight
				bdst *webgpu.Buffer
				b    []float32
			}{{&g.q, ly.Wq, &g.bq, ly.Bq}, {&g.k, ly.Wk, &g.bk, ly.Bk}, {&g.v, ly.Wv, &g.bv, ly.Bv}} {
				if *p.dst, err = r.uploadWeight(p.w); err != nil {
					return err
				}
				if g.hasBias {
					if *p.bdst, err = r.upload(webgpu.Float32Bytes(p.b), "bias"); err != nil {
						return err
					}
				}
			}
		}
		g.fusedGate = sameShape(ly.Wgate, ly.Wup) && r.fits(ly.Wgate, ly.Wup)
		if g.fusedGate {
			if g.gateUp, err = r.uploadWeight(ly.Wgate, ly.Wup); err != nil {
				return err
			}
		} else {
			if g.gate, err = r.uploadWeight(ly.Wgate); err != nil {
				return err
			}
			if g.upW, err = r.uploadWeight(ly.Wup); err != nil {
				return err
			}
			if r.up == (webgpu.Buffer{}) {
				mk(&r.up, B*c.FF, "up")
				if err != nil {
					return err
				}
			}
		}
		wo, err := r.uploadWeight(ly.Wo)
		if err != nil {
			return err
		}
		wd, err := r.uploadWeight(ly.Wdown)
		if err != nil {
			return err
		}
		g.wo, g.wd = *wo, *wd
		r.layers = append(r.layers, g)
	}
	return r.record(ctx)
}

// product is one weight product of a step, with its fusions.
type product struct {
	w        *weight
	in, out  webgpu.Buffer
	f        kernels.Fusion
	nw, bias webgpu.Buffer
	yStride  int  // elements from one token's output to the next; 0: rows
	yOff     int  // element of out where token 0's output starts
	last     bool // the last token only (the logits)
}

// addProduct makes p's pipelines, bind groups and uniform block, and
// appends its dispatch to the step.
func (r *Runner) addProduct(ctx context.Context, p product) error {
	if len(p.w.parts) > 1 && (p.f.Gated || p.f.Bias) {
		return fmt.Errorf("gpumodel: a %d-row weight over %d bytes a binding with a gated or biased product is not supported", p.w.rows, r.maxBinding)
	}
	for _, part := range p.w.parts {
		if err := r.addProductPart(ctx, p, part); err != nil {
			return err
		}
	}
	return nil
}

// addProductPart adds the product of one part of p's weight: its rows of
// the output, from row part.row0.
func (r *Runner) addProductPart(ctx context.Context, p product, part weightPart) error {
	k, err := kernels.MatMul(p.w.typ, p.f)
	if err != nil {
		return err
	}
	rows := part.rows
	if p.f.Gated {
		rows /= 2
	}
	if p.yStride == 0 {
		p.yStride = p.w.rows
		if p.f.Gated {
			p.yStride /= 2
		}
	}
	p.yOff += part.row0
	cols := p.w.cols
	eps := r.m.RMSEps
	u := r.slot(fmt.Sprintf("mm.%s.%d.%d.%d.%d.%v", p.f, rows, cols, p.yStride, p.yOff, p.last), func(T, _ int) []byte {
		mp := kernels.MatMulParams{Rows: rows, Cols: cols, Batch: T, YStride: p.yStride, YOff: p.yOff, Eps: eps}
		if p.last {
			mp.Batch, mp.XOff = 1, (T-1)*cols
		}
		return mp.Bytes()
	})
	bindings := append(p.w.bindings(part), webgpu.Whole(p.in), webgpu.Whole(p.out), u)
	if p.f.Norm {
		bindings = append(bindings, webgpu.Whole(p.nw))
	}
	if p.f.Bias {
		bindings = append(bindings, webgpu.Whole(p.bias))
	}
	// On real GPUs (wgRows), single tokens take the workgroup form and
	// batches the tiled form (each weight read once per 32 tokens); on
	// CPU adapters, everything takes the row form.
	pipe, err := r.pipeline(ctx, k)
	if err != nil {
		return err
	}
	bg, err := r.dev.BindGroupRanges(pipe, bindings...)
	if err != nil {
		return err
	}
	wg := *r.wgRows
	var pipeWG, pipeTile webgpu.Pipeline
	var bgWG, bgTile webgpu.BindGroup
	if wg {
		if pipeTile, err = r.pipeline(ctx, kernels.TileForm(k)); err != nil {
			return err
		}
		if bgTile, err = r.dev.BindGroupRanges(pipeTile, bindings...); err != nil {
			return err
		}
		if r.subgroups {
			f := p.f
			f.Subgroups = true
			if k, err = kernels.MatMul(p.w.typ, f); err != nil {
				return err
			}
		}
		if pipeWG, err = r.pipeline(ctx, kernels.WorkgroupForm(k)); err != nil {
			return err
		}
		// Layouts are "auto": each pipeline needs its own bind group.
		if bgWG, err = r.dev.BindGroupRanges(pipeWG, bindings...); err != nil {
			return err
		}
	}
	r.add(k.Name, func(cl *webgpu.CommandList, T int) {
		if p.last {
			T = 1
		}
		if wg && T == 1 {
			x, y, z := kernels.MatMulWorkgroups(rows, T, r.maxDim)
			cl.Dispatch(pipeWG, bgWG, x, y, z)
			return
		}
		if wg {
			x, y, z := kernels.MatMulTiles(rows, T, p.f.Gated)
			cl.Dispatch(pipeTile, bgTile, x, y, z)
			return
		}
		cl.Dispatch(pipe, bg, uint32((rows+63)/64), uint32(T), 1)
	})
	return nil
}

// add appends a step of one dispatch, of kernel name.
func (r *Runner) add(name string, f func(cl *webgpu.CommandList, T int)) {
	r.steps = append(r.steps, f)
	r.names = append(r.names, name)
}

// record builds the pipelines and bind groups once, and the list of
// dispatches a step makes (recorded anew each step for its batch size).
func (r *Runner) record(ctx context.Context) error {
	m := r.m
	c := m.Config
	qDim, kvDim := c.Heads*c.HeadDim, c.KVDim()
	whole := webgpu.Whole
	if r.embed != nil {
		ew := *r.embed
		pGet, err := r.pipeline(ctx, kernels.GetRows(uint32(m.TokEmbd.Type)))
		if err != nil {
			return err
		}
		part := ew.parts[0]
		d := part.data // for the unsplit types d is unused, but must be bound
		if ew.split {
			d = part.scales
		}
		u := r.slot("get_rows", func(T, _ int) []byte { return kernels.GetRowsParams(c.Embd, T) })
		bg, err := r.dev.BindGroupRanges(pGet, whole(r.ids), whole(part.data), whole(d), whole(r.x), u)
		if err != nil {
			return err
		}
		r.add("get_rows", func(cl *webgpu.CommandList, T int) {
			cl.Dispatch(pGet, bg, uint32((c.Embd+63)/64), uint32(T), 1)
		})
	}
	pRope, err := r.pipeline(ctx, kernels.RopeKV(c.RopeNeoX))
	if err != nil {
		return err
	}
	attnWG := 64
	if *r.wgRows {
		attnWG = 256
	}
	pAttn, err := r.pipeline(ctx, kernels.Attention(attnWG))
	if err != nil {
		return err
	}
	var pSiLU webgpu.Pipeline
	uRope := r.slot("rope_kv", func(T, pos int) []byte {
		return kernels.RopeKVParams(c.Heads, c.HeadsKV, c.HeadDim, c.RopeDims, T, pos)
	})
	uAttn := r.slot("attn", func(T, pos int) []byte {
		return kernels.AttentionParams(c.Heads, c.HeadsKV, c.HeadDim, r.ctx, pos, T, 1/float32(math.Sqrt(float64(c.HeadDim))))
	})
	norm := kernels.Fusion{Norm: true}
	for l := range r.layers {
		g := &r.layers[l]
		// Norm + Q, K, V (+ biases) into qkv: (T, qDim + 2·kvDim).
		stride := qDim + 2*kvDim
		if g.fusedQKV {
			f := norm
			f.Bias = g.hasBias
			if err := r.addProduct(ctx, product{w: g.qkv, in: r.x, out: r.qkv, f: f, nw: g.attnNorm, bias: g.bqkv}); err != nil {
				return err
			}
		} else {
			for _, p := range []struct {
				w    *weight
				b    webgpu.Buffer
				yOff int
			}{{g.q, g.bq, 0}, {g.k, g.bk, qDim}, {g.v, g.bv, qDim + kvDim}} {
				f := norm
				f.Bias = g.hasBias
				if err := r.addProduct(ctx, product{w: p.w, in: r.x, out: r.qkv, f: f, nw: g.attnNorm, bias: p.b, yStride: stride, yOff: p.yOff}); err != nil {
					return err
				}
			}
		}
		// RoPE, and the cache append.
		bgRope, err := r.dev.BindGroupRanges(pRope, whole(r.qkv), whole(r.cs), whole(r.q), whole(r.kc[l]), whole(r.vc[l]), uRope)
		if err != nil {
			return err
		}
		r.add("rope_kv", func(cl *webgpu.CommandList, T int) {
			x, y := kernels.RopeKVGrid(c.Heads, c.HeadsKV, c.HeadDim, T)
			cl.Dispatch(pRope, bgRope, x, y, 1)
		})
		bgAttn, err := r.dev.BindGroupRanges(pAttn, whole(r.q), whole(r.kc[l]), whole(r.vc[l]), whole(r.scores), whole(r.att), uAttn)
		if err != nil {
			return err
		}
		r.add("attention", func(cl *webgpu.CommandList, T int) { cl.Dispatch(pAttn, bgAttn, uint32(c.Heads), uint32(T), 1) })
		// Output projection + residual.
		if err := r.addProduct(ctx, product{w: &g.wo, in: r.att, out: r.x, f: kernels.Fusion{Acc: true}}); err != nil {
			return err
		}
		// Norm + gate/up + SwiGLU into h.
		if g.fusedGate {
			if err := r.addProduct(ctx, product{w: g.gateUp, in: r.x, out: r.h, f: kernels.Fusion{Norm: true, Gated: true}, nw: g.ffnNorm}); err != nil {
				return err
			}
		} else {
			if err := r.addProduct(ctx, product{w: g.gate, in: r.x, out: r.h, f: norm, nw: g.ffnNorm}); err != nil {
				return err
			}
			if err := r.addProduct(ctx, product{w: g.upW, in: r.x, out: r.up, f: norm, nw: g.ffnNorm}); err != nil {
				return err
			}
			if pSiLU == 0 {
				if pSiLU, err = r.pipeline(ctx, kernels.SiLUMul()); err != nil {
					return err
				}
			}
			u := r.slot("silu", func(T, _ int) []byte { return kernels.ElementwiseParams(T * c.FF) })
			bg, err := r.dev.BindGroupRanges(pSiLU, whole(r.h), whole(r.up), u)
			if err != nil {
				return err
			}
			p := pSiLU
			r.add("silu_mul", func(cl *webgpu.CommandList, T int) {
				x, y := kernels.ElementwiseGrid(T * c.FF)
				cl.Dispatch(p, bg, x, y, 1)
			})
		}
		// Down projection + residual.
		if err := r.addProduct(ctx, product{w: &g.wd, in: r.h, out: r.x, f: kernels.Fusion{Acc: true}}); err != nil {
			return err
		}
	}
	// The last token's norm + output product.
	if err := r.addProduct(ctx, product{w: &r.output, in: r.x, out: r.logits, f: norm, nw: r.outNorm, last: true}); err != nil {
		return err
	}
	pArg, err := r.pipeline(ctx, kernels.Argmax())
	if err != nil {
		return err
	}
	ua := r.slot("argmax", func(int, int) []byte { return kernels.ElementwiseParams(m.Vocab) })
	bga, err := r.dev.BindGroupRanges(pArg, whole(r.logits), whole(r.best), ua)
	if err != nil {
		return err
	}
	r.argmax = func(cl *webgpu.CommandList) { cl.Dispatch(pArg, bga, 1, 1, 1) }
	if len(r.paramBlocks) > maxUniformBlocks {
		return fmt.Errorf("gpumodel: %d uniform blocks, room for %d", len(r.paramBlocks), maxUniformBlocks)
	}
	return nil
}

// Forward runs tokens at positions Pos(), Pos()+1, ... and returns the
// logits of the last one: the inputs are written (token ids, the RoPE
// table, the uniform blocks), the whole step is one submit, and the
// logits are one read.
func (r *Runner) Forward(ctx context.Context, tokens []int32) ([]float32, error) {
	if err := r.step(tokens, pickNone, false); err != nil {
		return nil, err
	}
	t2 := time.Now()
	raw, err := r.dev.Read(ctx, r.logits, 0, f32n(r.m.Vocab))
	if err != nil {
		return nil, err
	}
	r.timings.Wait += time.Since(t2)
	return webgpu.BytesToFloat32(raw), nil
}

// ForwardArgmax is Forward for greedy decoding: the argmax is taken on the
// GPU and the step reads back 4 bytes (the token id) instead of the logits.
func (r *Runner) ForwardArgmax(ctx context.Context, tokens []int32) (int32, error) {
	if err := r.step(tokens, pickArgmax, false); err != nil {
		return 0, err
	}
	return r.wait(ctx, r.dev.ReadAsync(r.best, 0, 4))
}

func (r *Runner) wait(ctx context.Context, p *webgpu.PendingRead) (int32, error) {
	t := time.Now()
	raw, err := p.Wait(ctx)
	r.timings.Wait += time.Since(t)
	if err != nil {
		return 0, err
	}
	return int32(uint32(raw[0]) | uint32(raw[1])<<8 | uint32(raw[2])<<16 | uint32(raw[3])<<24), nil
}

// DecodeGreedy is Decode with greedy sampling.
func (r *Runner) DecodeGreedy(ctx context.Context, tokens []int32, n int, yield func(int32) bool) error {
	return r.Decode(ctx, tokens, n, sample.Params{}, nil, yield)
}

// Decode feeds tokens, then samples with p on the GPU (kernels.Sample, or
// the argmax when p is plain greedy), calling yield with up to n token ids
// in order (engine.Decoder). recent are the tokens the penalties see
// before the first pick (the prompt, and what came before); the draws use
// sample.Uniform(p.Seed, 0), (p.Seed, 1), …, as a new sample.Sampler
// does, so the tokens are those of sample.Pick on the GPU's logits. Each
// step's input token stays on the GPU (the previous step's pick), so step
// t+1 is queued before step t's token is read back: the read back and the
// CPU's work overlap the GPU's. When yield returns false, the step queued
// ahead is waited for and undone (Pos is as if it never ran).
func (r *Runner) Decode(ctx context.Context, tokens []int32, n int, p sample.Params, recent []int32, yield func(int32) bool) error {
	if n <= 0 {
		return nil
	}
	how := pickArgmax
	if !p.Greedy() {
		how = pickSample
		if err := r.startSampling(ctx, p, recent); err != nil {
			return err
		}
	}
	if err := r.step(tokens, how, false); err != nil {
		return err
	}
	pending := r.dev.ReadAsync(r.best, 0, 4)
	for i := 0; i < n; i++ {
		var ahead *webgpu.PendingRead
		if i+1 < n && r.embed != nil && r.pos < r.ctx {
			if err := r.step(nil, how, true); err != nil {
				return err
			}
			ahead = r.dev.ReadAsync(r.best, 0, 4)
		}
		tok, err := r.wait(ctx, pending)
		if err != nil {
			return err
		}
		if !yield(tok) || i+1 == n {
			if ahead != nil {
				r.pos--
				_, err = r.wait(ctx, ahead)
			}
			return err
		}
		if ahead == nil { // the lookup runs on the CPU, or the cache is full
			if err := r.step([]int32{tok}, how, false); err != nil {
				return err
			}
			ahead = r.dev.ReadAsync(r.best, 0, 4)
		}
		pending = ahead
	}
	return nil
}

// pick says what a step does after the logits.
type pick int

const (
	pickNone   pick = iota // the logits are read back
	pickArgmax             // kernels.Argmax
	pickSample             // kernels.Sample, with the parameters of startSampling
)

// step writes the inputs of tokens and submits their forward pass (chunks
// of maxBatch first), with the pick's dispatch. fromGPU runs one token:
// the previous step's pick, copied on the GPU.
func (r *Runner) step(tokens []int32, how pick, fromGPU bool) error {
	for len(tokens) > r.maxBatch {
		if err := r.step(tokens[:r.maxBatch], pickNone, false); err != nil {
			return err
		}
		tokens = tokens[r.maxBatch:]
	}
	T := len(tokens)
	if fromGPU {
		T = 1
	}
	if T == 0 {
		return fmt.Errorf("gpumodel: no tokens")
	}
	t0 := time.Now()
	if err := r.prepare(tokens, T, fromGPU); err != nil {
		return err
	}
	if how == pickSample {
		// The draw counter advances with each step (queue writes land in
		// order, between the submits).
		if err := r.dev.WriteBuffer(r.sampleCols, 0, r.samplePicks.Bytes()); err != nil {
			return err
		}
		r.samplePicks.Draw++
	}
	t1 := time.Now()
	r.encode(T, how, fromGPU)
	if err := r.dev.Submit(&r.cl); err != nil {
		return err
	}
	r.pos += T
	r.timings.Prepare += t1.Sub(t0)
	r.timings.Submit += time.Since(t1)
	r.timings.Steps++
	return nil
}

// encode records a step of T tokens into r.cl: the copy of the previous
// pick into the ids when fromGPU, the step's dispatches, the pick.
func (r *Runner) encode(T int, how pick, fromGPU bool) {
	r.cl.Reset()
	if fromGPU {
		r.cl.Copy(r.best, 0, r.ids, 0, 4)
	}
	for _, s := range r.steps {
		s(&r.cl, T)
	}
	switch how {
	case pickArgmax:
		r.argmax(&r.cl)
	case pickSample:
		r.sampler(&r.cl)
	}
}

// prepare checks a step of T tokens and writes its inputs: the token ids
// (unless fromGPU) or their embedding rows, the RoPE table and the
// uniform blocks.
func (r *Runner) prepare(tokens []int32, T int, fromGPU bool) error {
	c := r.m.Config
	if r.pos+T > r.ctx {
		return model.ErrContextFull{Need: r.pos + T, Have: r.ctx}
	}
	for _, t := range tokens {
		if t < 0 || int(t) >= r.m.Vocab {
			return fmt.Errorf("gpumodel: token id %d is outside the vocabulary", t)
		}
	}
	// The step's first input: token ids for the GPU lookup, or the rows.
	switch {
	case fromGPU:
	case r.embed != nil:
		ids := growBytes(&r.idsBuf, 4*T)
		for i, t := range tokens {
			ids[4*i], ids[4*i+1], ids[4*i+2], ids[4*i+3] = byte(t), byte(t>>8), byte(t>>16), byte(t>>24)
		}
		if err := r.dev.WriteBuffer(r.ids, 0, ids); err != nil {
			return err
		}
	default:
		x := make([]float32, T*c.Embd)
		for i, t := range tokens {
			if err := r.m.TokEmbd.DequantizeRow(int(t), x[i*c.Embd:(i+1)*c.Embd]); err != nil {
				return err
			}
		}
		if err := r.dev.WriteBuffer(r.x, 0, webgpu.Float32Bytes(x)); err != nil {
			return err
		}
	}
	half := c.RopeDims / 2
	cs := r.csBuf[:0]
	if cap(cs) < T*c.RopeDims {
		cs = make([]float32, T*c.RopeDims)
	}
	cs = cs[:T*c.RopeDims]
	r.csBuf = cs
	for i := 0; i < T; i++ {
		cosv, sinv := r.m.RopeTable(r.pos + i)
		for j := 0; j < half; j++ {
			cs[(i*half+j)*2], cs[(i*half+j)*2+1] = cosv[j], sinv[j]
		}
	}
	for _, f := range r.stepPre {
		f(T, r.pos)
	}
	params := growBytes(&r.paramsBuf, len(r.paramBlocks)*uniformStride)
	for i, b := range r.paramBlocks {
		copy(params[i*uniformStride:], b)
	}
	// Queue writes are ordered before the next submit, and after earlier
	// ones: a step queued ahead does not disturb the one before it.
	if err := r.dev.WriteBuffer(r.cs, 0, webgpu.Float32Bytes(cs)); err != nil {
		return err
	}
	if err := r.dev.WriteBuffer(r.params, 0, params); err != nil {
		return err
	}
	return nil
}

// startSampling makes the sampler on first use (growing the ring of
// recent tokens to p's window), and writes its parameters, with the draw
// counter at 0, and the last tokens of recent into the ring.
func (r *Runner) startSampling(ctx context.Context, p sample.Params, recent []int32) error {
	p = p.Normalized()
	if r.sampler == nil || r.ring < p.RepeatLastN {
		ring := max(64, p.RepeatLastN)
		pipe, err := r.pipeline(ctx, kernels.Sample())
		if err != nil {
			return err
		}
		if r.sampleCols == (webgpu.Buffer{}) {
			if r.sampleCols, err = r.buf(48, "sample.cols"); err != nil {
				return err
			}
		}
		if r.recent != (webgpu.Buffer{}) {
			r.dev.DestroyBuffer(r.recent)
		}
		if r.recent, err = r.buf(int64(4*(1+ring)), "sample.recent"); err != nil {
			return err
		}
		u, err := r.dev.CreateBuffer(16, webgpu.UsageUniform|webgpu.UsageCopyDst, "sample.params")
		if err != nil {
			return err
		}
		r.allBufs = append(r.allBufs, u)
		if err := r.dev.WriteBuffer(u, 0, kernels.SampleParams(r.m.Vocab, ring)); err != nil {
			return err
		}
		bg, err := r.dev.BindGroup(pipe, r.logits, r.best, r.sampleCols, r.recent, u)
		if err != nil {
			return err
		}
		r.ring = ring
		r.sampler = func(cl *webgpu.CommandList) { cl.Dispatch(pipe, bg, 1, 1, 1) }
	}
	if len(recent) > r.ring {
		recent = recent[len(recent)-r.ring:]
	}
	ring := make([]byte, 4*(1+r.ring))
	binary.LittleEndian.PutUint32(ring, uint32(len(recent)))
	for i, id := range recent {
		binary.LittleEndian.PutUint32(ring[4*(1+i):], uint32(id))
	}
	r.samplePicks = kernels.SampleColumn{Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP, MinP: p.MinP,
		RepeatPenalty: p.RepeatPenalty, FrequencyPenalty: p.FrequencyPenalty, PresencePenalty: p.PresencePenalty,
		LastN: p.RepeatLastN, Seed: p.Seed}
	return r.dev.WriteBuffer(r.recent, 0, ring)
}

// Timings splits the wall time of steps: preparing inputs on the CPU and
// writing them, recording and submitting the command list, and waiting for
// what is read back (GPU work not yet done, plus the read itself).
type Timings struct {
	Prepare, Submit, Wait time.Duration
	Steps                 int
}

// Timings returns the accumulated Timings and resets them.
func (r *Runner) Timings() Timings {
	t := r.timings
	r.timings = Timings{}
	return t
}

// Profile runs one step of tokens (at positions Pos() …, which it
// advances; greedy, with the argmax, for one token) with every dispatch
// timed by the GPU (timestamp-query; else webgpu.ErrUnsupported), and
// returns the GPU time per kernel, summed over the step's dispatches of
// that kernel, and how many there were. tokens must fit one batch.
func (r *Runner) Profile(ctx context.Context, tokens []int32) (map[string]OpTime, error) {
	T := len(tokens)
	if T == 0 || T > r.maxBatch {
		return nil, fmt.Errorf("gpumodel: profile %d tokens: 1 to %d", T, r.maxBatch)
	}
	if err := r.prepare(tokens, T, false); err != nil {
		return nil, err
	}
	how := pickNone
	if T == 1 {
		how = pickArgmax
	}
	r.encode(T, how, false)
	names := r.names
	if T == 1 {
		names = append(append([]string(nil), r.names...), "argmax")
	}
	times, err := r.dev.SubmitProfiled(ctx, &r.cl)
	if err != nil {
		return nil, err
	}
	r.pos += T
	out := map[string]OpTime{}
	for i, d := range times {
		if i < len(names) {
			o := out[names[i]]
			o.GPU += d
			o.Count++
			out[names[i]] = o
		}
	}
	return out, nil
}

// OpTime is one kernel's GPU time in a profiled step, over Count dispatches.
type OpTime struct {
	GPU   time.Duration
	Count int
}

// Dispatches is the number of dispatches and copies in the last step.
func (r *Runner) Dispatches() int { return r.cl.Len() }

// growBytes returns (*buf)[:n], growing *buf when it is too small.
func growBytes(buf *[]byte, n int) []byte {
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	*buf = (*buf)[:n]
	return *buf
}
