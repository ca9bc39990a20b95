package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
)

// TestEveryKernelAgainstReference runs each vector kernel this build and
// CPU have, and its portable twin, forced (whatever the timing chose),
// against the reference, on shapes that leave tails: a row range that
// is not a multiple of the kernels' eight-row groups, and block counts
// that are not multiples of their eight-block groups. Rows outside the
// range must stay untouched.
func TestEveryKernelAgainstReference(t *testing.T) {
	kernels := []vectorKernel{}
	for _, vk := range vectorKernels {
		kernels = append(kernels, vk, vectorKernel{typ: vk.typ, isa: "go", rows: portableRows})
	}
	if len(kernels) == 0 {
		t.Skip("no vector kernels in this build or on this CPU (make test-simd builds them)")
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for _, k := range kernels {
		colsList := []int{1312, 64} // 41 and 2 blocks of 32
		if k.typ.BlockSize() == 256 {
			colsList = []int{2304, 512} // 9 and 2 super-blocks
		}
		for _, cols := range colsList {
			t.Run(fmt.Sprintf("%s/%s/%d", k.typ, k.isa, cols), func(t *testing.T) {
				const rows, lo, hi = 29, 3, 26
				w := randomWeight(t, rng, k.typ, rows, cols)
				x := make([]float32, cols)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				// A longer vector first, so that the padding of the reused
				// activation buffers must be cleared again.
				var a Activations
				a.Prepare(make([]float32, cols+256))
				for i := range a.X {
					a.X[i] = 1e4
				}
				k.prepareActs(&a)
				a.Prepare(x)
				k.prepareActs(&a)
				y := make([]float32, rows)
				for i := range y {
					y[i] = -7
				}
				k.rows(y, w, lo, hi, &a)
				assertMatchesReference(t, w, &a, y, lo, hi)
				for r := range rows {
					if r < lo || r >= hi {
						assert.Equal(t, float32(-7), y[r], "row %d outside the range was written", r)
					}
				}
			})
		}
	}
}

// TestTileKernelsEqualRows runs each batched kernel, on two, three and
// four tokens, against its one-token form on the tails of TestEveryKernelAgainstReference: every
// token's results must be the one-token ones bit for bit (a token's
// logits may not depend on its batch), and rows outside the range stay
// untouched.
func TestTileKernelsEqualRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	tiles := 0
	for _, k := range vectorKernels {
		if k.tile == nil {
			continue
		}
		tiles++
		for _, cols := range []int{1312, 64, 32} {
			t.Run(fmt.Sprintf("%s/%s/%d", k.typ, k.isa, cols), func(t *testing.T) {
				const rows, lo, hi = 29, 3, 26
				w := randomWeight(t, rng, k.typ, rows, cols)
				var ys, want [4][]float32
				var as [4]*Activations
				for i := range as {
					x := make([]float32, cols)
					for j := range x {
						x[j] = float32(rng.NormFloat64() * float64(i+1))
					}
					as[i] = &Activations{}
					as[i].Prepare(x)
					k.prepareActs(as[i])
					ys[i], want[i] = make([]float32, rows), make([]float32, rows)
					for r := range rows {
						ys[i][r], want[i][r] = -7, -7
					}
					k.rows(want[i], w, lo, hi, as[i])
				}
				for n := 2; n <= 4; n++ {
					for i := range ys {
						for r := range rows {
							ys[i][r] = -7
						}
					}
					k.tile(ys, w, lo, hi, as, n)
					for i := range n {
						assert.Equal(t, want[i], ys[i], "token %d of %d", i, n)
						assertMatchesReference(t, w, as[i], ys[i], lo, hi)
					}
				}
			})
		}
	}
	if tiles == 0 {
		t.Skip("no four-token kernels on this CPU")
	}
}

// TestMatMulEqualsMatVec checks that a batch of 1 to 9 tokens through
// MatMul, with the kernels chosen on this CPU (four-token ones included,
// padded batches too), gives each token MatVec's results bit for bit.
func TestMatMulEqualsMatVec(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, typ := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_K, gguf.TypeF16} {
		const rows, cols = 70, 768
		w := randomWeight(t, rng, typ, rows, cols)
		for n := 1; n <= 9; n++ {
			as, ys := randomBatch(rng, n, rows, cols)
			MatMul(ys, w, as)
			for i, a := range as {
				want := make([]float32, rows)
				var solo Activations
				solo.Prepare(a.X)
				MatVec(want, w, &solo)
				require.Equal(t, want, ys[i], "%s: token %d of %d", typ, i, n)
			}
		}
	}
}

// TestMatMulSharedEqualsMatMul: several weights with the same activations
// in one call (MatMulShared: a layer's Q, K and V; in the browser one
// crossing into the pool) give each weight MatMul's results bit for bit,
// for 1, 3 and 70 tokens (past one pool call's poolMaxTokens), with a
// Weight literal among them (in the browser its bytes are copied for the
// call only) and with weights of two types (one call each).
func TestMatMulSharedEqualsMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const cols = 768
	for _, types := range [][]gguf.Type{
		{gguf.TypeQ8_0, gguf.TypeQ8_0, gguf.TypeQ8_0}, {gguf.TypeQ4_K, gguf.TypeQ4_K}, {gguf.TypeQ4_0, gguf.TypeF16},
	} {
		ws := make([]Weight, len(types))
		for i, typ := range types {
			ws[i] = randomWeight(t, rng, typ, []int{203, 64, 61}[i], cols)
		}
		ws[1] = Weight{Name: "literal", Type: ws[1].Type, Rows: ws[1].Rows, Cols: cols, Data: ws[1].Data}
		for _, n := range []int{1, 3, 70} {
			as, _ := randomBatch(rng, n, 1, cols)
			got := make([][][]float32, len(ws))
			want := make([][][]float32, len(ws))
			for i, w := range ws {
				got[i], want[i] = make([][]float32, n), make([][]float32, n)
				for j := range n {
					got[i][j], want[i][j] = make([]float32, w.Rows), make([]float32, w.Rows)
				}
				MatMul(want[i], w, as)
			}
			MatMulShared(got, ws, as)
			require.Equal(t, want, got, "%v, %d tokens: each weight's MatMul", types, n)
		}
	}
}

// TestCalibrationChoosesAKernel times every type's kernels as the engine
// does at start-up: each candidate is measured, none is dropped for a
// wrong result, and the choice is the fastest of them; a forced mode
// takes the named kernel without timing.
func TestCalibrationChoosesAKernel(t *testing.T) {
	var ks []KernelChoice
	for _, c := range Kernels() {
		if c.Type == "threads" { // the pool's thread count (poolthreads_js_test.go)
			continue
		}
		ks = append(ks, c)
	}
	for _, c := range ks {
		assert.Empty(t, c.Why, c.Type)
		require.Contains(t, c.GBs, c.Chosen, c.Type)
		for name, gbs := range c.GBs {
			assert.Positive(t, gbs, "%s %s", c.Type, name)
		}
	}
	types := map[string]bool{}
	for _, vk := range vectorKernels {
		types[vk.typ.String()] = true
	}
	if vectorAttend != nil {
		types["attention"] = true
	}
	assert.Len(t, ks, len(types))
	if len(ks) == 0 {
		assert.Equal(t, "none", SIMD())
	}
	for _, vk := range vectorKernels {
		c := calibrateType(vk.typ, vk.isa)
		assert.Equal(t, vk.isa, c.Chosen)
		assert.Equal(t, KernelsEnv+"="+vk.isa, c.Why)
		assert.Equal(t, "go", calibrateType(vk.typ, "go").Chosen)
	}
}

// TestAttendKernelsAgainstReference runs attention's two loops, portable
// and vector, against float64 sums, for position counts with and without
// a tail and a head size the vector loops hand to the portable ones.
func TestAttendKernelsAgainstReference(t *testing.T) {
	impls := []attendKernels{portableAttend}
	if vectorAttend != nil {
		impls = append(impls, *vectorAttend)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, k := range impls {
		for _, d := range []int{64, 24} {
			for _, n := range []int{1, 8, 13, 40} {
				stride := 3 * d
				kv := make([]float32, n*stride)
				for i := range kv {
					kv[i] = float32(rng.NormFloat64())
				}
				q, w := make([]float32, d), make([]float32, n)
				for i := range q {
					q[i] = float32(rng.NormFloat64())
				}
				for i := range w {
					w[i] = rng.Float32()
				}
				off := d // the second KV head of each position
				scores := make([]float32, n)
				k.scores(scores, q, kv[off:], stride)
				out := make([]float32, d)
				out[0] = 1
				k.addV(out, w, kv[off:], stride)
				for p := range n {
					var want, abs float64
					for e := range d {
						v := float64(q[e]) * float64(kv[p*stride+off+e])
						want, abs = want+v, abs+math.Abs(v)
					}
					assert.InDelta(t, want, scores[p], 1e-5*abs+1e-6, "%s d=%d n=%d score %d", k.isa, d, n, p)
				}
				for e := range d {
					want, abs := 0.0, 0.0
					if e == 0 {
						want, abs = 1, 1
					}
					for p := range n {
						v := float64(w[p]) * float64(kv[p*stride+off+e])
						want, abs = want+v, abs+math.Abs(v)
					}
					assert.InDelta(t, want, out[e], 1e-5*abs+1e-6, "%s d=%d n=%d value %d", k.isa, d, n, e)
				}
			}
		}
	}
}
