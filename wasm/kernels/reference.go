package kernels

import "math"

// MatVecRef computes y = W·x for a row-major (rows, cols) matrix, slowly and
// plainly: each dot product is accumulated in float64 and rounded once, so it
// is within half an ulp of the exact result. It returns y and, for each row,
// Σ|w·x| (what the error bound of a float32 dot product scales with).
func MatVecRef(w []float32, x []float32, rows, cols int) (y []float32, absSum []float64) {
	y = make([]float32, rows)
	absSum = make([]float64, rows)
	for r := 0; r < rows; r++ {
		var acc, abs float64
		for c := 0; c < cols; c++ {
			p := float64(w[r*cols+c]) * float64(x[c])
			acc += p
			abs += math.Abs(p)
		}
		y[r] = float32(acc)
		absSum[r] = abs
	}
	return y, absSum
}

// DotBound is the tolerance for a float32 dot product of length n whose
// terms have absolute sum absSum, against the exact result: the classic
// forward error bound of recursive summation, γ_n·Σ|wᵢxᵢ| with
// γ_n = n·u/(1−n·u) and u = 2⁻²⁴ (Higham, Accuracy and Stability of
// Numerical Algorithms, §3.1), plus half an ulp for rounding the reference.
// Any summation order (GPU tiles, FMA, SIMD lanes) stays within it, so a
// result outside it is a bug, not rounding.
func DotBound(n int, absSum float64, ref float32) float64 {
	const u = 1.0 / (1 << 24)
	nu := float64(n) * u
	gamma := nu / (1 - nu)
	return gamma*absSum + u*math.Abs(float64(ref))
}

// Comparison is the outcome of checking a result against the reference.
type Comparison struct {
	N          int     `json:"n"`           // elements compared
	MaxAbsErr  float64 `json:"max_abs_err"` // largest |got − want|
	WorstRow   int     `json:"worst_row"`   // where the bound was tightest (or first broken)
	WorstBound float64 `json:"worst_bound"` // the bound at WorstRow
	Failures   int     `json:"failures"`    // elements outside their bound
	NMSE       float64 `json:"nmse"`        // Σ(got−want)² / Σwant²
}

// OK reports whether every element was within its bound.
func (c Comparison) OK() bool { return c.Failures == 0 && c.N > 0 }

// CompareMatVec checks got against the reference of a matvec with inner
// length cols, element by element with DotBound, and reports the whole-vector
// normalised MSE as well.
func CompareMatVec(got, want []float32, absSum []float64, cols int) Comparison {
	c := Comparison{N: len(want), WorstRow: -1}
	if len(got) != len(want) {
		c.Failures = len(want)
		return c
	}
	var num, den float64
	worstRatio := -1.0
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		bound := DotBound(cols, absSum[i], want[i])
		if d > c.MaxAbsErr {
			c.MaxAbsErr = d
		}
		if d > bound {
			c.Failures++
		}
		ratio := d / math.Max(bound, math.SmallestNonzeroFloat64)
		if ratio > worstRatio {
			worstRatio, c.WorstRow, c.WorstBound = ratio, i, bound
		}
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den > 0 {
		c.NMSE = num / den
	}
	return c
}

// MatMulRef is the plain reference of matmul.wgsl: w is the weight matrix
// dequantized, row-major with cols columns (2·p.Rows rows when f.Gated);
// x holds p.Batch vectors from element p.XOff; nw and b are the fused
// norm's weights and the bias (nil when unused); y is the output buffer as
// it was before the product (read when f.Acc) and is not changed.
// It returns the whole output buffer after the product, and for each
// element the tolerance a float32 GPU computation must meet: DotBound of
// each dot product, carried through the norm and SwiGLU.
func MatMulRef(w, x, nw, b, y []float32, p MatMulParams, f Fusion) (want []float32, tol []float64) {
	want = append([]float32(nil), y...)
	tol = make([]float64, len(y))
	stride := p.YStride
	if stride == 0 {
		stride = p.Rows
	}
	const u = 1.0 / (1 << 24)
	for t := 0; t < p.Batch; t++ {
		xt := x[p.XOff+t*p.Cols : p.XOff+(t+1)*p.Cols]
		in := make([]float64, p.Cols)
		scale := 1.0
		if f.Norm {
			var ss float64
			for _, v := range xt {
				ss += float64(v) * float64(v)
			}
			scale = 1 / math.Sqrt(ss/float64(p.Cols)+float64(p.Eps))
		}
		for c, v := range xt {
			in[c] = float64(v)
			if f.Norm {
				in[c] *= float64(nw[c])
			}
		}
		dot := func(row int) (float64, float64) {
			var acc, abs float64
			for c := 0; c < p.Cols; c++ {
				q := float64(w[row*p.Cols+c]) * in[c]
				acc += q
				abs += math.Abs(q)
			}
			// The dot's bound (with room for the x·nw products), and the
			// norm's factor: its Σx² is a dot of length cols too.
			e := (DotBound(p.Cols+8, abs, 0) + 8*u*math.Abs(acc)) * scale
			acc *= scale
			if f.Norm {
				e += float64(p.Cols) * u * math.Abs(acc)
			}
			return acc, e
		}
		for row := 0; row < p.Rows; row++ {
			r, e := dot(row)
			if f.Gated {
				up, eu := dot(row + p.Rows)
				silu := r / (1 + math.Exp(-r))
				// d silu/dg is at most 1.1 in magnitude.
				e = 1.1*e*math.Abs(up) + math.Abs(silu)*eu + e*eu
				r = silu * up
				e += 4 * u * math.Abs(r)
			}
			if f.Bias {
				r += float64(b[row])
				e += u * math.Abs(r)
			}
			i := p.YOff + t*stride + row
			if f.Acc {
				r += float64(y[i])
				e += u * math.Abs(r)
			}
			want[i] = float32(r)
			tol[i] = e + u*math.Abs(r)
		}
	}
	return want, tol
}

// RopeKVRef is the plain reference of rope_kv.wgsl: qkv holds the fused
// Q/K/V outputs of T = len(spans) tokens, cs their (T, dims/2, 2) cos/sin
// table; it returns the rotated queries (T, heads·headDim) and writes
// keys and values into kc and vc ((rows, kvHeads·headDim)), token t at
// row spans[t].Base + spans[t].Len − 1.
func RopeKVRef(qkv, cs []float32, heads, kvHeads, headDim, dims int, spans []Span, neox bool, kc, vc []float32) (q []float32) {
	qDim, kvDim := heads*headDim, kvHeads*headDim
	T := len(spans)
	q = make([]float32, T*qDim)
	half := dims / 2
	rotate := func(src, dst []float32, t int) {
		copy(dst, src)
		for i := 0; i < half; i++ {
			a, b := 2*i, 2*i+1
			if neox {
				a, b = i, i+half
			}
			c, s := cs[(t*half+i)*2], cs[(t*half+i)*2+1]
			dst[a] = src[a]*c - src[b]*s
			dst[b] = src[a]*s + src[b]*c
		}
	}
	for t := 0; t < T; t++ {
		row := qkv[t*(qDim+2*kvDim):]
		for h := 0; h < heads; h++ {
			rotate(row[h*headDim:(h+1)*headDim], q[t*qDim+h*headDim:], t)
		}
		at := (spans[t].Base + spans[t].Len - 1) * kvDim
		for h := 0; h < kvHeads; h++ {
			rotate(row[qDim+h*headDim:qDim+(h+1)*headDim], kc[at+h*headDim:], t)
		}
		copy(vc[at:at+kvDim], row[qDim+kvDim:qDim+2*kvDim])
	}
	return q
}

// AttentionRef is the plain reference of attention.wgsl: causal softmax
// attention of T = len(spans) queries (T, heads·headDim) over caches k and
// v ((rows, kvHeads·headDim)): query t over rows spans[t].Base … +Len−1,
// in float64. It returns (T, heads·headDim).
func AttentionRef(q, k, v []float32, heads, kvHeads, headDim int, spans []Span) []float32 {
	T := len(spans)
	out := make([]float32, T*heads*headDim)
	kvDim := kvHeads * headDim
	scale := 1 / math.Sqrt(float64(headDim))
	for t := 0; t < T; t++ {
		for h := 0; h < heads; h++ {
			kvh := h / (heads / kvHeads)
			qo := (t*heads + h) * headDim
			n := spans[t].Len
			k, v := k[spans[t].Base*kvDim:], v[spans[t].Base*kvDim:]
			s := make([]float64, n)
			mx := math.Inf(-1)
			for p := range s {
				for e := 0; e < headDim; e++ {
					s[p] += float64(q[qo+e]) * float64(k[p*kvDim+kvh*headDim+e])
				}
				s[p] *= scale
				mx = math.Max(mx, s[p])
			}
			var sum float64
			for p := range s {
				s[p] = math.Exp(s[p] - mx)
				sum += s[p]
			}
			for e := 0; e < headDim; e++ {
				var a float64
				for p := range s {
					a += s[p] * float64(v[p*kvDim+kvh*headDim+e])
				}
				out[qo+e] = float32(a / sum)
			}
		}
	}
	return out
}
