// Package kernels holds the engine's WGSL compute kernels, one .wgsl file per
// kernel embedded with go:embed, each beside a slow, plain Go reference that
// says what the kernel must compute and a tolerance that says how close is
// close enough.
//
// In: shapes and data. Out: WGSL source and its dispatch geometry for the GPU
// (a Kernel), and reference results and error bounds for tests.
//
// Variants come from WGSL override constants (e.g. WORKGROUP_SIZE), set when
// the pipeline is made, and, for the weight products, from the documented
// text/template substitutions of matmul.wgsl (weight type, fusions,
// binding numbers), never from ad-hoc string concatenation.
package kernels

import (
	_ "embed"
	"strings"
)

// Kernel is one WGSL compute kernel: its source, entry point and the values
// of its override constants.
type Kernel struct {
	Name       string
	WGSL       string
	EntryPoint string
	Constants  map[string]float64
}

// Half is k with its activations in f16 (its `alias act = f32;` line
// rewritten), for devices with "shader-f16": rope_kv, attention and
// silu_mul take it; their sums stay f32.
func (k Kernel) Half() Kernel {
	const f32 = "\nalias act = f32;\n"
	if !strings.Contains(k.WGSL, f32) {
		panic("kernels: " + k.Name + " has no activation type to make f16")
	}
	k.WGSL = "enable f16;\n" + strings.Replace(k.WGSL, f32, "\nalias act = f16;\n", 1)
	k.Name += "/f16"
	return k
}

// Grid returns the workgroup counts (x, y) that cover n invocations with
// workgroups of size wg, keeping each dimension within maxPerDim.
func Grid(n, wg, maxPerDim int) (x, y uint32) {
	groups := (n + wg - 1) / wg
	if groups <= maxPerDim {
		return uint32(max(groups, 1)), 1
	}
	rowsOfGroups := (groups + maxPerDim - 1) / maxPerDim
	return uint32(maxPerDim), uint32(rowsOfGroups)
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
