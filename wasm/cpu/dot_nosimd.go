//go:build !(goexperiment.simd && amd64)

package cpu

// The portable build has no vector kernels: every type uses the plain Go
// dot products in dot.go.

// SIMD reports which vector kernels this build uses, for benchmarks.
func SIMD() string { return "none" }

func dotQ8_0SIMD([]byte, *Activations) (float32, bool) { return 0, false }
func dotQ4_0SIMD([]byte, *Activations) (float32, bool) { return 0, false }
