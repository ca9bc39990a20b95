//go:build js && wasm

package selfcheck

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/webinfer/webinfer/wasm/gpumodel"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/webgpu/webgputest"
)

// TestGeneration runs the start-up check of what generation uses: every
// weight type's products in the forms this device's runner picks,
// attention, the argmax in its form, and the sampler.
func TestGeneration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dev := webgputest.Open(t)
	info := dev.Info()
	here := gpumodel.DeviceTarget(info) // the forms the runner picks on this device
	// The device's own forms only: a real GPU runs the workgroup forms
	// (and the split argmax, for a large vocabulary); a CPU adapter
	// compiles those slowly (~8 s a product on SwiftShader), and the
	// kernel tests' brief matrix covers them there.
	plans := []Plan{{WeightTypes: kernels.WeightTypes(), Target: here, Vocab: 49152}}
	if here.Workgroups {
		plans[0].Vocab = 128256
	}
	for _, plan := range plans {
		results := Generation(ctx, dev, plan)
		var names []string
		for _, r := range results {
			names = append(names, r.Kernel)
			for _, c := range r.Cases {
				t.Logf("%s: %s: max |err| %.2e, bound %.2e", r.Kernel, c.Name, c.Comparison.MaxAbsErr, c.Comparison.WorstBound)
			}
			t.Logf("%s: %.0f ms (%.0f ms compiling), %d dispatches in %d submit(s)", r.Kernel, r.Millis, r.CompileMillis, r.Dispatches, r.Submits)
			assert.True(t, r.OK, "%+v", r)
			assert.Equal(t, 1, r.Submits, r.Kernel)
		}
		assert.Len(t, results, 2*len(plan.WeightTypes)+3)
		assert.Contains(t, names, "attention")
		assert.Contains(t, names, "sample")
	}
}
