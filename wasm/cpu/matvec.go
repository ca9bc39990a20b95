// Package cpu is the engine's pure-Go compute path: what runs where WebGPU
// is missing or broken, natively in `webinfer serve`, and in browsers without
// a GPU adapter. Each op here is checked against the plain references in
// package kernels.
//
// In: float32 slices and shapes. Out: results written into caller-owned
// slices (no allocation per call).
package cpu

import (
	"runtime"
	"sync"
)

// MatVecF32 computes y = W·x for a row-major (rows, cols) f32 matrix, rows
// split across goroutines (one per CPU; GOMAXPROCS is 1 in a browser without
// WASM threads, where this runs inline). Four independent accumulators per
// row let the CPU overlap the multiply-adds.
func MatVecF32(y, w, x []float32, rows, cols int) {
	workers := runtime.GOMAXPROCS(0)
	if workers > rows {
		workers = rows
	}
	if workers <= 1 || rows*cols < 1<<16 {
		matVecRows(y, w, x, 0, rows, cols)
		return
	}
	var wg sync.WaitGroup
	chunk := (rows + workers - 1) / workers
	for lo := 0; lo < rows; lo += chunk {
		hi := min(lo+chunk, rows)
		wg.Add(1)
		go func() {
			defer wg.Done()
			matVecRows(y, w, x, lo, hi, cols)
		}()
	}
	wg.Wait()
}

func matVecRows(y, w, x []float32, lo, hi, cols int) {
	x = x[:cols]
	for r := lo; r < hi; r++ {
		row := w[r*cols : r*cols+cols]
		var a0, a1, a2, a3 float32
		c := 0
		for ; c+4 <= cols; c += 4 {
			a0 += row[c] * x[c]
			a1 += row[c+1] * x[c+1]
			a2 += row[c+2] * x[c+2]
			a3 += row[c+3] * x[c+3]
		}
		for ; c < cols; c++ {
			a0 += row[c] * x[c]
		}
		y[r] = (a0 + a1) + (a2 + a3)
	}
}
