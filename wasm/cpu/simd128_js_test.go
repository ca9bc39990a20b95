//go:build js

package cpu

import (
	"bytes"
	"math"
	"math/rand/v2"
	"syscall/js"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
)

// isolatedPage reports whether this runs in a cross-origin isolated page
// (the browser tests' server sends COOP/COEP), where the CPU pool must run.
func isolatedPage() bool {
	g := js.Global()
	return g.Get("document").Truthy() && g.Get("crossOriginIsolated").Truthy()
}

// TestPoolRunsWhereIsolated: in a cross-origin isolated page the CPU pool
// starts and its kernels are registered (elsewhere, under Node, it says
// why not).
func TestPoolRunsWhereIsolated(t *testing.T) {
	threads, why := PoolStatus()
	if !isolatedPage() {
		t.Skipf("not an isolated page: %s", why)
	}
	require.Positive(t, threads, why)
	t.Logf("the CPU pool runs on %d threads", threads)
	var n int
	for _, vk := range vectorKernels {
		if vk.isa == poolISA {
			n++
		}
	}
	assert.Equal(t, len(poolOps), n, "a pool kernel for each of its types")
}

// TestPoolProductsAgainstReference runs the pool's products for every
// type it has on shapes a model has (576 to 1536 columns; row counts that
// are not multiples of the chunks; for the float types a row that is not
// a multiple of four), for 1, 3 and 70 tokens at once (past one call's
// poolMaxTokens), against the reference, and for the types whose sums
// kernels.c takes in the Go kernel's order, equal to it bit for bit; and
// on a Weight literal, whose bytes are copied for the call only.
func TestPoolProductsAgainstReference(t *testing.T) {
	// Where kernels.c sums in the Go kernel's order: the K-quants (exact
	// integer sums, the same float expression per block) and F32 (four
	// lanes by index mod 4).
	bitExact := map[gguf.Type]bool{gguf.TypeQ4_K: true, gguf.TypeQ6_K: true, gguf.TypeF32: true}
	if thePoolJS.IsUndefined() {
		t.Skip("no CPU pool here: ", poolWhy)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for typ := range poolOps {
		k := vectorKernel{typ: typ, isa: poolISA, rows: poolRows, all: poolAll}
		shapes := [][2]int{{203, 576}, {61, 1536}, {37, 84}} // 84: a float row's tail
		if typ.BlockSize() == 256 {
			shapes = [][2]int{{203, 768}, {61, 1536}}
		} else if typ.BlockSize() == 32 {
			shapes = shapes[:2]
		}
		for _, shape := range shapes {
			rows, cols := shape[0], shape[1]
			w := randomWeight(t, rng, typ, rows, cols)
			for _, n := range []int{1, 3, 70} {
				as, ys := randomBatch(rng, n, rows, cols)
				for _, a := range as {
					k.prepareActs(a)
				}
				k.all(ys, w, as)
				for i := range as {
					assertMatchesReference(t, w, as[i], ys[i], 0, rows)
					if bitExact[typ] {
						want := make([]float32, rows)
						portableRows(want, w, 0, rows, as[i])
						require.Equal(t, want, ys[i], "%s: the Go kernel's results, bit for bit", typ)
					}
				}
			}
			literal := Weight{Name: "literal", Type: typ, Rows: rows, Cols: cols, Data: w.Data}
			var a Activations
			a.Prepare(make([]float32, cols))
			for j := range a.X {
				a.X[j] = float32(rng.NormFloat64())
			}
			k.prepareActs(&a)
			y := make([]float32, rows)
			k.rows(y, literal, 5, rows-7, &a)
			assertMatchesReference(t, literal, &a, y, 5, rows-7)
		}
	}
}

// TestMaterializeOutside: a lazily loaded weight read straight into the
// pool's memory has no bytes in Go's (Data nil) yet is resident, reads
// back its rows (a GPU upload's ReadRows), and runs both the pool's
// kernel and the Go one (exact activations read its rows back) right.
func TestMaterializeOutside(t *testing.T) {
	if thePoolJS.IsUndefined() {
		t.Skip("no CPU pool here: ", poolWhy)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	src := randomWeight(t, rng, gguf.TypeQ4_K, 37, 512)
	w := Weight{Name: "lazy", Type: src.Type, Rows: src.Rows, Cols: src.Cols, Src: bytes.NewReader(append([]byte{9, 9, 9}, src.Data...)), Off: 3}
	ok, err := MaterializeOutside(&w)
	require.NoError(t, err)
	require.True(t, ok, "the pool runs Q4_K")
	assert.Nil(t, w.Data)
	assert.True(t, w.Resident())
	rows, err := w.ReadRows(3, 5)
	require.NoError(t, err)
	rb := src.RowBytes()
	assert.Equal(t, src.Data[3*rb:8*rb], rows)
	var a Activations
	a.Prepare(make([]float32, w.Cols))
	for j := range a.X {
		a.X[j] = float32(rng.NormFloat64())
	}
	y := make([]float32, w.Rows)
	MatVec(y, w, &a)
	assertMatchesReference(t, src, &a, y, 0, w.Rows)
	exact := Activations{Exact: true}
	exact.Prepare(a.X)
	yExact := make([]float32, w.Rows)
	MatVec(yExact, w, &exact)
	for r := range yExact {
		assert.InDelta(t, y[r], yExact[r], 0.05*(1+math.Abs(float64(y[r]))), "row %d: the Go kernel on the rows read back", r)
	}
}

// TestPoolSurvivesAFrozenWorker: a product whose chunk a worker claimed
// and never finished (debugStall) is noticed after a few seconds; the
// pool gives its workers up, the product is computed on the engine's
// thread and is right, and the next ones run there. It runs last: the
// pool stays on one thread afterwards.
func TestPoolSurvivesAFrozenWorker(t *testing.T) {
	if thePoolJS.IsUndefined() {
		t.Skip("no CPU pool here: ", poolWhy)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	k := vectorKernel{typ: gguf.TypeQ8_0, isa: poolISA, rows: poolRows, all: poolAll}
	w := randomWeight(t, rng, gguf.TypeQ8_0, 203, 576)
	var a Activations
	a.Prepare(make([]float32, 576))
	for j := range a.X {
		a.X[j] = float32(rng.NormFloat64())
	}
	k.prepareActs(&a)
	thePoolJS.Call("debugStall")
	y := make([]float32, w.Rows)
	k.rows(y, w, 0, w.Rows, &a)
	assertMatchesReference(t, w, &a, y, 0, w.Rows)
	threads, why := PoolStatus()
	assert.Equal(t, 1, threads)
	assert.Contains(t, why, "stopped responding")
	clear(y)
	k.rows(y, w, 0, w.Rows, &a)
	assertMatchesReference(t, w, &a, y, 0, w.Rows)
}
