package selfcheck

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/quant"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// Plan is what generation will run on a device: the products' weight
// types, the forms they run in (kernels.Target, as the runner picks them:
// gpumodel.DeviceTarget), and the vocabulary the argmax reads.
type Plan struct {
	WeightTypes []string
	Target      kernels.Target
	Vocab       int
}

// The checked shapes: small enough that a software adapter checks a
// model's kernels in well under a second, large enough to cross the
// kernels' tails (rows not a multiple of a workgroup's, two x chunks).
const (
	checkRows = 37
	checkCols = 512 // a multiple of every type's block (256 for K-quants)
)

// productTokens are the step sizes checked: decode, batched decode and a
// prompt, so that every form the runner chooses (kernels.ProductPlan.Choose)
// runs.
var productTokens = []int{1, 4, 12}

// Generation checks, on dev, the kernels generation runs there in the
// forms the runner picks: each weight type's products (norm fused, and
// norm + gate/up + SwiGLU) for one token, a few and a prompt; attention;
// the argmax (split or not, as for plan.Vocab); and the sampler against
// sample.Pick. Each kernel's cases are one submit. Buffers it makes are
// destroyed before it returns.
func Generation(ctx context.Context, dev *webgpu.Device, plan Plan) []Result {
	var out []Result
	for _, typ := range plan.WeightTypes {
		for _, f := range []kernels.Fusion{{Norm: true}, {Norm: true, Gated: true}} {
			out = append(out, run(ctx, dev, "matmul_"+typ+"+"+f.String(), func(g *gpu, r *Result) error {
				return checkProduct(ctx, g, r, typ, f, plan.Target)
			}))
		}
	}
	out = append(out, run(ctx, dev, "attention", func(g *gpu, r *Result) error { return checkAttention(ctx, g, r, plan.Target) }))
	out = append(out, run(ctx, dev, "argmax", func(g *gpu, r *Result) error { return checkArgmax(ctx, g, r, plan) }))
	out = append(out, run(ctx, dev, "sample", func(g *gpu, r *Result) error { return checkSample(ctx, g, r) }))
	return out
}

// gpu is a check's buffers and command list, and the time its pipelines
// took to compile.
type gpu struct {
	dev     *webgpu.Device
	bufs    []webgpu.Buffer
	cl      webgpu.CommandList
	compile time.Duration
}

func (g *gpu) upload(data []byte) (webgpu.Buffer, error) {
	size := max(int64(len(data)+3)/4*4, 16)
	b, err := g.dev.CreateBuffer(size, webgpu.UsageStorage|webgpu.UsageCopyDst|webgpu.UsageCopySrc, "selfcheck")
	if err != nil {
		return b, err
	}
	g.bufs = append(g.bufs, b)
	return b, g.dev.WriteBuffer(b, 0, data)
}

// bindings makes a kernel's buffers in binding order: storage ones from
// data, a uniform block where data is a uniformBlock.
func (g *gpu) bindings(data ...any) ([]webgpu.Buffer, error) {
	bufs := make([]webgpu.Buffer, 0, len(data))
	for _, d := range data {
		var b webgpu.Buffer
		var err error
		switch d := d.(type) {
		case uniformBlock:
			b, err = g.uniform(d)
		case []byte:
			b, err = g.upload(d)
		default:
			panic(fmt.Sprintf("selfcheck: binding of %T", d))
		}
		if err != nil {
			return nil, err
		}
		bufs = append(bufs, b)
	}
	return bufs, nil
}

// uniformBlock is a uniform block's bytes, for bindings.
type uniformBlock []byte

func (g *gpu) uniform(data []byte) (webgpu.Buffer, error) {
	b, err := g.dev.CreateBuffer(64, webgpu.UsageUniform|webgpu.UsageCopyDst, "selfcheck.params")
	if err != nil {
		return b, err
	}
	g.bufs = append(g.bufs, b)
	return b, g.dev.WriteBuffer(b, 0, data)
}

// pipeline compiles k. The shim caches pipelines by source, entry point
// and constants: the runner's identical kernels then reuse these.
func (g *gpu) pipeline(ctx context.Context, k kernels.Kernel) (webgpu.Pipeline, error) {
	t := time.Now()
	defer func() { g.compile += time.Since(t) }()
	return g.dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
}

// submit sends the recorded dispatches in one submit and counts them.
func (g *gpu) submit(r *Result) error {
	before := g.dev.Stats()
	if err := g.dev.Submit(&g.cl); err != nil {
		return err
	}
	after := g.dev.Stats()
	r.Submits += after.Submits - before.Submits
	r.Dispatches += after.Dispatches - before.Dispatches
	return nil
}

// run runs one kernel's check with its own buffers, destroyed after.
func run(ctx context.Context, dev *webgpu.Device, kernel string, check func(*gpu, *Result) error) Result {
	start := time.Now()
	r := Result{Kernel: kernel, Backend: "webgpu"}
	g := &gpu{dev: dev}
	if err := check(g, &r); err != nil {
		r.Error = err.Error()
	}
	for _, b := range g.bufs {
		dev.DestroyBuffer(b)
	}
	r.CompileMillis = float64(g.compile.Microseconds()) / 1000
	return finish(&r, start)
}

func randoms(rng *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = (rng.Float32()*2 - 1) * scale
	}
	return v
}

// compare turns element-wise bounds into a Comparison.
func compare(got, want []float32, tol []float64) kernels.Comparison {
	c := kernels.Comparison{N: len(want)}
	var se, sw float64
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		c.MaxAbsErr = math.Max(c.MaxAbsErr, d)
		c.WorstBound = math.Max(c.WorstBound, tol[i])
		if !(d <= tol[i]) {
			c.Failures++
		}
		se += d * d
		sw += float64(want[i]) * float64(want[i])
	}
	if sw > 0 {
		c.NMSE = se / sw
	}
	return c
}

func checkProduct(ctx context.Context, g *gpu, r *Result, typ string, f kernels.Fusion, t kernels.Target) error {
	gt, ok := gguf.TypeByName(typ)
	if !ok {
		return fmt.Errorf("selfcheck: no GGUF type %s", typ)
	}
	layout, _ := kernels.Layout(typ)
	rng := rand.New(rand.NewPCG(11, uint64(gt)))
	rows := checkRows
	if f.Gated {
		rows *= 2 // gate then up
	}
	blocks, err := quant.Quantize(gt, randoms(rng, rows*checkCols, 1))
	if err != nil {
		return err
	}
	w := make([]float32, rows*checkCols)
	if err := quant.Dequantize(gt, blocks, w); err != nil {
		return err
	}
	parts := []kernels.Part{{Row0: 0, Rows: rows}}
	plan, err := kernels.PlanProduct(typ, f, parts, t)
	if err != nil {
		return err
	}
	data, scales := kernels.Split(typ, blocks, quant.F16ToF32)
	wb, err := g.upload(data)
	if err != nil {
		return err
	}
	weights := []webgpu.Binding{webgpu.Whole(wb)}
	if layout.Split {
		sb, err := g.upload(webgpu.Float32Bytes(scales))
		if err != nil {
			return err
		}
		weights = append(weights, webgpu.Whole(sb))
	}
	pipes := make([]webgpu.Pipeline, len(plan.Kernels))
	for i, k := range plan.Kernels {
		if pipes[i], err = g.pipeline(ctx, k); err != nil {
			return fmt.Errorf("%s: %w", k.Name, err)
		}
	}
	type pending struct {
		c         Case
		y         webgpu.Buffer
		want      []float32
		tol       []float64
		kernelIdx int
	}
	var todo []pending
	nw := randoms(rng, checkCols, 1.5)
	nwb, err := g.upload(webgpu.Float32Bytes(nw))
	if err != nil {
		return err
	}
	outRows := checkRows
	for _, T := range productTokens {
		p := kernels.MatMulParams{Rows: outRows, Cols: checkCols, Batch: T, Eps: 1e-5}
		x := randoms(rng, T*checkCols, 2)
		y0 := make([]float32, T*outRows)
		want, tol := kernels.MatMulRef(w, x, nw, nil, y0, p, f)
		xb, err := g.upload(webgpu.Float32Bytes(x))
		if err != nil {
			return err
		}
		yb, err := g.upload(webgpu.Float32Bytes(y0))
		if err != nil {
			return err
		}
		ub, err := g.uniform(p.Bytes())
		if err != nil {
			return err
		}
		k, gx, gy, gz := plan.Choose(parts[0], T)
		bindings := append(append([]webgpu.Binding(nil), weights...), webgpu.Whole(xb), webgpu.Whole(yb), webgpu.Whole(ub), webgpu.Whole(nwb))
		bg, err := g.dev.BindGroupRanges(pipes[k], bindings...)
		if err != nil {
			return err
		}
		g.cl.Dispatch(pipes[k], bg, gx, gy, gz)
		name := fmt.Sprintf("%d token(s), %s form", T, plan.Forms[k])
		todo = append(todo, pending{c: Case{Name: name, Rows: outRows, Cols: checkCols}, y: yb, want: want, tol: tol, kernelIdx: k})
	}
	if err := g.submit(r); err != nil {
		return err
	}
	for _, p := range todo {
		raw, err := g.dev.Read(ctx, p.y, 0, int64(4*len(p.want)))
		if err != nil {
			return err
		}
		p.c.Comparison = compare(webgpu.BytesToFloat32(raw), p.want, p.tol)
		p.c.OK = p.c.Comparison.OK()
		r.Cases = append(r.Cases, p.c)
	}
	return nil
}

func checkAttention(ctx context.Context, g *gpu, r *Result, t kernels.Target) error {
	wg := kernels.AttentionWorkgroup(t)
	k := kernels.Attention(wg)
	pipe, err := g.pipeline(ctx, k)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(12, 13))
	const heads, kvHeads, headDim, ctxLen = 4, 2, 64, 48
	cases := []struct {
		name  string
		spans []kernels.Span
	}{
		{"decode at position 40", kernels.Consecutive(0, 40, 1)},
		{"a prompt of 6 tokens", kernels.Consecutive(0, 0, 6)},
		{"two sequences", []kernels.Span{{Base: 0, Len: 9}, {Base: ctxLen, Len: 30}}},
	}
	type pending struct {
		c    Case
		out  webgpu.Buffer
		want []float32
	}
	var todo []pending
	for _, c := range cases {
		T := len(c.spans)
		q := randoms(rng, T*heads*headDim, 1)
		kc, vc := randoms(rng, 2*ctxLen*kvHeads*headDim, 1), randoms(rng, 2*ctxLen*kvHeads*headDim, 1)
		want := kernels.AttentionRef(q, kc, vc, heads, kvHeads, headDim, c.spans)
		params := kernels.AttentionParams{Heads: heads, KVHeads: kvHeads, HeadDim: headDim, Ctx: ctxLen, Batch: T,
			Scale: 1 / float32(math.Sqrt(headDim)), Chunks: 1}
		// q, k, v, scores, out, params, spans, partials, qkv and cs
		// (bound, unread when not fused).
		bufs, err := g.bindings(webgpu.Float32Bytes(q), webgpu.Float32Bytes(kc), webgpu.Float32Bytes(vc), make([]byte, 4*T*heads*ctxLen),
			make([]byte, 4*len(want)), uniformBlock(params.Bytes()), kernels.AppendSpans(nil, c.spans),
			make([]byte, kernels.AttentionPartialBytes(T*heads)), make([]byte, 16), make([]byte, 16))
		if err != nil {
			return err
		}
		bg, err := g.dev.BindGroup(pipe, bufs...)
		if err != nil {
			return err
		}
		g.cl.Dispatch(pipe, bg, heads, uint32(T), 1)
		todo = append(todo, pending{c: Case{Name: fmt.Sprintf("%s (%d-wide)", c.name, wg), Rows: T * heads, Cols: headDim, WorkgroupSize: wg}, out: bufs[4], want: want})
	}
	if err := g.submit(r); err != nil {
		return err
	}
	for _, p := range todo {
		raw, err := g.dev.Read(ctx, p.out, 0, int64(4*len(p.want)))
		if err != nil {
			return err
		}
		// A weighted mean of values in [-1, 1]: float32 sums over at most
		// a few dozen positions.
		tol := make([]float64, len(p.want))
		for i := range tol {
			tol[i] = 2e-5
		}
		p.c.Comparison = compare(webgpu.BytesToFloat32(raw), p.want, tol)
		p.c.OK = p.c.Comparison.OK()
		r.Cases = append(r.Cases, p.c)
	}
	return nil
}

func checkArgmax(ctx context.Context, g *gpu, r *Result, plan Plan) error {
	vocab := max(plan.Vocab, 2)
	split := kernels.ArgmaxSplits(plan.Target, vocab)
	rng := rand.New(rand.NewPCG(14, 15))
	x := randoms(rng, 2*vocab, 10)
	want := []int{rng.IntN(vocab), rng.IntN(vocab)}
	x[want[0]], x[vocab+want[1]] = 11, 12
	if want[0]+1 < vocab {
		x[vocab-1] = 11 // a tie later in the row: the first wins
	}
	// logits, the picks, params, the partials of the split form.
	bufs, err := g.bindings(webgpu.Float32Bytes(x), make([]byte, 8), uniformBlock(kernels.ArgmaxParams(vocab)), make([]byte, 8*2*kernels.ArgmaxParts(vocab)))
	if err != nil {
		return err
	}
	ks := []kernels.Kernel{kernels.Argmax()}
	form := "one workgroup a row"
	if split {
		ks = []kernels.Kernel{kernels.ArgmaxPartial(), kernels.ArgmaxFinal()}
		form = "split"
	}
	for i, k := range ks {
		pipe, err := g.pipeline(ctx, k)
		if err != nil {
			return err
		}
		bg, err := g.dev.BindGroup(pipe, bufs...)
		if err != nil {
			return err
		}
		switch {
		case !split:
			g.cl.Dispatch(pipe, bg, 2, 1, 1)
		case i == 0:
			g.cl.Dispatch(pipe, bg, uint32(kernels.ArgmaxParts(vocab)), 2, 1)
		default:
			g.cl.Dispatch(pipe, bg, 2, 1, 1)
		}
	}
	if err := g.submit(r); err != nil {
		return err
	}
	raw, err := g.dev.Read(ctx, bufs[1], 0, 8)
	if err != nil {
		return err
	}
	for row := 0; row < 2; row++ {
		got := int(binary.LittleEndian.Uint32(raw[4*row:]))
		c := Case{Name: fmt.Sprintf("%d logits, row %d (%s)", vocab, row, form), Rows: 1, Cols: vocab}
		c.Comparison = kernels.Comparison{N: 1}
		if got != want[row] {
			c.Comparison.Failures = 1
			c.Comparison.MaxAbsErr = math.Abs(float64(got - want[row]))
		}
		c.OK = c.Comparison.OK()
		r.Cases = append(r.Cases, c)
	}
	return nil
}

// checkSample runs the sampler on columns of seeded logits with the
// page's settings and others, and compares each pick with sample.Pick's.
// A column whose reference pick moves when its draw moves by 1e-4 sits on
// a boundary where f32 and f64 sums may disagree; such draws are avoided
// by choosing the seed (the inputs are fixed, so the check is the same on
// every run).
func checkSample(ctx context.Context, g *gpu, r *Result) error {
	k := kernels.Sample()
	pipe, err := g.pipeline(ctx, k)
	if err != nil {
		return err
	}
	const vocab, ring = 3000, 16
	rng := rand.New(rand.NewPCG(16, 17))
	recentIDs := []int32{3, 7, 7, 1}
	cases := []struct {
		name   string
		p      sample.Params
		recent []int32
	}{
		{"greedy", sample.Params{}, nil},
		{"the defaults", sample.Defaults, nil},
		{"top-k 40, repeat penalty", sample.Params{Temperature: 1, TopK: 40, RepeatPenalty: 1.3, RepeatLastN: 8}, recentIDs},
		{"top-p 0.9", sample.Params{Temperature: 1, TopP: 0.9}, nil},
	}
	T := len(cases)
	logits := make([]float32, T*vocab)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 3)
	}
	var cols, recent []byte
	want := make([]int32, T)
	for c, sc := range cases {
		p := sc.p.Normalized()
		row := logits[c*vocab : (c+1)*vocab]
		// A seed whose draw is not on a boundary.
		for seed := uint64(1); ; seed++ {
			p.Seed = seed
			u := sample.Uniform(seed, uint32(c))
			want[c] = sample.Pick(row, sc.recent, p, u)
			if sample.Pick(row, sc.recent, p, min(u+1e-4, 0.99999)) == want[c] && sample.Pick(row, sc.recent, p, max(u-1e-4, 0)) == want[c] {
				break
			}
		}
		cols = append(cols, kernels.SampleColumn{Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP, MinP: p.MinP,
			RepeatPenalty: p.RepeatPenalty, FrequencyPenalty: p.FrequencyPenalty, PresencePenalty: p.PresencePenalty,
			LastN: min(p.RepeatLastN, ring), Seed: p.Seed, Draw: uint32(c), Row: uint32(c)}.Bytes()...)
		rr := make([]byte, 4*(1+ring))
		binary.LittleEndian.PutUint32(rr, uint32(len(sc.recent)))
		for i, id := range sc.recent {
			binary.LittleEndian.PutUint32(rr[4*(1+i):], uint32(id))
		}
		recent = append(recent, rr...)
	}
	// logits, the picks, the columns, the rings, params.
	bufs, err := g.bindings(webgpu.Float32Bytes(logits), make([]byte, 4*T), cols, recent, uniformBlock(kernels.SampleParams(vocab, ring)))
	if err != nil {
		return err
	}
	bg, err := g.dev.BindGroup(pipe, bufs...)
	if err != nil {
		return err
	}
	g.cl.Dispatch(pipe, bg, uint32(T), 1, 1)
	if err := g.submit(r); err != nil {
		return err
	}
	raw, err := g.dev.Read(ctx, bufs[1], 0, int64(4*T))
	if err != nil {
		return err
	}
	for c, sc := range cases {
		got := int32(binary.LittleEndian.Uint32(raw[4*c:]))
		cs := Case{Name: fmt.Sprintf("%s, %d logits", sc.name, vocab), Rows: 1, Cols: vocab}
		cs.Comparison = kernels.Comparison{N: 1}
		if got != want[c] {
			cs.Comparison.Failures = 1
		}
		cs.OK = cs.Comparison.OK()
		r.Cases = append(r.Cases, cs)
	}
	return nil
}
