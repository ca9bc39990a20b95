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

// PoolKV is one sequence's KV cache in the pool's memory, where attention
// reads it (the Go engine keeps no copy): per layer, positions × stride
// floats of keys, then as many of values. A row's new key and value go
// in with the attention call that first reads them.
type PoolKV struct {
	off, layers, positions, stride int
	cleanup                        runtime.Cleanup
}

// NewPoolKV reserves a cache of layers × positions × stride floats (keys
// and values) in the pool's memory, or returns nil where the pool does
// not run attention or its memory cannot grow (attention then runs in
// Go, on a cache in Go's memory).
func NewPoolKV(layers, positions, stride int) *PoolKV {
	if !poolFloatOn() || layers < 1 || positions < 1 || stride < 1 {
		return nil
	}
	c := &PoolKV{layers: layers, stride: stride}
	if !c.Grow(positions, 0) {
		return nil
	}
	return c
}

// poolAlloc reserves n bytes of the pool's memory; ok is false when it
// cannot grow.
func poolAlloc(n int) (off int, ok bool) {
	v, err := safejs.Safe(thePoolJS).Call("alloc", n)
	if err != nil {
		return 0, false
	}
	off, err = v.Int()
	return off, err == nil
}

// Positions is the positions the cache has room for (nil: none).
func (c *PoolKV) Positions() int {
	if c == nil {
		return 0
	}
	return c.positions
}

// layerBytes is one layer's keys' (or values') bytes.
func (c *PoolKV) layerBytes() int { return c.positions * c.stride * 4 }

// Grow gives the cache room for positions, keeping its first keep
// positions of every layer; it reports false, changing nothing, when the
// pool's memory cannot grow.
func (c *PoolKV) Grow(positions, keep int) bool {
	off, ok := poolAlloc(2 * c.layers * positions * c.stride * 4)
	if !ok {
		return false
	}
	grown := &PoolKV{off: off, layers: c.layers, positions: positions, stride: c.stride}
	if n := min(keep, c.positions) * c.stride * 4; n > 0 {
		for l := range c.layers {
			for kv := range 2 { // keys, then values
				thePoolJS.Call("copy", grown.off+(2*l+kv)*grown.layerBytes(), c.off+(2*l+kv)*c.layerBytes(), n)
			}
		}
	}
	c.Free()
	c.off, c.positions = off, positions
	c.cleanup = runtime.AddCleanup(c, func(off int) { poolFree(off) }, off)
	return true
}

// Free gives the cache's memory back now (a sequence that ended).
func (c *PoolKV) Free() {
	if c != nil && c.positions > 0 {
		c.cleanup.Stop()
		poolFree(c.off)
		c.positions = 0
	}
}

// PoolAttend writes each row's key and value into its cache, then
// computes layer's attention for the rows on the pool, each head the
// softmax-weighted sum of values over positions [0, End) of its row's
// cache (query head h reads KV head h/group), and reports true; it
// reports false, computing nothing, where the pool does not run it or a
// row's cache lacks the room.
func PoolAttend(layer, heads, group, headDim, stride int, scale float32, rows []AttendRow) bool {
	if !poolFloatOn() || len(rows) == 0 {
		return false
	}
	for _, r := range rows {
		c := r.KV
		if c.Positions() < r.End || r.Pos >= c.Positions() || layer >= c.layers || c.stride != stride ||
			(r.NewK != nil && (len(r.NewK) < stride || len(r.NewV) < stride)) {
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
			kOff := c.off + 2*layer*c.layerBytes()
			pos, newK, newV := int32(-1), int32(0), int32(0)
			if r.NewK != nil {
				pos, newK, newV = int32(r.Pos), goAddr(unsafe.Pointer(&r.NewK[0])), goAddr(unsafe.Pointer(&r.NewV[0]))
			}
			args = append(args, goAddr(unsafe.Pointer(&r.Q[0])), goAddr(unsafe.Pointer(&r.Out[0])),
				int32(kOff), int32(kOff+c.layerBytes()), int32(r.End), pos, newK, newV)
		}
		poolFloatArgs = args
		poolAttendFn.Invoke(goAddr(unsafe.Pointer(&args[0])))
	}
	runtime.KeepAlive(rows)
	return true
}

// Layers is the cache's layers.
func (c *PoolKV) Layers() int { return c.layers }
