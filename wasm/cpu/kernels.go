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
// at init by the build that has it (dot_simd_amd64.go) when the CPU has the
// instructions. Registering runs no vector instruction: a CPU without them
// must not fault at start-up.
type vectorKernel struct {
	typ  gguf.Type
	isa  string // "avx2"
	rows rowsKernel
}

var vectorKernels []vectorKernel

// portableRows is every type's plain Go kernel: one rowDot per row.
//
//go:norace
func portableRows(y []float32, w Weight, lo, hi int, a *Activations) {
	rb := w.RowBytes()
	for r := lo; r < hi; r++ {
		y[r] = rowDot(w.Type, w.Data[r*rb:(r+1)*rb], a)
	}
}

// KernelChoice says which kernel runs one weight type's products, and why:
// the two kernels' speeds as timed at start-up on this CPU.
type KernelChoice struct {
	Type   string `json:"type"`
	Chosen string `json:"chosen"` // "go", or the vector kernel's ISA ("avx2")
	Vector string `json:"vector"` // the vector kernel that was timed
	// VectorGBs and PortableGBs are one thread's weight bytes per second
	// (in GB/s) on a small matrix that stays in cache.
	VectorGBs   float64 `json:"vector_gb_s"`
	PortableGBs float64 `json:"portable_gb_s"`
	// Why is set when the vector kernel was not timed or not used for a
	// reason other than speed (forced by WEBINFER_KERNELS, a wrong result).
	Why string `json:"why,omitempty"`
}

var (
	chooseOnce sync.Once
	chosen     map[gguf.Type]rowsKernel
	choices    []KernelChoice
)

// KernelsEnv names the environment variable that overrides the timing:
// "go" runs the portable kernels only, "vector" the vector kernels wherever
// there is one; empty or "auto" times them.
const KernelsEnv = "WEBINFER_KERNELS"

// Kernels reports the kernel chosen for each weight type that has a vector
// kernel on this CPU (timing them on the first call, a few milliseconds);
// types not listed run the portable Go kernels.
func Kernels() []KernelChoice {
	chooseKernels()
	return slices.Clone(choices)
}

// SIMD summarises Kernels for a benchmark's testbed: "none" when no vector
// kernel runs, else the ISA and the types it runs ("avx2: Q8_0 Q4_0").
func SIMD() string {
	chooseKernels()
	var isa string
	var types []string
	for _, c := range choices {
		if c.Chosen != "go" {
			isa = c.Chosen
			types = append(types, c.Type)
		}
	}
	if len(types) == 0 {
		return "none"
	}
	return isa + ": " + strings.Join(types, " ")
}

// kernelFor returns the rows kernel for weights of type t.
func kernelFor(t gguf.Type, a *Activations) rowsKernel {
	if a.Exact {
		return portableRows
	}
	chooseKernels()
	if k, ok := chosen[t]; ok {
		return k
	}
	return portableRows
}

func chooseKernels() {
	chooseOnce.Do(func() {
		chosen = map[gguf.Type]rowsKernel{}
		mode := os.Getenv(KernelsEnv)
		for _, vk := range vectorKernels {
			c := KernelChoice{Type: vk.typ.String(), Vector: vk.isa, Chosen: "go"}
			switch mode {
			case "go":
				c.Why = KernelsEnv + "=go"
			case "vector":
				c.Chosen, c.Why = vk.isa, KernelsEnv+"=vector"
			default:
				c = calibrate(vk)
			}
			if c.Chosen != "go" {
				chosen[vk.typ] = vk.rows
			}
			choices = append(choices, c)
		}
		if vectorAttend != nil {
			c := KernelChoice{Type: "attention", Vector: vectorAttend.isa, Chosen: "go"}
			switch mode {
			case "go":
				c.Why = KernelsEnv + "=go"
			case "vector":
				c.Chosen, c.Why = vectorAttend.isa, KernelsEnv+"=vector"
			default:
				c = calibrateAttend(*vectorAttend)
			}
			if c.Chosen != "go" {
				attend = *vectorAttend
			}
			choices = append(choices, c)
		}
	})
}

// calibrate times a vector kernel against the portable one on a matrix
// that fits in cache (the CPU's own speed, not its memory's), interleaving
// five runs of each and keeping each one's fastest, and checks that both
// give the same products within float rounding. Machines differ: a vector
// loop that wins on one x86 can lose on the next, so the engine measures
// instead of trusting the instruction set.
func calibrate(vk vectorKernel) KernelChoice {
	c := KernelChoice{Type: vk.typ.String(), Vector: vk.isa, Chosen: "go"}
	const rows, cols = 32, 1024
	w, x := calibrationInput(vk.typ, rows, cols)
	var a Activations
	a.Prepare(x)
	a.prepareFor(vk.typ)
	yv, yp := make([]float32, rows), make([]float32, rows)
	best := func(k rowsKernel, y []float32, prev time.Duration) time.Duration {
		t0 := time.Now()
		k(y, w, 0, rows, &a)
		return min(prev, time.Since(t0))
	}
	tv, tp := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for range 5 {
		tv = best(vk.rows, yv, tv)
		tp = best(portableRows, yp, tp)
	}
	gbs := func(d time.Duration) float64 { return float64(w.Size()) / max(d.Seconds(), 1e-9) / 1e9 }
	c.VectorGBs, c.PortableGBs = round2(gbs(tv)), round2(gbs(tp))
	for r := range rows {
		if d := math.Abs(float64(yv[r] - yp[r])); d > 1e-4*(1+math.Abs(float64(yp[r]))) {
			c.Why = fmt.Sprintf("row %d: %g, the portable kernel %g", r, yv[r], yp[r])
			return c
		}
	}
	if tv < tp {
		c.Chosen = vk.isa
	}
	return c
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
	return Weight{Name: "calibration", Type: t, Rows: rows, Cols: cols, Data: data}, x
}

// calibrateAttend is calibrate for attention's loops: 256 cached
// positions of one 64-wide head (GB/s: the keys' and values' bytes).
func calibrateAttend(vk attendKernels) KernelChoice {
	c := KernelChoice{Type: "attention", Vector: vk.isa, Chosen: "go"}
	const n, d, stride = 256, 64, 192
	_, kv := calibrationInput(gguf.TypeF32, 1, n*stride)
	q := kv[:d]
	weights := make([]float32, n)
	for i := range weights {
		weights[i] = 1 / float32(n)
	}
	run := func(k attendKernels, scores, out []float32) time.Duration {
		t0 := time.Now()
		k.scores(scores, q, kv, stride)
		k.addV(out, weights, kv, stride)
		return time.Since(t0)
	}
	sv, sp := make([]float32, n), make([]float32, n)
	ov, op := make([]float32, d), make([]float32, d)
	tv, tp := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for range 5 {
		clear(ov)
		clear(op)
		tv = min(tv, run(vk, sv, ov))
		tp = min(tp, run(portableAttend, sp, op))
	}
	gbs := func(t time.Duration) float64 { return float64(2*n*d*4) / max(t.Seconds(), 1e-9) / 1e9 }
	c.VectorGBs, c.PortableGBs = round2(gbs(tv)), round2(gbs(tp))
	for i := range sv {
		if math.Abs(float64(sv[i]-sp[i])) > 1e-4*(1+math.Abs(float64(sp[i]))) {
			c.Why = fmt.Sprintf("score %d: %g, the portable kernel %g", i, sv[i], sp[i])
			return c
		}
	}
	for i := range ov {
		if math.Abs(float64(ov[i]-op[i])) > 1e-4*(1+math.Abs(float64(op[i]))) {
			c.Why = fmt.Sprintf("value %d: %g, the portable kernel %g", i, ov[i], op[i])
			return c
		}
	}
	if tv < tp {
		c.Chosen = vk.isa
	}
	return c
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
