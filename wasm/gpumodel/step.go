package gpumodel

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// Step plumbing: a step's inputs written, its command list encoded and
// submitted; the uniform blocks and pipelines it uses.

// uniformStride is the offset between packed uniform blocks: WebGPU's
// minUniformBufferOffsetAlignment is 256 bytes on every adapter.
const uniformStride = 256

// uniformSize is the bytes bound of each uniform block (the largest,
// attention's, is 48).
const uniformSize = 64

// maxUniformBlocks is the room in the step's uniform buffer: blocks are
// shared by every layer, so a model needs about a dozen.
const maxUniformBlocks = 64

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
	var from []int
	if fromGPU {
		tokens, from = []int32{0}, fromPick0
	}
	T := len(tokens)
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
	return r.submit(tokens, r.seq0[:T], shape{T: T}, how, from)
}

// fromPick0 feeds a step's one token from column 0 of the last pick.
var fromPick0 = []int{0}

// submit writes a step's inputs (token t of sequence seqs[t], or where
// from[t] >= 0 the pick in column from[t] of the step before, copied on
// the GPU; from nil: none is) and submits it: one command list, one
// submit.
func (r *Runner) submit(tokens []int32, seqs []int, s shape, how pick, from []int) error {
	t0 := time.Now()
	if err := r.prepare(tokens, seqs, &s, from); err != nil {
		return err
	}
	t1 := time.Now()
	r.encode(s, how, from, false)
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

// encode records a step into r.cl: the copies of the previous step's
// picks into the ids that come from them (from), the step's dispatches,
// the pick. With names (Profile), r.cmdNames gets each command's kernel;
// a step for decoding skips that.
func (r *Runner) encode(s shape, how pick, from []int, names bool) {
	r.cl.Reset()
	r.cmdNames = r.cmdNames[:0]
	label := func(name string) {
		for names && len(r.cmdNames) < r.cl.Len() {
			r.cmdNames = append(r.cmdNames, name)
		}
	}
	// One copy per run of columns that come in order from consecutive
	// picks (a batch whose sequences all go on: one copy).
	for t := 0; t < len(from); {
		if from[t] < 0 {
			t++
			continue
		}
		n := 1
		for t+n < len(from) && from[t+n] == from[t]+n {
			n++
		}
		r.cl.Copy(r.best, int64(4*from[t]), r.ids, int64(4*t), int64(4*n))
		label("copy")
		t += n
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

// prepare checks a step and writes its inputs: the token ids (unless all
// come from the last picks: from) or their embedding rows, each token's
// span of the cache and RoPE angles (token t is the next position of
// sequence seqs[t]), and the uniform blocks. It sets how the step runs
// attention (s.chunks, s.fused).
func (r *Runner) prepare(tokens []int32, seqs []int, s *shape, from []int) error {
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
	// Ids copied from the picks are written after these (in the step's
	// command list), over the placeholders written here.
	fromPicks := 0
	for _, f := range from {
		if f >= 0 {
			fromPicks++
		}
	}
	switch {
	case fromPicks > 0 && r.embed == nil:
		return fmt.Errorf("gpumodel: a step's tokens from the picks, with the embedding lookup on the CPU")
	case fromPicks == T:
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

// growBytes returns (*buf)[:n], growing *buf when it is too small.
func growBytes(buf *[]byte, n int) []byte {
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	*buf = (*buf)[:n]
	return *buf
}
