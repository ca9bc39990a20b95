//go:build !(goexperiment.simd && amd64)

package cpu

// A build without GOEXPERIMENT=simd has no archsimd kernels; on amd64 the
// assembly ones (dot_asm_amd64.go) still register, and every other type
// runs the plain Go dot products of dot.go.
