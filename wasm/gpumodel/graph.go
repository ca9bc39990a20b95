package gpumodel

import (
	"context"
	"fmt"
	"math"

	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// The graph of a step: every dispatch, recorded once as a closure over
// its pipeline and bind group, then encoded each step for its shape.

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
// appends its dispatches to the step: one per part of its weight, in the
// form kernels.PlanProduct chooses for the step's tokens.
func (r *Runner) addProduct(ctx context.Context, p product) error {
	parts := make([]kernels.Part, len(p.w.parts))
	for i, wp := range p.w.parts {
		parts[i] = wp.Part
	}
	plan, err := kernels.PlanProduct(p.w.typ, p.f, parts, r.target)
	if err != nil {
		return fmt.Errorf("gpumodel: %w", err)
	}
	pipes := make([]webgpu.Pipeline, len(plan.Kernels))
	for i, k := range plan.Kernels {
		if pipes[i], err = r.pipeline(ctx, k); err != nil {
			return err
		}
	}
	for _, part := range p.w.parts {
		if err := r.addProductPart(p, plan, pipes, part); err != nil {
			return err
		}
	}
	return nil
}

// addProductPart adds the product of one part of p's weight: its rows of
// the output, from row part.Row0.
func (r *Runner) addProductPart(p product, plan kernels.ProductPlan, pipes []webgpu.Pipeline, part weightPart) error {
	rows := part.Rows
	if p.f.Gated {
		rows /= 2
	}
	if p.yStride == 0 {
		p.yStride = p.w.rows
		if p.f.Gated {
			p.yStride /= 2
		}
	}
	p.yOff += part.Row0
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
	// Layouts are "auto": each pipeline needs its own bind group.
	bgs := make([]webgpu.BindGroup, len(pipes))
	for i, pipe := range pipes {
		var err error
		if bgs[i], err = r.dev.BindGroupRanges(pipe, bindings...); err != nil {
			return err
		}
	}
	r.add(plan.Name, func(cl *webgpu.CommandList, s shape) {
		T := s.T
		if p.last {
			T = s.logitRows()
		}
		k, x, y, z := plan.Choose(part.Part, T)
		cl.Dispatch(pipes[k], bgs[k], x, y, z)
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
	attnWG := kernels.AttentionWorkgroup(r.target)
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
	split := kernels.ArgmaxSplits(r.target, m.Vocab)
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
