// Package selfcheck runs the engine's kernels on a backend and checks them
// against the plain Go references, so a page (and its tests) can show that
// this browser computes correctly before any model is trusted to it.
//
// In: a backend (the CPU path, or an open *webgpu.Device). Out: a Result per
// kernel, with every case's comparison and the work it took (submits,
// dispatches), which the page shows and sends with its report.
package selfcheck

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/webinfer/webinfer/wasm/cpu"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/webgpu"
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
	Error      string  `json:"error,omitempty"`
}

// matVecCases cover a tile tail (cols not a multiple of 256), a long row, and
// more workgroups than one grid dimension holds (the 2-D grid path).
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

// MatVecGPU runs every case of matvec_f32.wgsl as one step: all dispatches
// and the copies of their outputs into one readback buffer are recorded in a
// single CommandList, sent with one submit and read back with one read. It
// then checks each output against kernels.MatVecRef. Buffers it makes are
// destroyed before it returns.
func MatVecGPU(ctx context.Context, dev *webgpu.Device) Result {
	start := time.Now()
	r := Result{Kernel: "matvec_f32", Backend: "webgpu"}
	if err := matVecGPU(ctx, dev, &r); err != nil {
		r.Error = err.Error()
	}
	return finish(&r, start)
}

func matVecGPU(ctx context.Context, dev *webgpu.Device, r *Result) error {
	maxPerDim := int(dev.Info().Limit("maxComputeWorkgroupsPerDimension"))
	if maxPerDim == 0 {
		maxPerDim = 65535 // the WebGPU default
	}
	var bufs []webgpu.Buffer
	defer func() {
		for _, b := range bufs {
			dev.DestroyBuffer(b)
		}
	}()
	newBuf := func(size int64, usage webgpu.BufferUsage, label string) (webgpu.Buffer, error) {
		b, err := dev.CreateBuffer(size, usage, label)
		if err == nil {
			bufs = append(bufs, b)
		}
		return b, err
	}

	totalOut := 0
	for _, c := range matVecCases {
		totalOut += c.Rows
	}
	out, err := newBuf(int64(totalOut)*4, webgpu.UsageStorage|webgpu.UsageCopyDst|webgpu.UsageCopySrc, "selfcheck.out")
	if err != nil {
		return err
	}

	var cl webgpu.CommandList
	type pending struct {
		c      Case
		offset int64
		w, x   []float32
	}
	var todo []pending
	offset := int64(0)
	for i, c := range matVecCases {
		k, err := kernels.MatVecF32(c.WorkgroupSize)
		if err != nil {
			return err
		}
		p, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
		if err != nil {
			return err
		}
		w, x := inputs(c, uint64(i))
		wb, err := newBuf(int64(len(w))*4, webgpu.UsageStorage|webgpu.UsageCopyDst, "selfcheck.w")
		if err != nil {
			return err
		}
		xb, err := newBuf(int64(len(x))*4, webgpu.UsageStorage|webgpu.UsageCopyDst, "selfcheck.x")
		if err != nil {
			return err
		}
		yb, err := newBuf(int64(c.Rows)*4, webgpu.UsageStorage|webgpu.UsageCopySrc, "selfcheck.y")
		if err != nil {
			return err
		}
		pb, err := newBuf(16, webgpu.UsageUniform|webgpu.UsageCopyDst, "selfcheck.params")
		if err != nil {
			return err
		}
		for _, wr := range []struct {
			b    webgpu.Buffer
			data []byte
		}{{wb, webgpu.Float32Bytes(w)}, {xb, webgpu.Float32Bytes(x)}, {pb, kernels.MatVecParams(c.Rows, c.Cols)}} {
			if err := dev.WriteBuffer(wr.b, 0, wr.data); err != nil {
				return err
			}
		}
		bg, err := dev.BindGroup(p, wb, xb, yb, pb)
		if err != nil {
			return err
		}
		gx, gy := kernels.Grid(c.Rows, c.WorkgroupSize, maxPerDim)
		cl.Dispatch(p, bg, gx, gy, 1)
		cl.Copy(yb, 0, out, offset*4, int64(c.Rows)*4)
		todo = append(todo, pending{c, offset, w, x})
		offset += int64(c.Rows)
	}

	before := dev.Stats()
	if err := dev.Submit(&cl); err != nil {
		return err
	}
	raw, err := dev.Read(ctx, out, 0, int64(totalOut)*4)
	if err != nil {
		return err
	}
	after := dev.Stats()
	r.Submits = after.Submits - before.Submits
	r.Dispatches = after.Dispatches - before.Dispatches
	got := webgpu.BytesToFloat32(raw)

	for _, p := range todo {
		c := p.c
		want, abs := kernels.MatVecRef(p.w, p.x, c.Rows, c.Cols)
		c.Comparison = kernels.CompareMatVec(got[p.offset:p.offset+int64(c.Rows)], want, abs, c.Cols)
		c.OK = c.Comparison.OK()
		r.Cases = append(r.Cases, c)
	}
	if r.Submits != 1 || r.Dispatches != len(matVecCases) {
		return fmt.Errorf("selfcheck: expected 1 submit with %d dispatches, the shim counted %d submits and %d dispatches",
			len(matVecCases), r.Submits, r.Dispatches)
	}
	return nil
}
