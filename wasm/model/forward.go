package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/webinfer/webinfer/wasm/cpu"
)

// State is one sequence's KV cache and position. The cache grows as
// positions fill (doubling, up to Ctx), so a sequence holds memory for
// the positions it uses, not for the context it may reach. In the
// browser, where attention runs on the CPU pool, the cache lives in the
// pool's memory only (pool; K and V are nil). It is not safe for
// concurrent use; give each sequence its own.
type State struct {
	Ctx   int         // positions the cache may hold
	Pos   int         // positions filled so far
	K     [][]float32 // per layer: (positions held, KVDim) keys, rotated (nil with pool)
	V     [][]float32 // per layer: (positions held, KVDim) values (nil with pool)
	kvDim int
	held  int
	pool  *cpu.PoolKV
}

// initialPositions is what a new State holds before it grows.
const initialPositions = 64

// NewState makes a KV cache that may hold ctx positions.
func (m *Model) NewState(ctx int) *State {
	s := &State{Ctx: ctx, kvDim: m.KVDim()}
	n := min(ctx, initialPositions)
	if cpu.PoolAttends() {
		if s.pool = cpu.NewPoolKV(m.Blocks, n, s.kvDim); s.pool != nil {
			s.held = n
			return s
		}
	}
	s.K, s.V = make([][]float32, m.Blocks), make([][]float32, m.Blocks)
	s.reserve(n) // in Go's memory, which cannot fail short of a crash
	return s
}

// ErrKVMemory is what a KV cache that cannot grow is, for errors.Is.
var ErrKVMemory = errors.New("model: no memory for the KV cache")

// reserve makes room for n positions (n ≤ Ctx); it fails only where the
// cache lives in the CPU pool's memory and that cannot grow.
func (s *State) reserve(n int) error {
	held := s.held
	if n <= held {
		return nil
	}
	grown := min(s.Ctx, max(n, 2*held))
	if s.pool != nil {
		if !s.pool.Grow(grown, s.Pos) {
			return fmt.Errorf("%w: %d positions do not fit in the CPU pool's memory", ErrKVMemory, grown)
		}
		s.held = grown
		return nil
	}
	for l := range s.K {
		k, v := make([]float32, grown*s.kvDim), make([]float32, grown*s.kvDim)
		copy(k, s.K[l][:s.Pos*s.kvDim])
		copy(v, s.V[l][:s.Pos*s.kvDim])
		s.K[l], s.V[l] = k, v
	}
	s.held = grown
	return nil
}

// Free gives the cache's memory back now rather than when the State is
// collected: the CPU pool's memory, which Go's collector does not see,
// so that a page serving many requests does not run it ahead of
// collection. The State is empty afterwards and must not be used again.
func (s *State) Free() {
	if s == nil {
		return
	}
	s.pool.Free()
	s.pool, s.K, s.V, s.held, s.Pos = nil, nil, nil, 0, 0
}

// Held is the positions the cache has room for now.
func (s *State) Held() int { return s.held }

// Bytes is the memory the cache holds now.
func (s *State) Bytes() int64 {
	layers := len(s.K)
	if s.pool != nil {
		layers = s.pool.Layers()
	}
	return int64(2*layers*s.held*s.kvDim) * 4
}

// PositionBytes is what one position of the CPU path's KV cache takes
// (keys and values of every layer, f32).
func (m *Model) PositionBytes() int64 { return int64(2*m.Blocks*m.KVDim()) * 4 }

// ErrContextFull is what a full context is, for errors.Is: every
// ContextFullError is one.
var ErrContextFull = errors.New("model: the context is full")

// ContextFullError is returned when tokens do not fit in a cache (the CPU
// path's State, or a backend's): Need positions, Have in the cache.
type ContextFullError struct{ Need, Have int }

func (e ContextFullError) Error() string {
	return fmt.Sprintf("model: the prompt and output need %d positions but the context holds %d", e.Need, e.Have)
}

// Is makes errors.Is(err, ErrContextFull) true.
func (e ContextFullError) Is(target error) bool { return target == ErrContextFull }

// scratch holds a batch's activations between steps.
type scratch struct {
	x, xn, q, k, v, att, o []float32 // (n, ·) row-major
	gate, up               []float32
	acts                   []cpu.Activations
}

// Forward runs tokens at positions st.Pos, st.Pos+1, ... through the model,
// appends their keys and values to st, and returns the logits of the last
// token (len Vocab). Several tokens make a prefill; one makes a decode step.
func (m *Model) Forward(st *State, tokens []int32) ([]float32, error) {
	n := len(tokens)
	if n == 0 {
		return nil, fmt.Errorf("no tokens")
	}
	if st.Pos+n > st.Ctx {
		return nil, ContextFullError{Need: st.Pos + n, Have: st.Ctx}
	}
	if err := st.reserve(st.Pos + n); err != nil {
		return nil, err
	}
	rows := make([]row, n)
	for i := range rows {
		rows[i] = row{st: st, pos: st.Pos + i}
	}
	pt := newPassTimer(m.Profile, n == 1)
	x, err := m.forward(&pt, rows, tokens)
	if err != nil {
		return nil, err
	}
	st.Pos += n
	logits := m.logits(&pt, [][]float32{x[(n-1)*m.Embd:]})[0]
	pt.done(n)
	return logits, nil
}

// ForwardBatch runs one token of each of several sequences in one pass:
// tokens[i] at position sts[i].Pos of sts[i] (distinct states), appending
// its key and value there, and returns each one's logits. Each weight is
// read once for the whole batch; every sequence's logits are those its
// own Forward gives, bit for bit (the same dot products, in the same
// order).
func (m *Model) ForwardBatch(sts []*State, tokens []int32) ([][]float32, error) {
	n := len(tokens)
	if n == 0 || len(sts) != n {
		return nil, fmt.Errorf("model: a batch of %d states and %d tokens", len(sts), n)
	}
	rows := make([]row, n)
	seen := make(map[*State]bool, n)
	for i, st := range sts {
		if seen[st] {
			return nil, fmt.Errorf("model: state %d appears twice in a batch", i)
		}
		seen[st] = true
		if st.Pos+1 > st.Ctx {
			return nil, ContextFullError{Need: st.Pos + 1, Have: st.Ctx}
		}
		if err := st.reserve(st.Pos + 1); err != nil {
			return nil, err
		}
		rows[i] = row{st: st, pos: st.Pos}
	}
	pt := newPassTimer(m.Profile, true)
	x, err := m.forward(&pt, rows, tokens)
	if err != nil {
		return nil, err
	}
	last := make([][]float32, n)
	for i, st := range sts {
		st.Pos++
		last[i] = x[i*m.Embd : (i+1)*m.Embd]
	}
	logits := m.logits(&pt, last)
	pt.done(n)
	return logits, nil
}

// Part is one sequence's share of a mixed pass (ForwardMixed): Tokens
// fed to St at St.Pos onwards, and, with Logits, the last one's logits
// returned.
type Part struct {
	St     *State
	Tokens []int32
	Logits bool
}

// ForwardMixed runs several sequences' tokens in one pass, each weight
// read once for all of them: prompt chunks and decode tokens together (a
// scheduler's step). Each part's tokens go to its state at St.Pos
// onwards (distinct states); the result holds, for each part with
// Logits, its last token's logits (nil for the others). Every token's
// logits and cache rows are those of its own Forward, bit for bit.
func (m *Model) ForwardMixed(parts []Part) ([][]float32, error) {
	var rows []row
	var tokens []int32
	seen := make(map[*State]bool, len(parts))
	for i, p := range parts {
		if len(p.Tokens) == 0 {
			return nil, fmt.Errorf("model: part %d of a pass has no tokens", i)
		}
		if seen[p.St] {
			return nil, fmt.Errorf("model: state %d appears twice in a pass", i)
		}
		seen[p.St] = true
		if p.St.Pos+len(p.Tokens) > p.St.Ctx {
			return nil, ContextFullError{Need: p.St.Pos + len(p.Tokens), Have: p.St.Ctx}
		}
	}
	for _, p := range parts {
		if err := p.St.reserve(p.St.Pos + len(p.Tokens)); err != nil {
			return nil, err
		}
		for i := range p.Tokens {
			rows = append(rows, row{st: p.St, pos: p.St.Pos + i})
		}
		tokens = append(tokens, p.Tokens...)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("model: an empty pass")
	}
	pt := newPassTimer(m.Profile, len(rows) == len(parts))
	x, err := m.forward(&pt, rows, tokens)
	if err != nil {
		return nil, err
	}
	var last [][]float32
	end := 0
	for _, p := range parts {
		end += len(p.Tokens)
		p.St.Pos += len(p.Tokens)
		if p.Logits {
			last = append(last, x[(end-1)*m.Embd:end*m.Embd])
		}
	}
	out := make([][]float32, len(parts))
	if len(last) > 0 {
		logits := m.logits(&pt, last)
		k := 0
		for i, p := range parts {
			if p.Logits {
				out[i] = logits[k]
				k++
			}
		}
	}
	pt.done(len(rows))
	return out, nil
}

// row is one token of a pass: the sequence whose cache it joins and its
// position there.
type row struct {
	st  *State
	pos int
}

// forward runs tokens[i] at rows[i] through the layers, writing each
// row's key and value into its cache, and returns the final hidden
// states, (n, Embd) row-major. Positions do not advance here. pt times
// the phases (when it has a profile).
func (m *Model) forward(pt *passTimer, rs []row, tokens []int32) ([]float32, error) {
	n := len(tokens)
	for _, t := range tokens {
		if t < 0 || int(t) >= m.Vocab {
			return nil, fmt.Errorf("token id %d is outside the vocabulary of %d", t, m.Vocab)
		}
	}
	c := m.Config
	qDim, kvDim := c.Heads*c.HeadDim, c.KVDim()
	s := &scratch{
		x: make([]float32, n*c.Embd), xn: make([]float32, n*c.Embd),
		q: make([]float32, n*qDim), k: make([]float32, n*kvDim), v: make([]float32, n*kvDim),
		att: make([]float32, n*qDim), o: make([]float32, n*c.Embd),
		gate: make([]float32, n*c.FF), up: make([]float32, n*c.FF),
		acts: make([]cpu.Activations, n),
	}
	for i := range s.acts {
		s.acts[i].Exact = m.ExactActivations
	}
	t := pt.now()
	for i, tok := range tokens {
		if err := m.TokEmbd.DequantizeRow(int(tok), s.x[i*c.Embd:(i+1)*c.Embd]); err != nil {
			return nil, err
		}
	}
	t = pt.since(PhaseEmbed, t)
	// Each row's RoPE angles, computed once for all layers (the same
	// float32 values every layer would compute).
	ropes := make([][2][]float32, n)
	for i, r := range rs {
		ropes[i][0], ropes[i][1] = m.RopeTable(r.pos)
	}
	t = pt.since(PhaseRope, t)
	rows := func(buf []float32, width int) [][]float32 {
		out := make([][]float32, n)
		for i := range out {
			out[i] = buf[i*width : (i+1)*width]
		}
		return out
	}
	// prepared are the activations of in, (n, width) row-major, for a
	// product (each is quantized in the product that first reads it).
	prepared := func(in []float32, width int) []*cpu.Activations {
		as := make([]*cpu.Activations, n)
		for i := range as {
			s.acts[i].Prepare(in[i*width : (i+1)*width])
			as[i] = &s.acts[i]
		}
		return as
	}
	product := func(out []float32, w cpu.Weight, as []*cpu.Activations) {
		cpu.MatMul(rows(out, w.Rows), w, as)
		pt.read(w.Size())
	}
	// shared is product for weights that read the same activations, in
	// one call where the kernels allow (the browser's pool).
	shared := func(outs [][]float32, ws []cpu.Weight, as []*cpu.Activations) {
		ys := make([][][]float32, len(ws))
		for i, w := range ws {
			ys[i] = rows(outs[i], w.Rows)
			pt.read(w.Size())
		}
		cpu.MatMulShared(ys, ws, as)
	}
	norms := func(w []float32) {
		for i := 0; i < n; i++ {
			rmsNorm(s.xn[i*c.Embd:(i+1)*c.Embd], s.x[i*c.Embd:(i+1)*c.Embd], w, c.RMSEps)
		}
	}

	for l := range m.Layers {
		ly := &m.Layers[l]
		norms(ly.AttnNorm)
		t = pt.since(PhaseNorm, t)
		// One set of quantized activations serves Q, K and V.
		as := prepared(s.xn, c.Embd)
		shared([][]float32{s.q, s.k, s.v}, []cpu.Weight{ly.Wq, ly.Wk, ly.Wv}, as)
		t = pt.since(PhaseProducts, t)
		for i, r := range rs {
			if ly.Bq != nil {
				addTo(s.q[i*qDim:(i+1)*qDim], ly.Bq)
				addTo(s.k[i*kvDim:(i+1)*kvDim], ly.Bk)
				addTo(s.v[i*kvDim:(i+1)*kvDim], ly.Bv)
			}
			m.rotate(s.q[i*qDim:(i+1)*qDim], c.Heads, ropes[i][0], ropes[i][1])
			m.rotate(s.k[i*kvDim:(i+1)*kvDim], c.HeadsKV, ropes[i][0], ropes[i][1])
			if r.st.pool == nil { // else attention writes them into the pool's cache
				copy(r.st.K[l][r.pos*kvDim:(r.pos+1)*kvDim], s.k[i*kvDim:(i+1)*kvDim])
				copy(r.st.V[l][r.pos*kvDim:(r.pos+1)*kvDim], s.v[i*kvDim:(i+1)*kvDim])
			}
		}
		t = pt.since(PhaseRope, t)
		m.attention(s, rs, l)
		t = pt.since(PhaseAttention, t)
		product(s.o, ly.Wo, prepared(s.att, qDim))
		t = pt.since(PhaseProducts, t)
		addTo(s.x, s.o)
		t = pt.since(PhaseResidual, t)

		norms(ly.FFNNorm)
		t = pt.since(PhaseNorm, t)
		as = prepared(s.xn, c.Embd)
		shared([][]float32{s.gate, s.up}, []cpu.Weight{ly.Wgate, ly.Wup}, as)
		t = pt.since(PhaseProducts, t)
		if !cpu.PoolSiLU(s.gate, s.up) { // the browser's pool runs it, where there is one
			// By element, not by row: a decode step's one row splits too
			// (an exp is some 40 multiply-adds of work).
			cpu.ParallelRows(n*c.FF, n*c.FF*40, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					g := s.gate[i]
					s.gate[i] = g / (1 + float32(math.Exp(float64(-g)))) * s.up[i] // SiLU(gate)·up
				}
			})
		}
		t = pt.since(PhaseFFNAct, t)
		product(s.o, ly.Wdown, prepared(s.gate, c.FF))
		t = pt.since(PhaseProducts, t)
		addTo(s.x, s.o)
		t = pt.since(PhaseResidual, t)
	}
	return s.x, nil
}

// logits normalizes each hidden state in xs and projects it onto the
// vocabulary, reading the output weight once for all of them.
func (m *Model) logits(pt *passTimer, xs [][]float32) [][]float32 {
	t := pt.now()
	defer pt.since(PhaseLogits, t)
	c := m.Config
	out := make([][]float32, len(xs))
	as := make([]*cpu.Activations, len(xs))
	for i, x := range xs {
		xn := make([]float32, c.Embd)
		rmsNorm(xn, x, m.OutputNorm, c.RMSEps)
		as[i] = &cpu.Activations{Exact: m.ExactActivations}
		as[i].Prepare(xn)
		out[i] = make([]float32, m.Vocab)
	}
	if len(xs) == 1 {
		cpu.MatVec(out[0], m.Output, as[0])
	} else {
		cpu.MatMul(out, m.Output, as)
	}
	return out
}

// rmsNorm is y = x / sqrt(mean(x²) + eps) · w, the sum of squares in
// float64 as ggml accumulates it.
func rmsNorm(y, x, w []float32, eps float32) {
	var sum float64
	for _, v := range x {
		sum += float64(v * v)
	}
	scale := 1 / float32(math.Sqrt(float64(float32(sum/float64(len(x)))+eps)))
	for i, v := range x {
		y[i] = v * scale * w[i]
	}
}

func addTo(dst, src []float32) {
	for i := range dst {
		dst[i] += src[i]
	}
}

// RopeTable returns the cosines and sines of the RoPE angles of position
// pos (RopeDims/2 pairs). The angle of pair i is
// pos·scale·base^(−2i/dims)/freq[i], computed as ggml does: a float32
// running product, so our angles match its angles.
func (m *Model) RopeTable(pos int) (cos, sin []float32) {
	c := m.Config
	thetaScale := float32(math.Pow(float64(c.RopeBase), -2/float64(c.RopeDims)))
	half := c.RopeDims / 2
	cos = make([]float32, half)
	sin = make([]float32, half)
	theta := float32(pos)
	for i := 0; i < half; i++ {
		ff := float32(1)
		if m.RopeFreqs != nil {
			ff = m.RopeFreqs[i]
		}
		t := c.RopeScale * (theta / ff)
		cos[i] = float32(math.Cos(float64(t)))
		sin[i] = float32(math.Sin(float64(t)))
		theta *= thetaScale
	}
	return cos, sin
}

// rotate rotates each of the heads in x (heads × HeadDim) by the RoPE
// angles whose cosines and sines RopeTable gave.
func (m *Model) rotate(x []float32, heads int, cos, sin []float32) {
	c := m.Config
	half := c.RopeDims / 2
	for h := 0; h < heads; h++ {
		v := x[h*c.HeadDim : (h+1)*c.HeadDim]
		for i := 0; i < half; i++ {
			var a, b *float32
			if c.RopeNeoX {
				a, b = &v[i], &v[i+half]
			} else {
				a, b = &v[2*i], &v[2*i+1]
			}
			x0, x1 := *a, *b
			*a = x0*cos[i] - x1*sin[i]
			*b = x0*sin[i] + x1*cos[i]
		}
	}
}

// attention computes, for each row i and head h, the softmax-weighted sum
// of values over positions 0..rows[i].pos of row i's cache (causal), into
// s.att: on the browser's CPU pool for the rows whose caches live there
// (writing their keys and values in first), in Go for the others.
func (m *Model) attention(s *scratch, rs []row, layer int) {
	c := m.Config
	qDim, kvDim := c.Heads*c.HeadDim, c.KVDim()
	group := c.Heads / c.HeadsKV
	scale := 1 / float32(math.Sqrt(float64(c.HeadDim)))
	var pooled []cpu.AttendRow
	goRows := make([]int, 0, len(rs)) // the indexes of the rows attention runs in Go
	for i, r := range rs {
		if r.st.pool == nil {
			goRows = append(goRows, i)
			continue
		}
		pooled = append(pooled, cpu.AttendRow{
			Q: s.q[i*qDim : (i+1)*qDim], Out: s.att[i*qDim : (i+1)*qDim],
			NewK: s.k[i*kvDim : (i+1)*kvDim], NewV: s.v[i*kvDim : (i+1)*kvDim], Pos: r.pos,
			KV: r.st.pool, End: r.pos + 1,
		})
	}
	if len(pooled) > 0 && !cpu.PoolAttend(layer, c.Heads, group, c.HeadDim, kvDim, scale, pooled) {
		// A cache in the pool's memory always has the room (reserve).
		panic("model: the CPU pool refused attention over its own KV cache")
	}
	if len(goRows) == 0 {
		return
	}
	span := 0
	for _, i := range goRows {
		span = max(span, rs[i].pos+1)
	}
	n := len(goRows)
	cpu.ParallelRows(n*c.Heads, n*c.Heads*span*c.HeadDim, func(lo, hi int) {
		scores := make([]float32, span)
		for j := lo; j < hi; j++ {
			i, h := goRows[j/c.Heads], j%c.Heads
			kvh := h / group
			K, V := rs[i].st.K[layer], rs[i].st.V[layer]
			q := s.q[i*qDim+h*c.HeadDim : i*qDim+(h+1)*c.HeadDim]
			end := rs[i].pos + 1
			cpu.AttendScores(scores[:end], q, K[kvh*c.HeadDim:], kvDim)
			mx := float32(math.Inf(-1))
			for p := 0; p < end; p++ {
				scores[p] *= scale
				mx = max(mx, scores[p])
			}
			var sum float64
			for p := 0; p < end; p++ {
				e := float32(math.Exp(float64(scores[p] - mx)))
				scores[p] = e
				sum += float64(e)
			}
			inv := float32(1 / sum)
			out := s.att[i*qDim+h*c.HeadDim : i*qDim+(h+1)*c.HeadDim]
			clear(out)
			for p := 0; p < end; p++ {
				scores[p] *= inv
			}
			cpu.AttendValues(out, scores[:end], V[kvh*c.HeadDim:], kvDim)
		}
	})
}
