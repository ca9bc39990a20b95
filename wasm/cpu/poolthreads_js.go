package cpu

import (
	"math/rand/v2"
	"strconv"
	"syscall/js"
	"time"

	"github.com/webinfer/webinfer/wasm/gguf"
)

// The pool's thread count by measurement: navigator.hardwareConcurrency
// counts logical cores, which can be more than the threads a product
// gains from (two hyper-threads share one core's vector units, and a
// product that has the memory's whole bandwidth gains nothing from more),
// and a busy machine has fewer cores free than it has. So at model load,
// unless the page's threads option chose, one token's product of a weight
// past a core's own caches is timed on 1, 2, … of the pool's threads, and
// the fewest threads within 5% of the fastest run the products.

// poolThreadsSet says the page's threads option set the pool's threads
// (SetPoolThreads with n > 0): the measurement keeps out.
var poolThreadsSet bool

// threadsSlack: a thread count is taken over a smaller one only where it
// is more than this much faster (a spinning thread that gains nothing
// costs the machine a core).
const threadsSlack = 1.05

func init() { tuneThreads = tunePoolThreads }

// poolSize is the threads the pool started with (its most).
func poolSize() int {
	if v := thePoolJS.Get("size"); v.Type() == js.TypeNumber {
		return v.Int()
	}
	return thePoolJS.Get("threads").Int()
}

// tunePoolThreads chooses the pool's threads (see above) and reports the
// choice: Type "threads", Chosen the count, GBs each count's GB/s. False
// where no pool runs the products.
func tunePoolThreads(mode string) (KernelChoice, bool) {
	if thePoolJS.IsUndefined() {
		return KernelChoice{}, false
	}
	c := KernelChoice{Type: "threads"}
	size := poolSize()
	switch {
	case poolThreadsSet:
		c.Chosen, c.Why = strconv.Itoa(thePoolJS.Get("threads").Int()), "the threads option"
		return c, true
	case mode != "" && mode != "auto":
		c.Chosen, c.Why = strconv.Itoa(thePoolJS.Get("threads").Int()), KernelsEnv+"="+mode
		return c, true
	case size <= 1:
		c.Chosen, c.Why = "1", "the pool has one thread"
		return c, true
	}
	w, a, ok := threadsInput(8192, 4096)
	if !ok {
		c.Chosen, c.Why = strconv.Itoa(thePoolJS.Get("threads").Int()), "no room in the pool's memory to measure"
		return c, true
	}
	defer poolFree(w.outside.off)
	y := [][]float32{make([]float32, w.Rows)}
	as := []*Activations{a}
	c.GBs = map[string]float64{}
	// Rounds over every count, each count's best run kept: a moment when
	// the machine is busy elsewhere slows one run of each, not one count.
	best := map[int]time.Duration{}
	for n := 1; n <= size; n++ {
		best[n] = time.Duration(1 << 62)
	}
	for round := range 7 {
		for n := 1; n <= size; n++ {
			thePoolJS.Call("setThreads", n)
			if round == 0 {
				poolAll(y, w, as) // untimed: wakes the threads
			}
			t0 := time.Now()
			poolAll(y, w, as)
			best[n] = min(best[n], time.Since(t0))
		}
	}
	for n := 1; n <= size; n++ {
		c.GBs[strconv.Itoa(n)] = round2(float64(w.RowBytes()*w.Rows) / max(best[n].Seconds(), 1e-9) / 1e9)
	}
	fastest := 1
	for n := 2; n <= size; n++ {
		if best[n] < best[fastest] {
			fastest = n
		}
	}
	chosen := fastest
	for n := fastest - 1; n >= 1; n-- {
		if float64(best[n]) <= threadsSlack*float64(best[fastest]) {
			chosen = n
		}
	}
	c.Chosen = strconv.Itoa(thePoolJS.Call("setThreads", chosen).Int())
	return c, true
}

// threadsInput is a rows×cols Q8_0 weight (36 MB at 8192×4096: past most
// CPUs' last cache, as a model's weights are) whose bytes are only in the
// pool's memory, as they were found there (a product's speed does not
// depend on its values; Go's memory, which never shrinks, holds none of
// them), and one token's activations prepared for it. False: the pool's
// memory cannot grow by that much.
func threadsInput(rows, cols int) (Weight, *Activations, bool) {
	off, ok := poolAlloc(rows * cols / 32 * 34)
	if !ok {
		return Weight{}, nil, false
	}
	w := Weight{Name: "threads calibration", Type: gguf.TypeQ8_0, Rows: rows, Cols: cols, outside: &outsideCopy{off: off, copied: true}}
	rng := rand.New(rand.NewPCG(9, 10))
	x := make([]float32, cols)
	for i := range x {
		x[i] = 2*rng.Float32() - 1
	}
	a := &Activations{}
	a.Prepare(x)
	a.prepareFor(gguf.TypeQ8_0)
	return w, a, true
}
