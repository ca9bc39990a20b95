//go:build js && wasm

package selfcheck

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/webinfer/webinfer/wasm/webgpu/webgputest"
)

// TestMatVecGPU runs the matvec check on whatever WebGPU this js/wasm host
// has: a browser's (tests/browser) or Dawn's under Node (scripts/node-gpu.mjs).
func TestMatVecGPU(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dev := webgputest.Open(t)
	r := MatVecGPU(ctx, dev)
	for _, c := range r.Cases {
		t.Logf("%s: max |err| %.2e, bound %.2e, NMSE %.1e", c.Name, c.Comparison.MaxAbsErr, c.Comparison.WorstBound, c.Comparison.NMSE)
	}
	assert.True(t, r.OK, "%+v", r)
	assert.Equal(t, 1, r.Submits)
	assert.Equal(t, len(matVecCases), r.Dispatches)
}
