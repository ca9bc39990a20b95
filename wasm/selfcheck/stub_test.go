//go:build !(js && wasm)

package selfcheck

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

func TestMatVecGPUWithoutDeviceReportsError(t *testing.T) {
	var native webgpu.Device // natively every call fails with ErrUnavailable
	r := MatVecGPU(context.Background(), &native)
	assert.False(t, r.OK)
	assert.Contains(t, r.Error, "webgpu:")
}
