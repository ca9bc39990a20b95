package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/quant"
)

// rowsKernel computes y[r] = row r of w · a for r in [lo, hi). The
// activations' form for w.Type must have been prepared.
type rowsKernel func(y []float32, w Weight, lo, hi int, a *Activations)

// vectorKernel is a CPU-specific kernel for one weight type, registered
// at init by the build that has it (dot_simd_amd64.go, dot_asm_amd64.go)
// when the CPU has the instructions. Registering runs no vector instruction: a CPU without them
// must not fault at start-up.
type vectorKernel struct {
	typ  gguf.Type
	isa  string // its name: the instruction set, "avx2", "asm-avx2"
	rows rowsKernel
	// tile, when set, is rows for two to four tokens at once, reading
	// each weight once for them, with results equal bit for bit to rows'.
	tile tileKernel
	// all, when set, is the whole of a batched product (MatMul after the
	// activations are prepared): a kernel that runs outside Go and its
	// pool, which a call per row range would cross into too often.
	all func(ys [][]float32, w Weight, as []*Activations)
	// shared, when set, is MatMulShared's whole: several weights' products
	// with the same activations in one crossing.
	shared func(ys [][][]float32, ws []Weight, as []*Activations)
	// prepare, when set, makes an activation form the kernel needs beyond
	// the type's own (prepareFor); call it before the kernel, outside the
	// worker pool.
	prepare func(a *Activations)
}

// tileKernel is a rowsKernel for the first n of four tokens (2 ≤ n ≤ 4;
// ys and as hold the rest too, as padding the kernel may compute, their
// results thrown away): ys[t][r] = row r of w · as[t] for r in [lo, hi).
type tileKernel func(ys [4][]float32, w Weight, lo, hi int, as [4]*Activations, n int)

// kernel is what runs one type's products: the chosen vector kernel, or
// the portable one (rows only).
type kernel = vectorKernel

// prepareActs makes a's forms for the kernel.
func (k kernel) prepareActs(a *Activations) {
	a.prepareFor(k.typ)
	if k.prepare != nil && !a.Exact {
		k.prepare(a)
	}
}

var vectorKernels []vectorKernel

// portableRows is every type's plain Go kernel: one rowDot per row.
//
//go:norace
func portableRows(y []float32, w Weight, lo, hi int, a *Activations) {
	rb := w.RowBytes()
	data, base := w.Data, 0
	if data == nil && hi > lo { // its bytes only outside Go's memory (MaterializeOutside)
		var err error
		if data, err = w.ReadRows(lo, hi-lo); err != nil {
			panic(fmt.Sprintf("cpu: %v", err)) // a resident weight reads back
		}
		base = lo
	}
	for r := lo; r < hi; r++ {
		y[r] = rowDot(w.Type, data[(r-base)*rb:(r-base+1)*rb], a)
	}
}

// KernelChoice says which kernel runs one weight type's products (or
// attention's loops), and why: each candidate's speed as timed at start-up
// on this CPU.
type KernelChoice struct {
	Type   string `json:"type"`
	Chosen string `json:"chosen"` // "go" (portable), or a vector kernel's name ("avx2", "asm-avx2")
	// GBs is each candidate's bytes per second (in GB/s) on one thread, on
	// a small input that stays in cache: the CPU's speed, not its memory's.
	GBs map[string]float64 `json:"gb_s,omitempty"`
	// BatchGBs is the same for four tokens at once (the weight's bytes
	// counted once per token), for weight products.
	BatchGBs map[string]float64 `json:"batch_gb_s,omitempty"`
	// Why is set when the choice was not made by speed (forced by
	// WEBINFER_KERNELS) or a candidate was dropped (a wrong result).
	Why string `json:"why,omitempty"`
}

var (
	chooseOnce sync.Once
	chosen     map[gguf.Type]kernel
	choices    []KernelChoice
)

// KernelsEnv names the environment variable that overrides the timing:
// "go" runs the portable kernels only; a vector kernel's name ("avx2",
// "asm-avx2") runs that kernel wherever it has one and the portable one
// elsewhere; empty or "auto" times them all.
const KernelsEnv = "WEBINFER_KERNELS"

// Kernels reports the kernel chosen for each weight type that has a vector
// kernel on this CPU, and for attention (timing them on the first call, a
// few milliseconds); types not listed run the portable Go kernels.
func Kernels() []KernelChoice {
	chooseKernels()
	return slices.Clone(choices)
}

// SIMD summarises Kernels for a benchmark's testbed: "none" when no vector
// kernel runs, else each type with its kernel ("Q8_0:asm-avx2 F16:avx2").
func SIMD() string {
	chooseKernels()
	var parts []string
	for _, c := range choices {
		if c.Chosen != "go" && c.Type != "threads" {
			parts = append(parts, c.Type+":"+c.Chosen)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// kernelFor returns the kernel for weights of type t: exact activations
// run the portable one.
func kernelFor(t gguf.Type, exact bool) kernel {
	if !exact {
		chooseKernels()
		if k, ok := chosen[t]; ok {
			return k
		}
	}
	return kernel{typ: t, isa: "go", rows: portableRows}
}

// candidate is one kernel to time: a name and a run over the calibration
// input that leaves its results in out, and, for weight products, a run
// of four tokens over the same input (the batched product of prefill and
// of several sequences) that leaves them in an out four times as long.
type candidate struct {
	name  string
	run   func(out []float32)
	batch func(out []float32)
}

// batchSlack is how much slower on one token than the fastest a kernel may
// be and still be chosen for a faster four-token product: decode runs one
// token, prefill and batched decode run many, and the kernel must be one
// for all of them (a token's results may not depend on its batch).
const batchSlack = 0.9

// pick times the candidates (the first is the portable one) interleaved,
// five runs each keeping each one's fastest, drops those whose results
// differ from the portable one's beyond float rounding, and returns the
// fastest; where the candidates have four-token runs, the one fastest on
// four tokens of those within batchSlack of the fastest on one. bytes is
// what one run reads, for GB/s. Machines differ: a vector
// loop that wins on one x86 can lose on the next, so the engine measures
// instead of trusting the instruction set.
func pick(typ string, cands []candidate, n int, bytes float64, mode string) KernelChoice {
	c := KernelChoice{Type: typ, Chosen: cands[0].name, GBs: map[string]float64{}}
	if mode != "" && mode != "auto" {
		c.Why = KernelsEnv + "=" + mode
		for _, k := range cands {
			if k.name == mode {
				c.Chosen = k.name
			}
		}
		return c
	}
	batched := cands[0].batch != nil
	outs := make([][]float32, len(cands))
	bouts := make([][]float32, len(cands))
	best := make([]time.Duration, len(cands))
	bbest := make([]time.Duration, len(cands))
	for i := range cands {
		outs[i] = make([]float32, n)
		best[i], bbest[i] = time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
		if batched {
			bouts[i] = make([]float32, 4*n)
		}
	}
	for range 5 {
		for i, k := range cands {
			// One untimed run first: a kernel of wider registers than the
			// one before it runs slowly for its first microseconds (the
			// CPU powers its upper lanes up), which a decode never sees.
			k.run(outs[i])
			clear(outs[i])
			t0 := time.Now()
			k.run(outs[i])
			best[i] = min(best[i], time.Since(t0))
			if batched {
				clear(bouts[i])
				t0 = time.Now()
				k.batch(bouts[i])
				bbest[i] = min(bbest[i], time.Since(t0))
			}
		}
	}
	if batched {
		c.BatchGBs = map[string]float64{}
	}
	var ok []int
	for i, k := range cands {
		c.GBs[k.name] = round2(bytes / max(best[i].Seconds(), 1e-9) / 1e9)
		if batched {
			c.BatchGBs[k.name] = round2(4 * bytes / max(bbest[i].Seconds(), 1e-9) / 1e9)
		}
		if i > 0 {
			j := mismatch(outs[i], outs[0])
			if j < 0 && batched {
				if j = mismatch(bouts[i], bouts[0]); j >= 0 {
					c.Why += fmt.Sprintf("%s dropped: four-token result %d is %g, the portable kernel's %g; ", k.name, j, bouts[i][j], bouts[0][j])
					continue
				}
			}
			if j >= 0 {
				c.Why += fmt.Sprintf("%s dropped: result %d is %g, the portable kernel's %g; ", k.name, j, outs[i][j], outs[0][j])
				continue
			}
		}
		ok = append(ok, i)
	}
	fastest := ok[0]
	for _, i := range ok {
		if best[i] < best[fastest] {
			fastest = i
		}
	}
	if batched {
		one := fastest
		for _, i := range ok {
			if float64(best[one]) >= batchSlack*float64(best[i]) && bbest[i] < bbest[fastest] {
				fastest = i
			}
		}
	}
	c.Chosen = cands[fastest].name
	c.Why = strings.TrimSuffix(c.Why, "; ")
	return c
}

// mismatch is the first index where a and b differ beyond float rounding,
// or −1.
func mismatch(a, b []float32) int {
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-4*(1+math.Abs(float64(b[i]))) {
			return i
		}
	}
	return -1
}

// tuneThreads, where products run on a pool of threads (the browser's:
// poolthreads_js.go), chooses its thread count by measurement and
// reports the choice (false: no pool).
var tuneThreads func(mode string) (KernelChoice, bool)

func chooseKernels() {
	chooseOnce.Do(func() {
		chosen = map[gguf.Type]kernel{}
		mode := os.Getenv(KernelsEnv)
		var types []gguf.Type
		for _, vk := range vectorKernels {
			if !slices.Contains(types, vk.typ) {
				types = append(types, vk.typ)
			}
		}
		for _, t := range types {
			c := calibrateType(t, mode)
			for _, vk := range vectorKernels {
				if vk.typ == t && vk.isa == c.Chosen {
					chosen[t] = vk
				}
			}
			choices = append(choices, c)
		}
		if vectorAttend != nil {
			c := calibrateAttend(*vectorAttend, mode)
			if c.Chosen == vectorAttend.isa {
				attend = *vectorAttend
			}
			choices = append(choices, c)
		}
		if tuneThreads != nil {
			if c, ok := tuneThreads(mode); ok {
				choices = append(choices, c)
			}
		}
	})
}

// calibrateType times weight type t's kernels on matrices that fit in
// cache, in two shapes: rows as short as a small model's (576 columns,
// where a kernel's per-row cost and its tail show) and as long as a 1B
// model's (2048).
func calibrateType(t gguf.Type, mode string) KernelChoice {
	type input struct {
		w  Weight
		as [4]Activations // four tokens: one for the one-token run
	}
	var ins []*input
	rows := 0
	for _, shape := range [][2]int{{48, 576}, {16, 2048}} {
		cols := shape[1]
		if cols%t.BlockSize() != 0 {
			cols = 4 * t.BlockSize()
		}
		in := &input{}
		var x []float32
		in.w, x = calibrationInput(t, shape[0], cols)
		for i := range in.as {
			xi := slices.Clone(x)
			xi[i] = -xi[i] // four different tokens
			in.as[i].Prepare(xi)
		}
		ins = append(ins, in)
		rows += shape[0]
	}
	var bytes float64
	for _, in := range ins {
		bytes += float64(in.w.Size())
	}
	cand := func(k kernel) candidate {
		for _, in := range ins {
			for i := range in.as {
				k.prepareActs(&in.as[i])
			}
		}
		run := func(y []float32) {
			off := 0
			for _, in := range ins {
				k.rows(y[off:], in.w, 0, in.w.Rows, &in.as[0])
				off += in.w.Rows
			}
		}
		batch := func(y []float32) {
			off := 0
			for _, in := range ins {
				var ys [4][]float32
				var as [4]*Activations
				for i := range 4 {
					ys[i], as[i] = y[off+i*in.w.Rows:], &in.as[i]
				}
				if k.all != nil {
					k.all(ys[:], in.w, as[:])
				} else if k.tile != nil {
					k.tile(ys, in.w, 0, in.w.Rows, as, 4)
				} else {
					for i := range 4 {
						k.rows(ys[i], in.w, 0, in.w.Rows, as[i])
					}
				}
				off += 4 * in.w.Rows
			}
		}
		return candidate{k.isa, run, batch}
	}
	cands := []candidate{cand(kernel{typ: t, isa: "go", rows: portableRows})}
	for _, vk := range vectorKernels {
		if vk.typ == t {
			cands = append(cands, cand(vk))
		}
	}
	return pick(t.String(), cands, rows, bytes, mode)
}

// calibrationInput is a rows×cols weight of type t with pseudo-random
// values, and an activation vector (a cheap generator: making the input
// is most of the calibration's time).
func calibrationInput(t gguf.Type, rows, cols int) (Weight, []float32) {
	rng := rand.New(rand.NewPCG(7, 8))
	f := make([]float32, rows*cols)
	for i := range f {
		f[i] = float32(int32(rng.Uint32())) * (0.1 / (1 << 31))
	}
	data, err := quant.Quantize(t, f)
	if err != nil {
		panic(fmt.Sprintf("cpu: calibrating %s: %v", t, err)) // every registered type quantizes
	}
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(int32(rng.Uint32())) * (2.0 / (1 << 31))
	}
	w, err := NewWeight("calibration", t, rows, cols, data)
	if err != nil {
		panic(fmt.Sprintf("cpu: calibrating %s: %v", t, err))
	}
	return w, x
}

// calibrateAttend is calibrateType for attention's loops: 256 cached
// positions of one 64-wide head (GB/s: the keys' and values' bytes); the
// results compared are the scores and the weighted values.
func calibrateAttend(vk attendKernels, mode string) KernelChoice {
	const n, d, stride = 256, 64, 192
	_, kv := calibrationInput(gguf.TypeF32, 1, n*stride)
	q := kv[:d]
	weights := make([]float32, n)
	for i := range weights {
		weights[i] = 1 / float32(n)
	}
	run := func(k attendKernels) func([]float32) {
		return func(out []float32) {
			k.scores(out[:n], q, kv, stride)
			k.addV(out[n:], weights, kv, stride)
		}
	}
	cands := []candidate{{name: "go", run: run(portableAttend)}, {name: vk.isa, run: run(vk)}}
	return pick("attention", cands, n+d, float64(2*n*d*4), mode)
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
