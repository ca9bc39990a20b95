// Package gpumodel runs a loaded model (package model) on WebGPU: weights
// uploaded once in their quantized form, one command list and one submit
// per step, a token id (or the logits) read back.
//
// In: a *model.Model, an open *webgpu.Device, token ids. Out: the logits of
// the last token, as model.Forward gives them on the CPU (to within the
// float32 rounding of a different summation order: activations stay f32 on
// the GPU, where the CPU path quantizes them as llama.cpp does; f16 with
// HalfActivations), or token ids picked on the GPU (greedy or sampled as
// package sample does), one step queued ahead of the one being read; or,
// with Sequences, one token for each of several sequences per step.
//
// A block is six dispatches in prefill: norm+Q/K/V (+biases) in one
// product, RoPE and the cache append in one, attention, the output
// projection with the residual add, norm+gate/up+SwiGLU in one product,
// and the down projection with the residual add (kernels.Fusion); five in
// decode, where attention rotates and appends itself. Weights of F32, F16,
// Q8_0, Q4_0, Q4_K and Q6_K; llama and qwen2 architectures. The embedding
// lookup runs on the GPU (on the CPU for an embedding split over several
// buffers); the RoPE angle table is computed on the CPU and written each
// step.
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

// uniformSize is the bytes bound of each uniform block (the largest,
// attention's, is 48).
const uniformSize = 64

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

// Runner holds a model's GPU buffers, pipelines and bind groups.
type Runner struct {
	dev      *webgpu.Device
	m        *model.Model
	ctx      int // positions the KV cache holds, per sequence
	maxBatch int
	seqs     int   // sequences the KV cache holds
	pos      []int // positions filled, per sequence

	// Activations, (maxBatch, ·) f32: the residual stream x, the fused
	// Q/K/V output qkv, rotated queries q, attention output att, the
	// SwiGLU output h (and up, when gate and up are not fused).
	x, qkv, q, att, h, up, scores, cs webgpu.Buffer
	logits, best                      webgpu.Buffer   // (seqs, vocab), (seqs)
	kc, vc                            []webgpu.Buffer // per layer (seqs·ctx, kvDim)
	spans                             webgpu.Buffer   // (maxBatch) kernels.Span
	params                            webgpu.Buffer   // packed uniform blocks
	paramBlocks                       [][]byte        // this step's blocks, in slot order
	slots                             map[string]int

	layers  []layerGPU
	output  weight
	outNorm webgpu.Buffer
	steps   []func(cl *webgpu.CommandList, s shape) // one dispatch each
	names   []string                                // each step's kernel
	// cmdNames is the kernel of each command of the last step Profile encoded.
	cmdNames []string
	cl       webgpu.CommandList
	pipes    map[string]webgpu.Pipeline
	allBufs  []webgpu.Buffer
	stepPre  []func(s shape) // fill paramBlocks
	wgRows   *bool           // matmul form, see WorkgroupPerRow
	// subgroups: the workgroup form reduces with subgroupAdd
	// (kernels.SubgroupsFit).
	subgroups bool
	half      bool // see HalfActivations
	splitAt   *int // see AttentionSplitAt
	// ropeInAttention: see RopeInAttention
	ropeInAttention bool
	// argmaxSplit forces the argmax's form (tests); nil: by vocabulary
	// size and adapter
	argmaxSplit *bool
	chunk       int // positions per workgroup of split attention
	timings     Timings
	argmax      func(cl *webgpu.CommandList, cols int)
	// The sampler (kernels.Sample), made on first use: its columns'
	// parameters, each sequence's ring of recent tokens its penalties
	// see, and each sequence's parameters and draw counter.
	sampler    func(cl *webgpu.CommandList, cols int)
	sampleCols webgpu.Buffer
	recent     webgpu.Buffer
	seqSample  []kernels.SampleColumn
	seqGreedy  []bool        // per sequence: its SetSampling params are sample.Params.Greedy
	ids        webgpu.Buffer // (maxBatch) u32 token ids, when the lookup runs on the GPU
	embed      *weight       // the token embedding on the GPU, nil: looked up on the CPU
	maxDim     int           // maxComputeWorkgroupsPerDimension
	// bindingLimit is the most bytes one buffer may hold: the smaller of
	// maxStorageBufferBindingSize and maxBufferSize; maxBinding is the
	// most one weight buffer may hold (bindingLimit, or less for tests).
	bindingLimit, maxBinding int64
	// Per-step input buffers, reused: a step allocates nothing for them.
	idsBuf    []byte
	csBuf     []float32
	paramsBuf []byte
	spanList  []kernels.Span
	spanBuf   []byte
	colsBuf   []byte
	taken     []int // per sequence, scratch of prepare
	seq0      []int // maxBatch zeros: the sequences of a step of sequence 0
}

// shape is what a step computes: T tokens, and the logits of the last
// one, or of every one (all: a batch of sequences, a token each); chunks
// > 0 splits attention into that many chunks (see splitAttention).
type shape struct {
	T      int
	all    bool
	chunks int
	// fused: RoPE and the cache append run in attention, not rope_kv
	// (each token is its sequence's only one in the step).
	fused bool
}

// logitRows is how many rows of logits the step computes.
func (s shape) logitRows() int {
	if s.all {
		return s.T
	}
	return 1
}

// defaultSplitAt is the longest context attention reads in one workgroup
// per (head, token): beyond it, a step of few tokens leaves most of a GPU
// idle (heads·T workgroups), and the split form spreads the positions.
const defaultSplitAt = 1024

// splitT is the most tokens a step may have for split attention (the
// partials buffer is sized for it): decode and batched decode.
func (r *Runner) splitT() int { return min(r.maxBatch, max(r.seqs, 4)) }

// splitAttention sets s.chunks from the step's spans.
func (r *Runner) splitAttention(s *shape) {
	longest := 0
	for _, sp := range r.spanList {
		longest = max(longest, sp.Len)
	}
	if *r.splitAt > 0 && longest > *r.splitAt && s.T <= r.splitT() {
		s.chunks = kernels.AttentionChunks(longest, r.chunk)
	}
}

// recentRing is how many recent tokens the GPU sampler keeps per
// sequence: the largest repeat-penalty window it takes.
const recentRing = 256

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

// AttentionSplitAt sets when attention is split over the positions
// (flash-decoding: kernels.AttentionSplit, then AttentionCombine): in steps
// of a few tokens (decode, batched decode) whose longest context is over n
// positions. 0 never splits; the default is 1,024.
func AttentionSplitAt(n int) Option { return func(r *Runner) { r.splitAt = &n } }

// HalfActivations stores the activations between kernels (Q/K/V, the
// attention output, the SwiGLU output) and the KV cache in f16, sums
// staying f32, the residual stream and the logits f32: half the cache's
// memory and reads. It needs the device feature "shader-f16"; by default
// New uses f32 (features.Choose picks f16 for the page where the adapter
// has it).
func HalfActivations(on bool) Option { return func(r *Runner) { r.half = on } }

// RopeInAttention sets whether decode steps (each token its sequence's
// only one in the step) rotate and append keys in the attention kernel
// instead of a rope_kv dispatch before it: one dispatch fewer per block.
// On by default.
func RopeInAttention(on bool) Option { return func(r *Runner) { r.ropeInAttention = on } }

// Sequences sets how many sequences the KV cache holds (default 1), for
// StepBatch: each has ctx positions.
func Sequences(n int) Option { return func(r *Runner) { r.seqs = max(n, 1) } }

// MaxBindingSize caps the bytes of one weight buffer below the adapter's
// limits, so that weights are split into more parts (for tests).
func MaxBindingSize(n int64) Option { return func(r *Runner) { r.maxBinding = n } }

// New uploads m to dev, with a KV cache of ctx positions and room for
// prefill batches of up to maxBatch tokens.
func New(ctx context.Context, dev *webgpu.Device, m *model.Model, ctxLen, maxBatch int, opts ...Option) (*Runner, error) {
	if err := Supported(m); err != nil {
		return nil, err
	}
	r := &Runner{dev: dev, m: m, ctx: ctxLen, maxBatch: maxBatch, seqs: 1, ropeInAttention: true, pipes: map[string]webgpu.Pipeline{}, slots: map[string]int{}}
	for _, o := range opts {
		o(r)
	}
	r.pos = make([]int, r.seqs)
	r.taken = make([]int, r.seqs)
	r.seq0 = make([]int, maxBatch)
	r.seqSample = make([]kernels.SampleColumn, r.seqs)
	r.seqGreedy = make([]bool, r.seqs)
	for i := range r.seqGreedy {
		r.seqGreedy[i] = true
	}
	if r.chunk == 0 {
		r.chunk = kernels.AttentionChunk
	}
	if r.splitAt == nil {
		n := defaultSplitAt
		r.splitAt = &n
	}
	if r.half && !dev.Info().HasFeature("shader-f16") {
		return nil, fmt.Errorf("gpumodel: f16 activations need the device feature shader-f16")
	}
	if r.seqs > maxBatch {
		return nil, fmt.Errorf("gpumodel: %d sequences do not fit a batch of %d", r.seqs, maxBatch)
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
	r.bindingLimit = limit
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
	r.pos[0] = 0
	return nil
}

// Pos is the number of positions filled (of sequence 0).
func (r *Runner) Pos() int { return r.pos[0] }

// SeqPos is the number of positions of sequence seq filled.
func (r *Runner) SeqPos(seq int) int { return r.pos[seq] }

// ResetSeq empties sequence seq (its cache is overwritten from position 0).
func (r *Runner) ResetSeq(seq int) { r.pos[seq] = 0 }

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
func (r *Runner) slot(name string, fill func(s shape) []byte) webgpu.Binding {
	i, ok := r.slots[name]
	if !ok {
		i = len(r.paramBlocks)
		r.slots[name] = i
		r.paramBlocks = append(r.paramBlocks, nil)
		r.stepPre = append(r.stepPre, func(s shape) { r.paramBlocks[i] = fill(s) })
	}
	return webgpu.Binding{Buffer: r.params, Offset: int64(i * uniformStride), Size: uniformSize}
}

func f32n(n int) int64 { return int64(4 * n) }

// actBytes is the size of n activations (f16 ones padded to 8 bytes, a
// vec4<f16>).
func (r *Runner) actBytes(n int) int64 {
	if r.half {
		return int64((2*n + 7) / 8 * 8)
	}
	return f32n(n)
}

// actKernel is k with f16 activations when the runner has them.
func (r *Runner) actKernel(k kernels.Kernel) kernels.Kernel {
	if r.half {
		return k.Half()
	}
	return k
}

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
	// act makes a buffer of n activations: f32, or f16 (HalfActivations).
	act := func(dst *webgpu.Buffer, n int, label string) {
		if err == nil {
			*dst, err = r.buf(r.actBytes(n), label)
		}
	}
	mk(&r.x, B*c.Embd, "x")
	act(&r.qkv, B*(qDim+2*kvDim), "qkv")
	act(&r.q, B*qDim, "q")
	act(&r.att, B*qDim, "att")
	act(&r.h, B*c.FF, "h")
	mk(&r.scores, B*c.Heads*r.ctx, "scores")
	mk(&r.cs, B*c.RopeDims, "rope.cs")
	mk(&r.logits, r.seqs*m.Vocab, "logits")
	mk(&r.best, r.seqs, "argmax")
	mk(&r.spans, 2*B, "spans")
	if err == nil {
		r.params, err = r.dev.CreateBuffer(maxUniformBlocks*uniformStride, webgpu.UsageUniform|webgpu.UsageCopyDst, "params")
		r.allBufs = append(r.allBufs, r.params)
	}
	if err != nil {
		return err
	}
	if cache := r.actBytes(r.seqs * r.ctx * kvDim); cache > r.bindingLimit {
		return fmt.Errorf("gpumodel: a layer's cache of %d sequences × %d positions is %d bytes, over the %d a binding may hold", r.seqs, r.ctx, cache, r.bindingLimit)
	}
	for l := range m.Layers {
		var kb, vb webgpu.Buffer
		act(&kb, r.seqs*r.ctx*kvDim, fmt.Sprintf("kv.%d.k", l))
		act(&vb, r.seqs*r.ctx*kvDim, fmt.Sprintf("kv.%d.v", l))
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
	if _, ok := kernels.Layout(m.TokEmbd.Type.String()); ok && r.fits(m.TokEmbd) {
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
				act(&r.up, B*c.FF, "up")
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
	u := r.slot(fmt.Sprintf("mm.%s.%d.%d.%d.%d.%v", p.f, rows, cols, p.yStride, p.yOff, p.last), func(s shape) []byte {
		mp := kernels.MatMulParams{Rows: rows, Cols: cols, Batch: s.T, YStride: p.yStride, YOff: p.yOff, Eps: eps}
		if p.last && !s.all {
			mp.Batch, mp.XOff = 1, (s.T-1)*cols
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
	// On real GPUs (wgRows), single tokens take the workgroup form, up to
	// 8 tokens (batched decode, short prompts) its few-tokens form, and
	// larger batches the tiled form (each weight read once per 64 tokens);
	// on CPU adapters, everything takes the row form.
	pipe, err := r.pipeline(ctx, k)
	if err != nil {
		return err
	}
	bg, err := r.dev.BindGroupRanges(pipe, bindings...)
	if err != nil {
		return err
	}
	wg := *r.wgRows
	var pipeWG, pipeWGB, pipeTile webgpu.Pipeline
	var bgWG, bgWGB, bgTile webgpu.BindGroup
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
		if pipeWGB, err = r.pipeline(ctx, kernels.BatchForm(k)); err != nil {
			return err
		}
		if bgWGB, err = r.dev.BindGroupRanges(pipeWGB, bindings...); err != nil {
			return err
		}
	}
	r.add(k.Name, func(cl *webgpu.CommandList, s shape) {
		T := s.T
		if p.last {
			T = s.logitRows()
		}
		if wg && T == 1 {
			x, y, z := kernels.MatMulWorkgroups(rows, T, r.maxDim)
			cl.Dispatch(pipeWG, bgWG, x, y, z)
			return
		}
		if wg && T <= kernels.MatMulBatchMax {
			x, y, _ := kernels.MatMulWorkgroups(rows, 1, r.maxDim)
			cl.Dispatch(pipeWGB, bgWGB, x, y, 1)
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
func (r *Runner) add(name string, f func(cl *webgpu.CommandList, s shape)) {
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
		k, err := kernels.GetRows(r.embed.typ)
		if err != nil {
			return err
		}
		pGet, err := r.pipeline(ctx, k)
		if err != nil {
			return err
		}
		u := r.slot("get_rows", func(s shape) []byte { return kernels.GetRowsParams(c.Embd, s.T) })
		bg, err := r.dev.BindGroupRanges(pGet, append(r.embed.bindings(r.embed.parts[0]), whole(r.ids), whole(r.x), u)...)
		if err != nil {
			return err
		}
		r.add("get_rows", func(cl *webgpu.CommandList, s shape) {
			x, y := kernels.GetRowsGrid(c.Embd, s.T)
			cl.Dispatch(pGet, bg, x, y, 1)
		})
	}
	pRope, err := r.pipeline(ctx, r.actKernel(kernels.RopeKV(c.RopeNeoX)))
	if err != nil {
		return err
	}
	attnWG := 64
	if *r.wgRows {
		attnWG = 256
	}
	pAttn, err := r.pipeline(ctx, r.actKernel(kernels.Attention(attnWG)))
	if err != nil {
		return err
	}
	pSplit, err := r.pipeline(ctx, r.actKernel(kernels.AttentionSplit(attnWG, r.chunk)))
	if err != nil {
		return err
	}
	pCombine, err := r.pipeline(ctx, r.actKernel(kernels.AttentionCombine(attnWG, r.chunk)))
	if err != nil {
		return err
	}
	chunks := kernels.AttentionChunks(r.ctx, r.chunk)
	partials, err := r.buf(kernels.AttentionPartialBytes(r.splitT()*c.Heads*chunks), "attention.partials")
	if err != nil {
		return err
	}
	var pSiLU webgpu.Pipeline
	uRope := r.slot("rope_kv", func(s shape) []byte {
		return kernels.RopeKVParams(c.Heads, c.HeadsKV, c.HeadDim, c.RopeDims, s.T)
	})
	uAttn := r.slot("attn", func(s shape) []byte {
		return kernels.AttentionParams{Heads: c.Heads, KVHeads: c.HeadsKV, HeadDim: c.HeadDim, Ctx: r.ctx, Batch: s.T,
			Scale: 1 / float32(math.Sqrt(float64(c.HeadDim))), Chunks: chunks, Fused: s.fused, RopeDims: c.RopeDims, NeoX: c.RopeNeoX}.Bytes()
	})
	norm := kernels.Fusion{Norm: true}
	// Products into the f16 activations write f16 (toAct); those from them
	// read f16 (fromAct). The residual stream and the logits stay f32.
	toAct := kernels.Fusion{Norm: true, HalfY: r.half}
	fromAct := kernels.Fusion{Acc: true, HalfX: r.half}
	for l := range r.layers {
		g := &r.layers[l]
		// Norm + Q, K, V (+ biases) into qkv: (T, qDim + 2·kvDim).
		stride := qDim + 2*kvDim
		if g.fusedQKV {
			f := toAct
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
				f := toAct
				f.Bias = g.hasBias
				if err := r.addProduct(ctx, product{w: p.w, in: r.x, out: r.qkv, f: f, nw: g.attnNorm, bias: p.b, yStride: stride, yOff: p.yOff}); err != nil {
					return err
				}
			}
		}
		// RoPE, and the cache append.
		bgRope, err := r.dev.BindGroupRanges(pRope, whole(r.qkv), whole(r.cs), whole(r.q), whole(r.kc[l]), whole(r.vc[l]), uRope, whole(r.spans))
		if err != nil {
			return err
		}
		r.add("rope_kv", func(cl *webgpu.CommandList, s shape) {
			if s.fused {
				return // attention does it
			}
			x, y := kernels.RopeKVGrid(c.Heads, c.HeadsKV, c.HeadDim, s.T)
			cl.Dispatch(pRope, bgRope, x, y, 1)
		})
		attn := []webgpu.Binding{whole(r.q), whole(r.kc[l]), whole(r.vc[l]), whole(r.scores), whole(r.att), uAttn, whole(r.spans), whole(partials), whole(r.qkv), whole(r.cs)}
		bgAttn, err := r.dev.BindGroupRanges(pAttn, attn...)
		if err != nil {
			return err
		}
		bgSplit, err := r.dev.BindGroupRanges(pSplit, attn...)
		if err != nil {
			return err
		}
		bgCombine, err := r.dev.BindGroupRanges(pCombine, attn...)
		if err != nil {
			return err
		}
		r.add("attention", func(cl *webgpu.CommandList, s shape) {
			if s.chunks > 0 {
				cl.Dispatch(pSplit, bgSplit, uint32(c.Heads), uint32(s.T), uint32(s.chunks))
				cl.Dispatch(pCombine, bgCombine, uint32(c.Heads), uint32(s.T), 1)
				return
			}
			cl.Dispatch(pAttn, bgAttn, uint32(c.Heads), uint32(s.T), 1)
		})
		// Output projection + residual.
		if err := r.addProduct(ctx, product{w: &g.wo, in: r.att, out: r.x, f: fromAct}); err != nil {
			return err
		}
		// Norm + gate/up + SwiGLU into h.
		if g.fusedGate {
			if err := r.addProduct(ctx, product{w: g.gateUp, in: r.x, out: r.h, f: kernels.Fusion{Norm: true, Gated: true, HalfY: r.half}, nw: g.ffnNorm}); err != nil {
				return err
			}
		} else {
			if err := r.addProduct(ctx, product{w: g.gate, in: r.x, out: r.h, f: toAct, nw: g.ffnNorm}); err != nil {
				return err
			}
			if err := r.addProduct(ctx, product{w: g.upW, in: r.x, out: r.up, f: toAct, nw: g.ffnNorm}); err != nil {
				return err
			}
			if pSiLU == 0 {
				if pSiLU, err = r.pipeline(ctx, r.actKernel(kernels.SiLUMul())); err != nil {
					return err
				}
			}
			u := r.slot("silu", func(s shape) []byte { return kernels.ElementwiseParams(s.T * c.FF) })
			bg, err := r.dev.BindGroupRanges(pSiLU, whole(r.h), whole(r.up), u)
			if err != nil {
				return err
			}
			p := pSiLU
			r.add("silu_mul", func(cl *webgpu.CommandList, s shape) {
				x, y := kernels.ElementwiseGrid(s.T * c.FF)
				cl.Dispatch(p, bg, x, y, 1)
			})
		}
		// Down projection + residual.
		if err := r.addProduct(ctx, product{w: &g.wd, in: r.h, out: r.x, f: fromAct}); err != nil {
			return err
		}
	}
	// The last token's norm + output product.
	if err := r.addProduct(ctx, product{w: &r.output, in: r.x, out: r.logits, f: norm, nw: r.outNorm, last: true}); err != nil {
		return err
	}
	// The argmax: one workgroup a row, or, for large vocabularies on real
	// GPUs, one per 8,192 logits and a second dispatch to reduce them (one
	// workgroup reading 128k logits takes ~85 us on an H100).
	ua := r.slot("argmax", func(shape) []byte { return kernels.ArgmaxParams(m.Vocab) })
	parts, err := r.buf(int64(8*r.seqs*kernels.ArgmaxParts(m.Vocab)), "argmax.parts")
	if err != nil {
		return err
	}
	argBinds := []webgpu.Binding{whole(r.logits), whole(r.best), ua, whole(parts)}
	split := *r.wgRows && m.Vocab > 2*kernels.ArgmaxSlice
	if r.argmaxSplit != nil {
		split = *r.argmaxSplit
	}
	if split {
		pPart, err := r.pipeline(ctx, kernels.ArgmaxPartial())
		if err != nil {
			return err
		}
		pFin, err := r.pipeline(ctx, kernels.ArgmaxFinal())
		if err != nil {
			return err
		}
		bgPart, err := r.dev.BindGroupRanges(pPart, argBinds...)
		if err != nil {
			return err
		}
		bgFin, err := r.dev.BindGroupRanges(pFin, argBinds...)
		if err != nil {
			return err
		}
		nParts := uint32(kernels.ArgmaxParts(m.Vocab))
		r.argmax = func(cl *webgpu.CommandList, cols int) {
			cl.Dispatch(pPart, bgPart, nParts, uint32(cols), 1)
			cl.Dispatch(pFin, bgFin, uint32(cols), 1, 1)
		}
	} else {
		pArg, err := r.pipeline(ctx, kernels.Argmax())
		if err != nil {
			return err
		}
		bga, err := r.dev.BindGroupRanges(pArg, argBinds...)
		if err != nil {
			return err
		}
		r.argmax = func(cl *webgpu.CommandList, cols int) { cl.Dispatch(pArg, bga, uint32(cols), 1, 1) }
	}
	if len(r.paramBlocks) > maxUniformBlocks {
		return fmt.Errorf("gpumodel: %d uniform blocks, room for %d", len(r.paramBlocks), maxUniformBlocks)
	}
	return nil
}

// Forward runs tokens at positions Pos(), Pos()+1, ... and returns the
// logits of the last one: the inputs are written (token ids, the RoPE
// table, the spans, the uniform blocks), the whole step is one submit,
// and the logits are one read.
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
	ids, err := r.wait(ctx, r.dev.ReadAsync(r.best, 0, 4))
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// wait waits for a read of token ids.
func (r *Runner) wait(ctx context.Context, p *webgpu.PendingRead) ([]int32, error) {
	t := time.Now()
	raw, err := p.Wait(ctx)
	r.timings.Wait += time.Since(t)
	if err != nil {
		return nil, err
	}
	ids := make([]int32, len(raw)/4)
	for i := range ids {
		ids[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return ids, nil
}

// DecodeGreedy is Decode with greedy sampling.
func (r *Runner) DecodeGreedy(ctx context.Context, tokens []int32, n int, yield func(int32) bool) error {
	return r.Decode(ctx, tokens, n, sample.Params{}, nil, yield)
}

// Decode feeds tokens to sequence 0, then samples with p on the GPU
// (kernels.Sample, or the argmax when p is plain greedy), calling yield
// with up to n token ids in order (engine.Decoder). recent are the tokens
// the penalties see before the first pick (the prompt, and what came
// before); the draws use sample.Uniform(p.Seed, 0), (p.Seed, 1), …, as a
// new sample.Sampler does, so the tokens are those of sample.Pick on the
// GPU's logits. Each step's input token stays on the GPU (the previous
// step's pick), so step t+1 is queued before step t's token is read back:
// the read back and the CPU's work overlap the GPU's. When yield returns
// false, the step queued ahead is waited for and undone (Pos is as if it
// never ran).
func (r *Runner) Decode(ctx context.Context, tokens []int32, n int, p sample.Params, recent []int32, yield func(int32) bool) error {
	if n <= 0 {
		return nil
	}
	how := pickArgmax
	if !p.Greedy() {
		how = pickSample
		if err := r.SetSampling(ctx, 0, p, recent); err != nil {
			return err
		}
	}
	if err := r.step(tokens, how, false); err != nil {
		return err
	}
	pending := r.dev.ReadAsync(r.best, 0, 4)
	for i := 0; i < n; i++ {
		var ahead *webgpu.PendingRead
		if i+1 < n && r.embed != nil && r.pos[0] < r.ctx {
			if err := r.step(nil, how, true); err != nil {
				return err
			}
			ahead = r.dev.ReadAsync(r.best, 0, 4)
		}
		ids, err := r.wait(ctx, pending)
		if err != nil {
			return err
		}
		tok := ids[0]
		if !yield(tok) || i+1 == n {
			if ahead != nil {
				r.pos[0]--
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

// SetSampling sets how StepBatch (and Decode, for sequence 0) picks
// sequence seq's tokens: p, with recent as the tokens its penalties see
// before the next pick, and its draw counter at 0. A repeat-penalty
// window over recentRing tokens is refused with sample.ErrBackend.
func (r *Runner) SetSampling(ctx context.Context, seq int, p sample.Params, recent []int32) error {
	p = p.Normalized()
	if p.Penalized() && p.RepeatLastN > recentRing {
		return fmt.Errorf("gpumodel: %w: a repeat-penalty window of %d tokens (the GPU keeps %d)", sample.ErrBackend, p.RepeatLastN, recentRing)
	}
	if err := r.makeSampler(ctx); err != nil {
		return err
	}
	if len(recent) > recentRing {
		recent = recent[len(recent)-recentRing:]
	}
	row := make([]byte, 4*(1+recentRing))
	binary.LittleEndian.PutUint32(row, uint32(len(recent)))
	for i, id := range recent {
		binary.LittleEndian.PutUint32(row[4*(1+i):], uint32(id))
	}
	r.seqGreedy[seq] = p.Greedy()
	r.seqSample[seq] = kernels.SampleColumn{Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP, MinP: p.MinP,
		RepeatPenalty: p.RepeatPenalty, FrequencyPenalty: p.FrequencyPenalty, PresencePenalty: p.PresencePenalty,
		LastN: min(p.RepeatLastN, recentRing), Seed: p.Seed, Row: uint32(seq)}
	return r.dev.WriteBuffer(r.recent, int64(seq*len(row)), row)
}

// makeSampler makes the sampler's pipeline, buffers and bind group once.
func (r *Runner) makeSampler(ctx context.Context) error {
	if r.sampler != nil {
		return nil
	}
	pipe, err := r.pipeline(ctx, kernels.Sample())
	if err != nil {
		return err
	}
	if r.sampleCols, err = r.buf(int64(48*r.seqs), "sample.cols"); err != nil {
		return err
	}
	if r.recent, err = r.buf(int64(4*r.seqs*(1+recentRing)), "sample.recent"); err != nil {
		return err
	}
	u, err := r.dev.CreateBuffer(16, webgpu.UsageUniform|webgpu.UsageCopyDst, "sample.params")
	if err != nil {
		return err
	}
	r.allBufs = append(r.allBufs, u)
	if err := r.dev.WriteBuffer(u, 0, kernels.SampleParams(r.m.Vocab, recentRing)); err != nil {
		return err
	}
	bg, err := r.dev.BindGroup(pipe, r.logits, r.best, r.sampleCols, r.recent, u)
	if err != nil {
		return err
	}
	r.sampler = func(cl *webgpu.CommandList, cols int) { cl.Dispatch(pipe, bg, uint32(cols), 1, 1) }
	return nil
}

// Prefill feeds tokens to sequence seq without picking a token (their
// logits are not computed): a prompt but its last token, before the
// sequence joins StepBatch.
func (r *Runner) Prefill(ctx context.Context, seq int, tokens []int32) error {
	for len(tokens) > 0 {
		n := min(len(tokens), r.maxBatch)
		seqs := make([]int, n) // prefill: once a chunk, not a hot path
		for i := range seqs {
			seqs[i] = seq
		}
		if err := r.submit(tokens[:n], seqs, shape{T: n}, pickNone, false); err != nil {
			return err
		}
		tokens = tokens[n:]
	}
	return nil
}

// StepBatch runs one token of each of several sequences (seqs distinct,
// tokens[i] of seqs[i], each at its own next position) in one step, and
// returns each one's next token, picked as SetSampling set for its
// sequence (greedy when never set). A batch of one computes what Decode
// does.
func (r *Runner) StepBatch(ctx context.Context, seqs []int, tokens []int32) ([]int32, error) {
	T := len(seqs)
	if T == 0 || T != len(tokens) || T > r.seqs {
		return nil, fmt.Errorf("gpumodel: a batch of %d sequences and %d tokens (room for %d)", T, len(tokens), r.seqs)
	}
	seen := map[int]bool{}
	for _, s := range seqs {
		if s < 0 || s >= r.seqs || seen[s] {
			return nil, fmt.Errorf("gpumodel: sequence %d is out of range or repeated in the batch", s)
		}
		seen[s] = true
	}
	// All greedy: the argmax. Else the sampler, each column with its
	// sequence's parameters.
	how := pickArgmax
	for _, s := range seqs {
		if !r.seqGreedy[s] {
			how = pickSample
		}
	}
	if how == pickSample {
		if err := r.makeSampler(ctx); err != nil {
			return nil, err
		}
		cols := growBytes(&r.colsBuf, 48*T)
		for i, s := range seqs {
			copy(cols[48*i:], r.seqSample[s].Bytes())
			r.seqSample[s].Draw++
		}
		if err := r.dev.WriteBuffer(r.sampleCols, 0, cols); err != nil {
			return nil, err
		}
	}
	if err := r.submit(tokens, seqs, shape{T: T, all: true}, how, false); err != nil {
		return nil, err
	}
	return r.wait(ctx, r.dev.ReadAsync(r.best, 0, int64(4*T)))
}

// pick says what a step does after the logits.
type pick int

const (
	pickNone   pick = iota // the logits are read back
	pickArgmax             // kernels.Argmax
	pickSample             // kernels.Sample, with the columns' parameters written
)

// step writes the inputs of tokens of sequence 0 and submits their
// forward pass (chunks of maxBatch first), with the pick's dispatch.
// fromGPU runs one token: the previous step's pick, copied on the GPU.
func (r *Runner) step(tokens []int32, how pick, fromGPU bool) error {
	for len(tokens) > r.maxBatch {
		if err := r.Prefill(context.Background(), 0, tokens[:r.maxBatch]); err != nil {
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
	if how == pickSample {
		// Sequence 0's column; the draw counter advances with each step
		// (queue writes land in order, between the submits).
		if err := r.dev.WriteBuffer(r.sampleCols, 0, r.seqSample[0].Bytes()); err != nil {
			return err
		}
		r.seqSample[0].Draw++
	}
	return r.submit(tokens, r.seq0[:T], shape{T: T}, how, fromGPU)
}

// submit writes a step's inputs (token t of sequence seqs[t]) and submits
// it: one command list, one submit.
func (r *Runner) submit(tokens []int32, seqs []int, s shape, how pick, fromGPU bool) error {
	t0 := time.Now()
	if err := r.prepare(tokens, seqs, &s, fromGPU); err != nil {
		return err
	}
	t1 := time.Now()
	r.encode(s, how, fromGPU, false)
	if err := r.dev.Submit(&r.cl); err != nil {
		return err
	}
	for _, q := range seqs {
		r.pos[q]++
	}
	r.timings.Prepare += t1.Sub(t0)
	r.timings.Submit += time.Since(t1)
	r.timings.Steps++
	return nil
}

// encode records a step into r.cl: the copy of the previous pick into the
// ids when fromGPU, the step's dispatches, the pick. With names (Profile),
// r.cmdNames gets each command's kernel; a step for decoding skips that.
func (r *Runner) encode(s shape, how pick, fromGPU, names bool) {
	r.cl.Reset()
	r.cmdNames = r.cmdNames[:0]
	label := func(name string) {
		for names && len(r.cmdNames) < r.cl.Len() {
			r.cmdNames = append(r.cmdNames, name)
		}
	}
	if fromGPU {
		r.cl.Copy(r.best, 0, r.ids, 0, 4)
		label("copy")
	}
	for i, f := range r.steps {
		f(&r.cl, s)
		label(r.names[i])
	}
	switch how {
	case pickArgmax:
		r.argmax(&r.cl, s.logitRows())
		label("argmax")
	case pickSample:
		r.sampler(&r.cl, s.logitRows())
		label("sample")
	}
}

// prepare checks a step and writes its inputs: the token ids (unless
// fromGPU) or their embedding rows, each token's span of the cache and
// RoPE angles (token t is the next position of sequence seqs[t]), and the
// uniform blocks. It sets how the step runs attention (s.chunks, s.fused).
func (r *Runner) prepare(tokens []int32, seqs []int, s *shape, fromGPU bool) error {
	c := r.m.Config
	T := s.T
	for _, t := range tokens {
		if t < 0 || int(t) >= r.m.Vocab {
			return fmt.Errorf("gpumodel: token id %d is outside the vocabulary", t)
		}
	}
	// Spans: each token at its sequence's next position (r.taken counts
	// the step's tokens of each sequence so far, zeroed again below).
	spans := r.spanList[:0]
	once := true // each token its sequence's only one
	for _, q := range seqs {
		r.taken[q]++
		once = once && r.taken[q] == 1
		spans = append(spans, kernels.Span{Base: q * r.ctx, Len: r.pos[q] + r.taken[q]})
	}
	var full error
	for _, q := range seqs {
		if n := r.pos[q] + r.taken[q]; n > r.ctx && full == nil {
			full = model.ContextFullError{Need: n, Have: r.ctx}
		}
	}
	for _, q := range seqs {
		r.taken[q] = 0
	}
	if full != nil {
		return full
	}
	r.spanList = spans
	// The step's first input: token ids for the GPU lookup, or the rows.
	switch {
	case fromGPU:
	case r.embed != nil:
		ids := growBytes(&r.idsBuf, 4*T)
		for i, t := range tokens {
			binary.LittleEndian.PutUint32(ids[4*i:], uint32(t))
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
	for i, sp := range spans {
		cosv, sinv := r.m.RopeTable(sp.Len - 1)
		for j := 0; j < half; j++ {
			cs[(i*half+j)*2], cs[(i*half+j)*2+1] = cosv[j], sinv[j]
		}
	}
	r.splitAttention(s)
	// Each token its sequence's only one: RoPE and the append in attention.
	s.fused = r.ropeInAttention && once
	for _, f := range r.stepPre {
		f(*s)
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
	r.spanBuf = kernels.AppendSpans(r.spanBuf[:0], spans)
	if err := r.dev.WriteBuffer(r.spans, 0, r.spanBuf); err != nil {
		return err
	}
	return r.dev.WriteBuffer(r.params, 0, params)
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
	s := shape{T: T}
	if err := r.prepare(tokens, r.seq0[:T], &s, false); err != nil {
		return nil, err
	}
	how := pickNone
	if T == 1 {
		how = pickArgmax
	}
	r.encode(s, how, false, true)
	names := r.cmdNames
	times, err := r.dev.SubmitProfiled(ctx, &r.cl)
	if err != nil {
		return nil, err
	}
	r.pos[0] += T
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

// ProfileDecode times one decode step of token on sequence 0 (as Profile)
// and then undoes it: Pos is as before, and the cache row it wrote is
// overwritten by the next step. For telemetry after a generation.
func (r *Runner) ProfileDecode(ctx context.Context, token int32) (map[string]OpTime, error) {
	pos := r.pos[0]
	ops, err := r.Profile(ctx, []int32{token})
	r.pos[0] = pos
	return ops, err
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
