//go:build !js

package cpu

// PoolStatus is the browser's CPU thread pool (simd128_js.go); natively
// the products run on this package's own worker pool, so there is none.
func PoolStatus() (threads int, why string) { return 0, "not in a browser: the native kernels run" }

// SetPoolThreads is the browser's (simd128_js.go); natively GOMAXPROCS
// sets the threads, so it does nothing and returns 1.
func SetPoolThreads(n int) int { return 1 }

// MaterializeOutside is the browser's (simd128_js.go): natively a weight
// is read into Go's memory, so it reports false.
func MaterializeOutside(w *Weight) (bool, error) { return false, nil }

// PoolSiLU is the browser's (poolfloat_js.go): natively it reports false
// and the caller runs SiLU in Go.
func PoolSiLU(gate, up []float32) bool { return false }

// PoolAttends reports false natively: attention runs in Go.
func PoolAttends() bool { return false }

// PoolKV is a KV cache in the browser pool's memory (poolfloat_js.go);
// natively there is none.
type PoolKV struct{}

// NewPoolKV returns nil natively: attention runs in Go.
func NewPoolKV(layers, positions, stride int) *PoolKV { return nil }

// Positions is 0 natively.
func (c *PoolKV) Positions() int { return 0 }

// Grow reports false natively.
func (c *PoolKV) Grow(positions, keep int) bool { return false }

// Free does nothing natively.
func (c *PoolKV) Free() {}

// PoolAttend reports false natively: attention runs in Go.
func PoolAttend(layer, heads, group, headDim, stride int, scale float32, rows []AttendRow) bool {
	return false
}

// Layers is 0 natively.
func (c *PoolKV) Layers() int { return 0 }
