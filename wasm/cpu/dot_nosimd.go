//go:build !(goexperiment.simd && amd64)

package cpu

// The portable build has no vector kernels: vectorKernels stays empty and
// every type runs the plain Go dot products of dot.go.
