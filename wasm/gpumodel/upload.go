package gpumodel

import (
	"context"
	"fmt"

	"github.com/webinfer/webinfer/wasm/cpu"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/quant"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// Uploading a model: its weights in their products' layouts, the
// activations, the KV cache.

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

// weightPart is one part of a weight (kernels.Parts) and its buffers.
type weightPart struct {
	kernels.Part
	data, scales webgpu.Buffer
}

// bindings are the part's bindings in a product.
func (w *weight) bindings(p weightPart) []webgpu.Binding {
	if w.split {
		return []webgpu.Binding{webgpu.Whole(p.data), webgpu.Whole(p.scales)}
	}
	return []webgpu.Binding{webgpu.Whole(p.data)}
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

// uploadChunk bounds the bytes of weights read and transformed at once
// by an upload: of a lazily loaded model (model.LoadLazy), no more than
// this is in memory at a time.
const uploadChunk = 1 << 20

// uploadWeight uploads ws (of one type and width) as one matrix, their
// rows one after the other, a chunk of rows at a time (read from the file
// when the model is lazy). Parts of rows beyond the first are split off
// when the matrix is larger than a binding may be (see fits).
func (r *Runner) uploadWeight(ws ...cpu.Weight) (*weight, error) {
	g := &weight{typ: ws[0].Type.String(), cols: ws[0].Cols}
	layout, _ := kernels.Layout(g.typ)
	g.split = layout.Split
	for _, w := range ws {
		g.rows += w.Rows
	}
	rowBytes := ws[0].RowBytes()
	// What one row becomes (Split works block by block).
	one, err := rowsOf(ws, 0, 1)
	if err != nil {
		return g, err
	}
	d1, s1 := kernels.Split(g.typ, one, quant.F16ToF32)
	dataRow, scaleRow := int64(len(d1)), int64(4*len(s1))
	for _, part := range kernels.Parts(g.rows, rowBytes, r.maxBinding) {
		per := part.Rows
		if dataRow%4 == 0 { // writes land at multiples of 4
			per = max(1, min(part.Rows, uploadChunk/rowBytes))
		}
		p := weightPart{Part: part}
		if p.data, err = r.buf(int64(part.Rows)*dataRow, ws[0].Name); err != nil {
			return g, err
		}
		if g.split {
			if p.scales, err = r.buf(int64(part.Rows)*scaleRow, ws[0].Name+".scales"); err != nil {
				return g, err
			}
		}
		for r0 := part.Row0; r0 < part.Row0+part.Rows; r0 += per {
			n := min(per, part.Row0+part.Rows-r0)
			blocks, err := rowsOf(ws, r0, n)
			if err != nil {
				return g, err
			}
			data, scales := kernels.Split(g.typ, blocks, quant.F16ToF32)
			if err := r.dev.WriteBuffer(p.data, int64(r0-part.Row0)*dataRow, data); err != nil {
				return g, err
			}
			if g.split {
				if err := r.dev.WriteBuffer(p.scales, int64(r0-part.Row0)*scaleRow, webgpu.Float32Bytes(scales)); err != nil {
					return g, err
				}
			}
		}
		g.parts = append(g.parts, p)
	}
	return g, nil
}

// rowsOf returns rows r0 to r0+n of ws taken as one matrix, their rows
// one after the other.
func rowsOf(ws []cpu.Weight, r0, n int) ([]byte, error) {
	var out []byte
	for _, w := range ws {
		if n == 0 {
			break
		}
		if r0 >= w.Rows {
			r0 -= w.Rows
			continue
		}
		k := min(n, w.Rows-r0)
		b, err := w.ReadRows(r0, k)
		if err != nil {
			return nil, err
		}
		if k == n && out == nil {
			return b, nil // within one weight: no copy
		}
		out = append(out, b...)
		r0, n = 0, n-k
	}
	return out, nil
}

// fits says whether ws, as one matrix, fits one storage binding (their
// GGUF size bounds every buffer their product reads).
func (r *Runner) fits(ws ...cpu.Weight) bool {
	var n int64
	for _, w := range ws {
		n += w.Size()
	}
	return n <= r.maxBinding
}

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
