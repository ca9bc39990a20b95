// Package selfcheck runs the engine's kernels on a backend and checks them
// against the plain Go references, so a page (and its tests) can show that
// this browser computes correctly before any model is trusted to it.
//
// In: a backend (the CPU path, or an open *webgpu.Device). Out: a Result per
// kernel, with every case's comparison and the work it took (submits,
// dispatches), which the page shows and sends with its report.
package selfcheck

import (
	"math/rand/v2"
	"time"

	"github.com/webinfer/webinfer/wasm/cpu"
	"github.com/webinfer/webinfer/wasm/kernels"
)

// Case is one checked shape.
type Case struct {
	Name          string             `json:"name"`
	Rows          int                `json:"rows"`
	Cols          int                `json:"cols"`
	WorkgroupSize int                `json:"workgroup_size,omitempty"`
	Comparison    kernels.Comparison `json:"comparison"`
	OK            bool               `json:"ok"`
}

// Result is one kernel checked on one backend.
type Result struct {
	Kernel     string  `json:"kernel"`
	Backend    string  `json:"backend"`
	Cases      []Case  `json:"cases"`
	OK         bool    `json:"ok"`
	Submits    int     `json:"submits"`    // command-list submits the check made
	Dispatches int     `json:"dispatches"` // compute dispatches in them
	Millis     float64 `json:"ms"`
	// CompileMillis is the part of Millis spent compiling pipelines
	// (which the runner's identical kernels then reuse).
	CompileMillis float64 `json:"compile_ms,omitempty"`
	Error         string  `json:"error,omitempty"`
}

// matVecCases cover a row not a multiple of a block, a long row, and many
// short rows.
var matVecCases = []Case{
	{Name: "1000x1000, tile tail", Rows: 1000, Cols: 1000, WorkgroupSize: 64},
	{Name: "64x4099, long rows", Rows: 64, Cols: 4099, WorkgroupSize: 64},
	{Name: "70000x3, 2-D grid", Rows: 70000, Cols: 3, WorkgroupSize: 1},
}

// inputs makes the seeded matrix and vector of a case, values in [-1, 1).
func inputs(c Case, seed uint64) (w, x []float32) {
	rng := rand.New(rand.NewPCG(seed, uint64(c.Rows)<<32|uint64(c.Cols)))
	w = make([]float32, c.Rows*c.Cols)
	x = make([]float32, c.Cols)
	for i := range w {
		w[i] = rng.Float32()*2 - 1
	}
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	return w, x
}

func finish(r *Result, start time.Time) Result {
	r.Millis = float64(time.Since(start).Microseconds()) / 1000
	r.OK = r.Error == "" && len(r.Cases) > 0
	for _, c := range r.Cases {
		r.OK = r.OK && c.OK
	}
	return *r
}

// MatVecCPU checks cpu.MatVecF32 against kernels.MatVecRef.
func MatVecCPU() Result {
	start := time.Now()
	r := Result{Kernel: "matvec_f32", Backend: "cpu"}
	for i, c := range matVecCases {
		w, x := inputs(c, uint64(i))
		y := make([]float32, c.Rows)
		cpu.MatVecF32(y, w, x, c.Rows, c.Cols)
		want, abs := kernels.MatVecRef(w, x, c.Rows, c.Cols)
		c.WorkgroupSize = 0
		c.Comparison = kernels.CompareMatVec(y, want, abs, c.Cols)
		c.OK = c.Comparison.OK()
		r.Cases = append(r.Cases, c)
	}
	return finish(&r, start)
}
