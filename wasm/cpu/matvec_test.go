package cpu

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/webinfer/webinfer/wasm/kernels"
)

func TestMatVecF32MatchesReference(t *testing.T) {
	cases := []struct {
		name       string
		rows, cols int
	}{
		{"single", 1, 1},
		{"tail columns", 3, 7},
		{"square", 256, 256},
		{"wide", 17, 4099},
		{"tall, threaded", 4096, 33},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := make([]float32, tc.rows*tc.cols)
			x := make([]float32, tc.cols)
			for i := range w {
				w[i] = rng.Float32()*2 - 1
			}
			for i := range x {
				x[i] = rng.Float32()*2 - 1
			}
			y := make([]float32, tc.rows)
			MatVecF32(y, w, x, tc.rows, tc.cols)
			want, abs := kernels.MatVecRef(w, x, tc.rows, tc.cols)
			c := kernels.CompareMatVec(y, want, abs, tc.cols)
			assert.True(t, c.OK(), "%+v", c)
		})
	}
}
