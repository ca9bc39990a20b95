//go:build js

package cpu

import (
	"math"
	"os"
	"runtime"
	"syscall/js"
	"unsafe"

	"github.com/hack-pad/safejs"
)

// The float work between the products, on the browser's pool: SiLU·up and
// attention over the KV cache (kernels.c's silu and attend, equal to the
// Go loops bit for bit). Go's js/wasm runs them on one thread without
// SIMD, which measured a third of a decode step in Chromium and Firefox
// (README, "Where a CPU decode token's time goes").

var (
	poolSiLUFn, poolAttendFn js.Value
	poolFloatArgs            []int32 // silu's and attend's argument block, reused
)

// poolFloatOn says whether SiLU and attention run on the pool:
// WEBINFER_KERNELS=go keeps them in Go, as it keeps the products.
func poolFloatOn() bool {
	if thePoolJS.IsUndefined() || os.Getenv(KernelsEnv) == "go" {
		return false
	}
	if poolSiLUFn.IsUndefined() {
		poolSiLUFn = thePoolJS.Get("silu").Call("bind", thePoolJS)
		poolAttendFn = thePoolJS.Get("attend").Call("bind", thePoolJS)
	}
	return true
}

// PoolAttends says whether attention runs on the browser's pool
// (PoolAttend), so that a caller makes no copies of its caches for it
// elsewhere.
func PoolAttends() bool { return poolFloatOn() }

// poolSiLUChunk bounds the elements of one call, and so the pool's
// scratch (a long prefill goes in pieces).
const poolSiLUChunk = 1 << 16

// PoolSiLU sets gate[i] = SiLU(gate[i])·up[i] on the browser's pool and
// reports true, or does nothing and reports false where no pool runs it.
func PoolSiLU(gate, up []float32) bool {
	if !poolFloatOn() {
		return false
	}
	up = up[:len(gate)]
	for lo := 0; lo < len(gate); lo += poolSiLUChunk {
		hi := min(lo+poolSiLUChunk, len(gate))
		args := append(poolFloatArgs[:0], goAddr(unsafe.Pointer(&gate[lo])), goAddr(unsafe.Pointer(&up[lo])), int32(hi-lo))
		poolFloatArgs = args
		poolSiLUFn.Invoke(goAddr(unsafe.Pointer(&args[0])))
	}
	runtime.KeepAlive(gate)
	runtime.KeepAlive(up)
	return true
}

// PoolKV is one sequence's KV cache copied into the pool's memory, so
// that attention there reads it without copying it each step: per layer,
// positions × stride floats of keys, then as many of values. Synced
// counts, per layer, the positions the copy holds; rows the engine writes
// in Go's cache are copied over in the attention call that first reads
// them.
type PoolKV struct {
	off, layers, positions, stride int
	synced                         []int
	cleanup                        runtime.Cleanup
}

// NewPoolKV reserves a copy of a cache of layers × positions × stride
// floats (keys and values), or returns nil where the pool does not run
// attention or its memory cannot grow (attention then runs in Go).
func NewPoolKV(layers, positions, stride int) *PoolKV {
	if !poolFloatOn() || layers < 1 || positions < 1 || stride < 1 {
		return nil
	}
	v, err := safejs.Safe(thePoolJS).Call("alloc", 2*layers*positions*stride*4)
	if err != nil {
		return nil
	}
	off, err := v.Int()
	if err != nil {
		return nil
	}
	c := &PoolKV{off: off, layers: layers, positions: positions, stride: stride, synced: make([]int, layers)}
	c.cleanup = runtime.AddCleanup(c, func(off int) { poolFree(off) }, off)
	return c
}

// Positions is the positions the copy has room for (nil: none).
func (c *PoolKV) Positions() int {
	if c == nil {
		return 0
	}
	return c.positions
}

// Wrote records that position pos of layer changed in Go's cache: the
// copy is stale from there.
func (c *PoolKV) Wrote(layer, pos int) {
	if c != nil {
		c.synced[layer] = min(c.synced[layer], pos)
	}
}

// Free gives the copy's memory back now (a cache that grew, or ended).
func (c *PoolKV) Free() {
	if c != nil && c.positions > 0 {
		c.cleanup.Stop()
		poolFree(c.off)
		c.positions = 0
	}
}

// AttendRow is one row of attention: its query and output (heads ×
// HeadDim floats), its sequence's cache of the layer in Go's memory (K
// and V, positions × stride floats) with the pool's copy, and how many
// positions it attends to.
type AttendRow struct {
	Q, Out []float32
	K, V   []float32
	KV     *PoolKV
	End    int
}

// attendHead and attendPerRow are cpupool.js's ATTEND_HEAD and PER_ROW.
const attendHead, attendPerRow = 7, 8

// PoolAttend computes layer's attention for rows on the pool, each head
// the softmax-weighted sum of values over positions [0, End) of its
// row's cache (query head h reads KV head h/group), and reports true; it
// reports false, computing nothing, where the pool does not run it or a
// row's cache has no copy there (the caller runs the Go loops).
func PoolAttend(layer, heads, group, headDim, stride int, scale float32, rows []AttendRow) bool {
	if !poolFloatOn() || len(rows) == 0 {
		return false
	}
	for _, r := range rows {
		if r.KV.Positions() < r.End || layer >= r.KV.layers || r.KV.stride != stride {
			return false
		}
	}
	for lo := 0; lo < len(rows); lo += poolMaxTokens {
		part := rows[lo:min(lo+poolMaxTokens, len(rows))]
		span := 0
		for _, r := range part {
			span = max(span, r.End)
		}
		args := append(poolFloatArgs[:0], int32(heads), int32(group), int32(headDim), int32(stride),
			int32(math.Float32bits(scale)), int32(len(part)), int32(span))
		for _, r := range part {
			c := r.KV
			kOff := c.off + 2*layer*c.positions*stride*4
			from := c.synced[layer]
			c.synced[layer] = max(from, r.End)
			args = append(args, goAddr(unsafe.Pointer(&r.Q[0])), goAddr(unsafe.Pointer(&r.Out[0])),
				int32(kOff), int32(kOff+c.positions*stride*4), int32(r.End), int32(from),
				goAddr(unsafe.Pointer(&r.K[0])), goAddr(unsafe.Pointer(&r.V[0])))
		}
		poolFloatArgs = args
		poolAttendFn.Invoke(goAddr(unsafe.Pointer(&args[0])))
	}
	runtime.KeepAlive(rows)
	return true
}
