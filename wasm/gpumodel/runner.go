// Package gpumodel runs a loaded model (package model) on WebGPU: weights
// uploaded once in their quantized form, one command list and one submit
// per step, a token id (or the logits) read back.
//
// In: a *model.Model, an open *webgpu.Device, token ids. Out: the logits of
// the last token, as model.Forward gives them on the CPU (to within the
// float32 rounding of a different summation order: activations stay f32 on
// the GPU, where the CPU path quantizes them as llama.cpp does; f16 with
// HalfActivations), or token ids picked on the GPU (greedy or sampled as
// package sample does), a step queued ahead of the one being read
// (engine.Decoder: engine.Pipeline drives it); or, with Sequences, one
// token for each of several sequences per step (engine.Batcher). The
// runner never calls back into the engine.
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
	"fmt"
	"sort"

	"github.com/webinfer/webinfer/wasm/cpu"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

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
	cmdNames       []string
	cl             webgpu.CommandList
	pipes          map[string]webgpu.Pipeline
	allBufs        []webgpu.Buffer
	stepPre        []func(s shape) // fill paramBlocks
	wgRows         *bool           // matmul form, see WorkgroupPerRow
	transposedRows *int            // the transposed form from this many rows, see TransposedRows
	// subgroups: the workgroup form reduces with subgroupAdd
	// (kernels.SubgroupsFit).
	subgroups bool
	target    kernels.Target // what the products run on (from the above)
	half      bool           // see HalfActivations
	splitAt   *int           // see AttentionSplitAt
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

// WeightTypes lists the GGUF types of m's product weights (the blocks'
// and the output's), sorted: the products a runner of m compiles.
func WeightTypes(m *model.Model) []string {
	seen := map[string]bool{m.Output.Type.String(): true}
	for _, l := range m.Layers {
		for _, w := range []cpu.Weight{l.Wq, l.Wk, l.Wv, l.Wo, l.Wgate, l.Wup, l.Wdown} {
			seen[w.Type.String()] = true
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Option tunes New.
type Option func(*Runner)

// WorkgroupPerRow picks the product forms (kernels.Target.Workgroups):
// workgroups (for real GPUs: 8 rows per workgroup for up to 8 tokens, 64×64
// tiles for larger batches; kernels.ProductPlan.Choose) or one invocation
// per row (for CPU adapters). By default New takes DeviceTarget's choice:
// one invocation per row on a fallback (software) adapter, workgroups
// otherwise.
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

// TransposedRows sets the fewest output rows of a product that takes the
// transposed few-tokens form (kernels.Target.TransposedRows) in batched
// steps; 0 never; by default DeviceTarget's.
func TransposedRows(n int) Option { return func(r *Runner) { r.transposedRows = &n } }

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
	info := dev.Info()
	r.target = DeviceTarget(info)
	if r.wgRows == nil {
		r.wgRows = &r.target.Workgroups
	}
	r.target.Workgroups = *r.wgRows
	if r.transposedRows != nil {
		r.target.TransposedRows = *r.transposedRows
	}
	r.subgroups = r.target.Subgroups
	r.maxDim = r.target.MaxPerDim
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
	if err := r.build(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// defaultTransposedRows is the fewest output rows of a product that takes
// the transposed few-tokens form (main_wgt) by default, where it runs:
// none until it is measured on a real GPU with subgroups.
const defaultTransposedRows = 0

// DeviceTarget is what the products run on by default on a device of
// info (see WorkgroupPerRow): the workgroup forms except on a fallback
// (software) adapter, subgroups where they are 32 wide. The start-up
// self-check checks the forms it implies.
func DeviceTarget(info webgpu.Info) kernels.Target {
	t := kernels.Target{
		Workgroups: !info.Adapter.IsFallbackAdapter,
		Subgroups:  kernels.SubgroupsFit(info.HasFeature("subgroups"), info.Adapter.SubgroupMinSize, info.Adapter.SubgroupMaxSize),
		MaxPerDim:  int(info.Limit("maxComputeWorkgroupsPerDimension")),
	}
	// The limit as the shim raised it (to the adapter's maximum).
	t.StageTokens = kernels.StageTokensFor(info.Limit("maxComputeWorkgroupStorageSize"), t.Subgroups)
	t.TransposedRows = defaultTransposedRows
	if t.MaxPerDim <= 0 {
		t.MaxPerDim = 65535
	}
	return t
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

// Sequences is how many sequences the KV cache holds (Sequences).
func (r *Runner) Sequences() int { return r.seqs }

// ResetSeq empties sequence seq (its cache is overwritten from position 0).
func (r *Runner) ResetSeq(seq int) { r.pos[seq] = 0 }

// Truncate keeps the first n positions of sequence seq (engine.Batcher):
// the next step writes position n, and attends to rows 0 … n−1 as they are.
func (r *Runner) Truncate(seq, n int) { r.pos[seq] = max(0, min(n, r.pos[seq])) }
