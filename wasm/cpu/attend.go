package cpu

// Attention's two inner loops over the KV cache, for one head: the scores
// q·k for every cached position, and the softmax-weighted sum of values.
// K and V rows are stride floats apart (all KV heads of a position side by
// side); each function reads len(q) (len(out)) floats of each row.

// attendKernels is one implementation of the pair.
type attendKernels struct {
	isa    string
	scores func(scores, q, K []float32, stride int)
	addV   func(out, weights, V []float32, stride int)
}

var (
	portableAttend = attendKernels{"go", scoresGo, addVGo}
	vectorAttend   *attendKernels // registered by a vector build, if the CPU has it
	attend         = portableAttend
)

// AttendScores sets scores[p] = q · K[p·stride : p·stride+len(q)] for every
// p < len(scores).
func AttendScores(scores, q, K []float32, stride int) {
	chooseKernels()
	attend.scores(scores, q, K, stride)
}

// AttendValues adds weights[p] · V[p·stride : p·stride+len(out)] into out
// for every p < len(weights).
func AttendValues(out, weights, V []float32, stride int) {
	chooseKernels()
	attend.addV(out, weights, V, stride)
}

func scoresGo(scores, q, K []float32, stride int) {
	for p := range scores {
		scores[p] = dotGo(q, K[p*stride:p*stride+len(q)])
	}
}

// dotGo is Σ a[i]·b[i] with four partial sums, so that the multiply-adds
// overlap instead of waiting for each other.
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func addVGo(out, weights, V []float32, stride int) {
	for p, w := range weights {
		v := V[p*stride : p*stride+len(out)]
		for e := range out {
			out[e] += w * v[e]
		}
	}
}

// AttendRow is one row of the browser pool's attention (PoolAttend): its
// query and output (heads × HeadDim floats), its sequence's cache, the
// row's own key and value (stride floats each, written at position Pos
// first; nil: none) and how many positions it attends to. Natively
// PoolAttend takes none.
type AttendRow struct {
	Q, Out     []float32
	NewK, NewV []float32
	Pos        int
	KV         *PoolKV
	End        int
}
