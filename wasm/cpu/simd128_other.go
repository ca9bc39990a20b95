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
