// Package gpumodel runs a loaded model (package model) on WebGPU: weights
// uploaded once in their quantized form, one command list and one submit
// per step, logits read back.
//
// In: a *model.Model, an open *webgpu.Device, token ids. Out: the logits of
// the last token, as model.Forward gives them on the CPU (to within the
// float32 rounding of a different summation order: activations stay f32 on
// the GPU, where the CPU path quantizes them as llama.cpp does).
//
// First step of the WebGPU backend: F32, F16, Q8_0, Q4_0, Q4_K and Q6_K
// weights, llama-arch models (no biases). The embedding lookup runs on the
// GPU for F32/F16/Q8_0/Q4_0 embeddings (on the CPU for the others); the
// RoPE angle table is computed on the CPU and written each step.
package gpumodel

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/webinfer/webinfer/wasm/cpu"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/quant"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// uniformStride is the offset between packed uniform blocks: WebGPU's
// minUniformBufferOffsetAlignment is 256 bytes on every adapter.
const uniformStride = 256

// weight is a 2-D weight on the GPU.
type weight struct {
	typ        gguf.Type
	rows, cols int
	qs, d      webgpu.Buffer // split types: quants and scales
	f          webgpu.Buffer // other types: the data as it is
}

// matmulKernels is the product kernel of each weight type on the GPU.
var matmulKernels = map[gguf.Type]func() kernels.Kernel{
	gguf.TypeF32: kernels.MatMulF32, gguf.TypeF16: kernels.MatMulF16,
	gguf.TypeQ8_0: kernels.MatMulQ8_0, gguf.TypeQ4_0: kernels.MatMulQ4_0,
	gguf.TypeQ4_K: kernels.MatMulQ4_K, gguf.TypeQ6_K: kernels.MatMulQ6_K,
}

// splits turns a type's GGUF blocks into word-aligned quants and f32
// scales; types not here are uploaded as they are (and bound as one buffer).
var splits = map[gguf.Type]func([]byte, func(uint16) float32) ([]byte, []float32){
	gguf.TypeQ8_0: kernels.SplitQ8_0, gguf.TypeQ4_0: kernels.SplitQ4_0, gguf.TypeQ6_K: kernels.SplitQ6_K,
}

// getRowsTypes are the embedding types get_rows.wgsl reads.
var getRowsTypes = map[gguf.Type]bool{gguf.TypeF32: true, gguf.TypeF16: true, gguf.TypeQ8_0: true, gguf.TypeQ4_0: true}

// workgroupForms lists the types whose kernel has a workgroup-per-row form.
var workgroupForms = map[gguf.Type]bool{gguf.TypeF32: true, gguf.TypeQ8_0: true, gguf.TypeQ4_0: true}

// Runner holds a model's GPU buffers, pipelines and bind groups.
type Runner struct {
	dev      *webgpu.Device
	m        *model.Model
	ctx      int // positions the KV cache holds
	maxBatch int
	pos      int

	// Activations: (maxBatch, ·) f32.
	x, xn, q, k, v, att, o, gate, up, scores, cs webgpu.Buffer
	xLast, xLastN, logits, best                  webgpu.Buffer
	kc, vc                                       []webgpu.Buffer // per layer (ctx, kvDim)
	params                                       webgpu.Buffer   // packed uniform blocks
	paramBlocks                                  [][]byte        // this step's blocks, in slot order
	slots                                        map[string]int

	layers  []layerGPU
	output  weight
	outNorm webgpu.Buffer
	steps   []func(cl *webgpu.CommandList, T int)
	cl      webgpu.CommandList
	pipes   map[string]webgpu.Pipeline
	allBufs []webgpu.Buffer
	stepPre []func(T, pos int) // fill paramBlocks
	wgRows  *bool              // matmul form, see WorkgroupPerRow
	timings Timings
	argmax  func(cl *webgpu.CommandList)
	ids     webgpu.Buffer // (maxBatch) u32 token ids, when the lookup runs on the GPU
	embed   *weight       // the token embedding on the GPU, nil: looked up on the CPU
	// Per-step input buffers, reused: a step allocates nothing for them.
	idsBuf    []byte
	csBuf     []float32
	paramsBuf []byte
}

type layerGPU struct {
	attnNorm, ffnNorm          webgpu.Buffer
	wq, wk, wv, wo, wg, wu, wd weight
}

// Supported says whether the runner handles m, and if not why.
func Supported(m *model.Model) error {
	if m.QKVBias {
		return fmt.Errorf("gpumodel: %s models (Q/K/V biases) do not run on WebGPU yet", m.Arch)
	}
	check := func(w cpu.Weight) error {
		if _, ok := matmulKernels[w.Type]; !ok {
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

// WorkgroupPerRow picks the matmul form of single-token (decode) steps:
// one workgroup per row (coalesced reads, for real GPUs) or one invocation
// per row (for CPU adapters, and always for batches). By default New picks
// from the adapter: one invocation per row on a fallback (software)
// adapter, one workgroup per row otherwise.
func WorkgroupPerRow(on bool) Option { return func(r *Runner) { r.wgRows = &on } }

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

func (r *Runner) uploadWeight(w cpu.Weight) (weight, error) {
	g := weight{typ: w.Type, rows: w.Rows, cols: w.Cols}
	var err error
	if split, ok := splits[w.Type]; ok {
		qs, d := split(w.Data, quant.F16ToF32)
		if g.qs, err = r.upload(qs, w.Name+".qs"); err != nil {
			return g, err
		}
		g.d, err = r.upload(webgpu.Float32Bytes(d), w.Name+".d")
		return g, err
	}
	g.f, err = r.upload(w.Data, w.Name)
	return g, err
}

func (r *Runner) pipeline(ctx context.Context, k kernels.Kernel) (webgpu.Pipeline, error) {
	key := k.Name + fmt.Sprint(k.Constants)
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
	mk(&r.xn, B*c.Embd, "xn")
	mk(&r.q, B*qDim, "q")
	mk(&r.k, B*kvDim, "k")
	mk(&r.v, B*kvDim, "v")
	mk(&r.att, B*qDim, "att")
	mk(&r.o, B*c.Embd, "o")
	mk(&r.gate, B*c.FF, "gate")
	mk(&r.up, B*c.FF, "up")
	mk(&r.scores, B*c.Heads*r.ctx, "scores")
	mk(&r.cs, B*c.RopeDims, "rope.cs")
	mk(&r.xLast, c.Embd, "x.last")
	mk(&r.xLastN, c.Embd, "x.last.norm")
	mk(&r.logits, m.Vocab, "logits")
	mk(&r.best, 1, "argmax")
	// Room for 64 uniform blocks.
	if err == nil {
		r.params, err = r.dev.CreateBuffer(64*uniformStride, webgpu.UsageUniform|webgpu.UsageCopyDst, "params")
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
	if r.output, err = r.uploadWeight(m.Output); err != nil {
		return err
	}
	// The embedding lookup runs on the GPU for the types get_rows reads,
	// from the output product's buffers when the two are tied.
	if getRowsTypes[m.TokEmbd.Type] {
		if m.TiedOutput {
			r.embed = &r.output
		} else {
			e, err := r.uploadWeight(m.TokEmbd)
			if err != nil {
				return err
			}
			r.embed = &e
		}
		if r.ids, err = r.dev.CreateBuffer(int64(4*B), webgpu.UsageStorage|webgpu.UsageCopyDst, "ids"); err != nil {
			return err
		}
		r.allBufs = append(r.allBufs, r.ids)
	}
	for _, ly := range m.Layers {
		var g layerGPU
		if g.attnNorm, err = r.upload(webgpu.Float32Bytes(ly.AttnNorm), "attn_norm"); err != nil {
			return err
		}
		if g.ffnNorm, err = r.upload(webgpu.Float32Bytes(ly.FFNNorm), "ffn_norm"); err != nil {
			return err
		}
		for _, p := range []struct {
			dst *weight
			w   cpu.Weight
		}{{&g.wq, ly.Wq}, {&g.wk, ly.Wk}, {&g.wv, ly.Wv}, {&g.wo, ly.Wo}, {&g.wg, ly.Wgate}, {&g.wu, ly.Wup}, {&g.wd, ly.Wdown}} {
			if *p.dst, err = r.uploadWeight(p.w); err != nil {
				return err
			}
		}
		r.layers = append(r.layers, g)
	}
	return r.record(ctx)
}

// record builds the pipelines and bind groups once, and the list of
// dispatches a step makes (recorded anew each step for its batch size).
func (r *Runner) record(ctx context.Context) error {
	m := r.m
	c := m.Config
	kvDim := c.KVDim()
	pNorm, err := r.pipeline(ctx, kernels.RMSNorm())
	if err != nil {
		return err
	}
	// Each matmul has one invocation per row for batches (prefill: every
	// invocation reuses its row's loads across the batch's vectors in
	// cache) and, for the types that have it and where wgRows says so, one
	// workgroup per row for single-token decode steps (coalesced reads).
	rowPipes := map[gguf.Type]webgpu.Pipeline{}
	wgPipes := map[gguf.Type]webgpu.Pipeline{}
	for typ, k := range matmulKernels {
		if rowPipes[typ], err = r.pipeline(ctx, k()); err != nil {
			return err
		}
		if *r.wgRows && workgroupForms[typ] {
			if wgPipes[typ], err = r.pipeline(ctx, kernels.Workgroup(k())); err != nil {
				return err
			}
		}
	}
	maxPerDim := int(r.dev.Info().Limit("maxComputeWorkgroupsPerDimension"))
	if maxPerDim == 0 {
		maxPerDim = 65535
	}
	pRope, err := r.pipeline(ctx, kernels.Rope(c.RopeNeoX))
	if err != nil {
		return err
	}
	pAttn, err := r.pipeline(ctx, kernels.Attention())
	if err != nil {
		return err
	}
	pSiLU, err := r.pipeline(ctx, kernels.SiLUMul())
	if err != nil {
		return err
	}
	pAdd, err := r.pipeline(ctx, kernels.Add())
	if err != nil {
		return err
	}
	whole := webgpu.Whole
	rmsnorm := func(in, w, out webgpu.Buffer, last bool) error {
		name := "norm"
		if last {
			name = "norm.last"
		}
		u := r.slot(name, func(T, _ int) []byte {
			rows := T
			if last {
				rows = 1
			}
			return kernels.RMSNormParams(c.Embd, c.RMSEps, rows)
		})
		bg, err := r.dev.BindGroupRanges(pNorm, whole(in), whole(w), whole(out), u)
		if err != nil {
			return err
		}
		r.steps = append(r.steps, func(cl *webgpu.CommandList, T int) {
			n := T
			if last {
				n = 1
			}
			cl.Dispatch(pNorm, bg, uint32(n), 1, 1)
		})
		return nil
	}
	matmul := func(w weight, in, out webgpu.Buffer, last bool) error {
		name := fmt.Sprintf("mm.%dx%d.%v", w.rows, w.cols, last)
		u := r.slot(name, func(T, _ int) []byte {
			if last {
				T = 1
			}
			return kernels.MatMulParams(w.rows, w.cols, T)
		})
		p := rowPipes[w.typ]
		bindings := []webgpu.Binding{whole(w.f), whole(in), whole(out), u}
		if _, split := splits[w.typ]; split {
			bindings = []webgpu.Binding{whole(w.qs), whole(w.d), whole(in), whole(out), u}
		}
		bg, err := r.dev.BindGroupRanges(p, bindings...)
		if err != nil {
			return err
		}
		pw, wgForm := wgPipes[w.typ]
		var bgw webgpu.BindGroup
		if wgForm {
			// Layouts are "auto": each pipeline needs its own bind group.
			if bgw, err = r.dev.BindGroupRanges(pw, bindings...); err != nil {
				return err
			}
		}
		r.steps = append(r.steps, func(cl *webgpu.CommandList, T int) {
			if last {
				T = 1
			}
			if wgForm && T == 1 {
				x, y, z := kernels.WorkgroupGrid(w.rows, T, maxPerDim)
				cl.Dispatch(pw, bgw, x, y, z)
				return
			}
			cl.Dispatch(p, bg, uint32((w.rows+63)/64), uint32(T), 1)
		})
		return nil
	}
	elementwise := func(p webgpu.Pipeline, a, b webgpu.Buffer, width int) error {
		u := r.slot(fmt.Sprintf("ew.%d", width), func(T, _ int) []byte { return kernels.ElementwiseParams(T * width) })
		bg, err := r.dev.BindGroupRanges(p, whole(a), whole(b), u)
		if err != nil {
			return err
		}
		r.steps = append(r.steps, func(cl *webgpu.CommandList, T int) {
			x, y := kernels.ElementwiseGrid(T * width)
			cl.Dispatch(p, bg, x, y, 1)
		})
		return nil
	}
	rope := func(buf webgpu.Buffer, heads int) error {
		u := r.slot(fmt.Sprintf("rope.%d", heads), func(T, _ int) []byte { return kernels.RopeParams(heads, c.HeadDim, c.RopeDims, T) })
		bg, err := r.dev.BindGroupRanges(pRope, whole(buf), whole(r.cs), u)
		if err != nil {
			return err
		}
		r.steps = append(r.steps, func(cl *webgpu.CommandList, T int) {
			cl.Dispatch(pRope, bg, uint32((heads*c.RopeDims/2+63)/64), uint32(T), 1)
		})
		return nil
	}
	if r.embed != nil {
		ew := *r.embed
		pGet, err := r.pipeline(ctx, kernels.GetRows(uint32(ew.typ)))
		if err != nil {
			return err
		}
		qs, d := ew.qs, ew.d
		if _, split := splits[ew.typ]; !split {
			qs, d = ew.f, ew.f // d is unused for these types, but must be bound
		}
		u := r.slot("get_rows", func(T, _ int) []byte { return kernels.GetRowsParams(c.Embd, T) })
		bg, err := r.dev.BindGroupRanges(pGet, whole(r.ids), whole(qs), whole(d), whole(r.x), u)
		if err != nil {
			return err
		}
		r.steps = append(r.steps, func(cl *webgpu.CommandList, T int) {
			cl.Dispatch(pGet, bg, uint32((c.Embd+63)/64), uint32(T), 1)
		})
	}
	for l := range r.layers {
		g := &r.layers[l]
		if err := rmsnorm(r.x, g.attnNorm, r.xn, false); err != nil {
			return err
		}
		for _, mm := range []struct {
			w   weight
			out webgpu.Buffer
		}{{g.wq, r.q}, {g.wk, r.k}, {g.wv, r.v}} {
			if err := matmul(mm.w, r.xn, mm.out, false); err != nil {
				return err
			}
		}
		if err := rope(r.q, c.Heads); err != nil {
			return err
		}
		if err := rope(r.k, c.HeadsKV); err != nil {
			return err
		}
		kb, vb := r.kc[l], r.vc[l]
		r.steps = append(r.steps, func(cl *webgpu.CommandList, T int) {
			// Append this step's keys and values to the cache.
			off := f32n(r.pos * kvDim)
			cl.Copy(r.k, 0, kb, off, f32n(T*kvDim))
			cl.Copy(r.v, 0, vb, off, f32n(T*kvDim))
		})
		u := r.slot("attn", func(T, pos int) []byte {
			return kernels.AttentionParams(c.Heads, c.HeadsKV, c.HeadDim, r.ctx, pos, T, 1/float32(math.Sqrt(float64(c.HeadDim))))
		})
		bg, err := r.dev.BindGroupRanges(pAttn, whole(r.q), whole(kb), whole(vb), whole(r.scores), whole(r.att), u)
		if err != nil {
			return err
		}
		r.steps = append(r.steps, func(cl *webgpu.CommandList, T int) { cl.Dispatch(pAttn, bg, uint32(c.Heads), uint32(T), 1) })
		if err := matmul(g.wo, r.att, r.o, false); err != nil {
			return err
		}
		if err := elementwise(pAdd, r.x, r.o, c.Embd); err != nil {
			return err
		}
		if err := rmsnorm(r.x, g.ffnNorm, r.xn, false); err != nil {
			return err
		}
		if err := matmul(g.wg, r.xn, r.gate, false); err != nil {
			return err
		}
		if err := matmul(g.wu, r.xn, r.up, false); err != nil {
			return err
		}
		if err := elementwise(pSiLU, r.gate, r.up, c.FF); err != nil {
			return err
		}
		if err := matmul(g.wd, r.gate, r.o, false); err != nil {
			return err
		}
		if err := elementwise(pAdd, r.x, r.o, c.Embd); err != nil {
			return err
		}
	}
	r.steps = append(r.steps, func(cl *webgpu.CommandList, T int) {
		cl.Copy(r.x, f32n((T-1)*c.Embd), r.xLast, 0, f32n(c.Embd))
	})
	if err := rmsnorm(r.xLast, r.outNorm, r.xLastN, true); err != nil {
		return err
	}
	if err := matmul(r.output, r.xLastN, r.logits, true); err != nil {
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
	if len(r.paramBlocks) > 64 {
		return fmt.Errorf("gpumodel: %d uniform blocks, room for 64", len(r.paramBlocks))
	}
	return nil
}

// Forward runs tokens at positions Pos(), Pos()+1, ... and returns the
// logits of the last one: embedding rows, the RoPE table and the uniform
// blocks are written (three writes), the whole step is one submit, and the
// logits are one read.
func (r *Runner) Forward(ctx context.Context, tokens []int32) ([]float32, error) {
	if err := r.step(tokens, false); err != nil {
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
	if err := r.step(tokens, true); err != nil {
		return 0, err
	}
	t2 := time.Now()
	raw, err := r.dev.Read(ctx, r.best, 0, 4)
	if err != nil {
		return 0, err
	}
	r.timings.Wait += time.Since(t2)
	return int32(uint32(raw[0]) | uint32(raw[1])<<8 | uint32(raw[2])<<16 | uint32(raw[3])<<24), nil
}

// step writes the inputs of tokens and submits their forward pass (chunks
// of maxBatch first), with the argmax dispatch when greedy.
func (r *Runner) step(tokens []int32, greedy bool) error {
	c := r.m.Config
	for len(tokens) > r.maxBatch {
		if err := r.step(tokens[:r.maxBatch], false); err != nil {
			return err
		}
		tokens = tokens[r.maxBatch:]
	}
	T := len(tokens)
	if T == 0 {
		return fmt.Errorf("gpumodel: no tokens")
	}
	if r.pos+T > r.ctx {
		return model.ErrContextFull{Need: r.pos + T, Have: r.ctx}
	}
	t0 := time.Now()
	for _, t := range tokens {
		if t < 0 || int(t) >= r.m.Vocab {
			return fmt.Errorf("gpumodel: token id %d is outside the vocabulary", t)
		}
	}
	// The step's first input: token ids for the GPU lookup, or the rows.
	if r.embed != nil {
		ids := growBytes(&r.idsBuf, 4*T)
		for i, t := range tokens {
			ids[4*i], ids[4*i+1], ids[4*i+2], ids[4*i+3] = byte(t), byte(t>>8), byte(t>>16), byte(t>>24)
		}
		if err := r.dev.WriteBuffer(r.ids, 0, ids); err != nil {
			return err
		}
	} else {
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
	if err := r.dev.WriteBuffer(r.cs, 0, webgpu.Float32Bytes(cs)); err != nil {
		return err
	}
	if err := r.dev.WriteBuffer(r.params, 0, params); err != nil {
		return err
	}
	t1 := time.Now()
	r.cl.Reset()
	for _, s := range r.steps {
		s(&r.cl, T)
	}
	if greedy {
		r.argmax(&r.cl)
	}
	if err := r.dev.Submit(&r.cl); err != nil {
		return err
	}
	r.pos += T
	r.timings.Prepare += t1.Sub(t0)
	r.timings.Submit += time.Since(t1)
	r.timings.Steps++
	return nil
}

// Timings splits the wall time of Forward calls: preparing inputs on the
// CPU and writing them, recording and submitting the command list, and
// waiting for the logits (GPU work plus the read back).
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

// Dispatches is the number of dispatches and copies in one step.
func (r *Runner) Dispatches() int { return r.cl.Len() }

// growBytes returns (*buf)[:n], growing *buf when it is too small.
func growBytes(buf *[]byte, n int) []byte {
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	*buf = (*buf)[:n]
	return *buf
}
