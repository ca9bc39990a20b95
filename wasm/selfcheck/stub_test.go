//go:build !(js && wasm)

package selfcheck

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

func TestGenerationWithoutDeviceReportsErrors(t *testing.T) {
	var native webgpu.Device // natively every call fails with ErrUnavailable
	rs := Generation(context.Background(), &native, Plan{WeightTypes: []string{"Q8_0"}, Vocab: 100, Target: kernels.Target{}})
	assert.Len(t, rs, 5)
	for _, r := range rs {
		assert.False(t, r.OK)
		assert.Contains(t, r.Error, "webgpu:", r.Kernel)
	}
}
