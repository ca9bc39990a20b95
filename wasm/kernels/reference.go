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
