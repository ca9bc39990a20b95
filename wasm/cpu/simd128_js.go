//go:build js

package cpu

import (
	"fmt"
	"runtime"
	"syscall/js"
	"unsafe"

	"github.com/hack-pad/safejs"
	"github.com/webinfer/webinfer/wasm/gguf"
)

// The browser's CPU kernels: quantized products in WebAssembly SIMD128,
// written in C (shim/simd128/kernels.c), on a pool of threads that share
// one memory (shim/cpupool.js). Go's own WebAssembly has neither threads
// nor a shared memory, and its SIMD lacks the i16 dot product these loops
// are built on, so the products run outside it: a lazily loaded weight is
// read into the pool's memory (MaterializeOutside), any other copied there
// on its first product, and a product is one call that copies the token's
// quants in and the results out. The page starts
// the pool before the engine (shim/host.js); where it could not,
// PoolStatus says why and the Go kernels run.

// poolISA is the kernels' name in Kernels() and the bench's testbed.
const poolISA = "wasm-simd128"

// poolTypes are the types kernels.c has, every type the GPU path runs, in
// the order of its OP_* (from 1); poolOps maps each to its OP_*.
var (
	poolTypes = []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_K, gguf.TypeQ6_K, gguf.TypeF16, gguf.TypeF32}
	poolOps   = map[gguf.Type]int32{}
)

// poolMaxTokens bounds the tokens of one call, and so the pool's scratch
// (a prefill of 512 tokens goes in pieces).
const poolMaxTokens = 64

var (
	thePoolJS  js.Value // globalThis.__webinferCPU
	poolMatmul js.Value // its matmul, bound
	poolWhy    string   // why the pool does not run, when it does not
	poolArgs   []int32  // matmul's argument block, reused (Go's js/wasm has one thread)
)

func init() {
	p := js.Global().Get("__webinferCPU")
	switch {
	case p.Type() != js.TypeObject:
		poolWhy = "the page started no CPU pool (shim/cpupool.js)"
		return
	case !p.Get("ready").Truthy():
		poolWhy = p.Get("why").String()
		return
	case !p.Get("goMemory").Truthy():
		poolWhy = "the CPU pool was not given the engine's memory"
		return
	}
	thePoolJS = p
	poolMatmul = p.Get("matmul").Call("bind", p)
	readOutside = func(off int, dst []byte) {
		p.Call("read", off, bytesAddr(dst), len(dst))
		runtime.KeepAlive(dst)
	}
	for i, t := range poolTypes {
		poolOps[t] = int32(i + 1)
		vectorKernels = append(vectorKernels, vectorKernel{typ: t, isa: poolISA, rows: poolRows, all: poolAll, shared: poolShared})
	}
}

// PoolStatus says whether the browser's CPU thread pool runs this
// engine's products, on how many threads (0: it does not), and if not,
// or not on all its threads, why.
func PoolStatus() (threads int, why string) {
	if thePoolJS.IsUndefined() {
		return 0, poolWhy
	}
	// why is set when the pool gave up its workers (one stopped).
	return thePoolJS.Get("threads").Int(), thePoolJS.Get("why").String()
}

// outsideOffset returns the offset of w's bytes in the pool's memory,
// copying them there on the first call; ok is false when they cannot be
// (the pool's memory cannot grow): the caller runs the Go kernel. A
// weight without its handle (a Weight literal) is copied for this call
// only, and temp says to free it after.
func outsideOffset(w Weight) (off int, temp, ok bool) {
	c := w.outside
	if c != nil && c.copied {
		return c.off, false, true
	}
	if c != nil && c.failed {
		return 0, false, false
	}
	off, err := poolUpload(w.Data)
	if err != nil {
		if c != nil {
			c.failed = true
		}
		return 0, false, false
	}
	if c == nil {
		return off, true, true
	}
	c.hold(off)
	return off, false, true
}

// hold records that the handle's bytes are at off in the pool's memory.
// The copy lives as long as the handle, which lives as long as some
// Weight holds it (a model's). The cleanup only frees the offset: the
// handle is the key, so a later weight cannot be mistaken for it.
func (c *outsideCopy) hold(off int) {
	c.off, c.copied = off, true
	runtime.AddCleanup(c, func(off int) { poolFree(off) }, off)
}

// poolUpload copies data into the pool's memory and returns its offset;
// a JS exception (the memory cannot grow) becomes an error.
func poolUpload(data []byte) (int, error) {
	if len(data) == 0 {
		return 0, fmt.Errorf("cpu: an empty weight")
	}
	p := safejs.Safe(thePoolJS)
	v, err := p.Call("upload", bytesAddr(data), len(data))
	runtime.KeepAlive(data)
	if err != nil {
		return 0, err
	}
	n, err := v.Int()
	return n, err
}

func poolFree(off int) { thePoolJS.Call("free", off) }

// poolRows is the rowsKernel: rows [lo, hi) of w for one token.
func poolRows(y []float32, w Weight, lo, hi int, a *Activations) {
	if hi <= lo {
		return
	}
	poolProducts([]poolSeg{{w, lo, hi, [][]float32{y}}}, []*Activations{a})
}

// poolAll is MatMul's whole product: every row, for every token, in calls
// of at most poolMaxTokens tokens.
func poolAll(ys [][]float32, w Weight, as []*Activations) {
	poolShared([][][]float32{ys}, []Weight{w}, as)
}

// poolShared is MatMulShared's: several weights' products with the same
// activations in one call (of at most poolMaxTokens tokens), one job on
// the pool.
func poolShared(ys [][][]float32, ws []Weight, as []*Activations) {
	segs := make([]poolSeg, len(ws))
	for t := 0; t < len(as); t += poolMaxTokens {
		end := min(t+poolMaxTokens, len(as))
		for i, w := range ws {
			segs[i] = poolSeg{w, 0, w.Rows, ys[i][t:end]}
		}
		poolProducts(segs, as[t:end])
	}
}

// poolSeg is rows [lo, hi) of one weight, for each token into ys[t].
type poolSeg struct {
	w      Weight
	lo, hi int
	ys     [][]float32
}

// poolProducts runs the segments, whose weights have one type and width,
// for the tokens as through the pool: one crossing into JS, which copies
// each token's quants and scales in and the results out (cpupool.js's
// matmul). A weight that cannot be copied into the pool's memory runs
// the Go kernel instead.
func poolProducts(segs []poolSeg, as []*Activations) {
	cols, typ := segs[0].w.Cols, segs[0].w.Type
	if cols == 0 {
		for _, sg := range segs {
			for _, y := range sg.ys {
				clear(y[sg.lo:sg.hi])
			}
		}
		return
	}
	args := append(poolArgs[:0], poolOps[typ], int32(cols), int32(len(as)), 0)
	var temps []int
	n := 0
	for _, sg := range segs {
		off, temp, ok := outsideOffset(sg.w)
		if !ok {
			for t, a := range as {
				portableRows(sg.ys[t], sg.w, sg.lo, sg.hi, a)
			}
			continue
		}
		if temp {
			temps = append(temps, off)
		}
		rb := sg.w.RowBytes()
		args = append(args, int32(off+sg.lo*rb), int32(rb), int32(sg.hi-sg.lo))
		segs[n] = sg
		n++
	}
	if n > 0 {
		args[3] = int32(n)
		for _, a := range as {
			x, d, s := poolForms(typ, cols, a)
			args = append(args, x.addr, x.bytes, d.addr, d.bytes, s.addr, s.bytes)
		}
		for _, sg := range segs[:n] {
			for _, y := range sg.ys {
				args = append(args, goAddr(unsafe.Pointer(&y[sg.lo])))
			}
		}
		poolArgs = args
		poolMatmul.Invoke(goAddr(unsafe.Pointer(&args[0])))
		runtime.KeepAlive(segs)
		runtime.KeepAlive(as)
	}
	for _, off := range temps {
		poolFree(off)
	}
}

// region is a slice's address and bytes in Go's memory, as cpupool.js's
// matmul takes them (0, 0: none).
type region struct{ addr, bytes int32 }

func regionOf[T int8 | int32 | float32](s []T, n int) region {
	if n == 0 {
		return region{}
	}
	_ = s[n-1]
	var zero T
	return region{goAddr(unsafe.Pointer(&s[0])), int32(n * int(unsafe.Sizeof(zero)))}
}

// poolForms are the activation forms the kernels of type t read for a
// row of cols: the quants or floats, the per-block scales, the Q8_K sums.
func poolForms(t gguf.Type, cols int, a *Activations) (x, d, s region) {
	switch t {
	case gguf.TypeQ8_0, gguf.TypeQ4_0:
		return regionOf(a.q8, cols), regionOf(a.d8, cols/32), region{}
	case gguf.TypeQ4_K, gguf.TypeQ6_K:
		return regionOf(a.qk, cols), regionOf(a.dk, cols/256), regionOf(a.bsum, cols/16)
	case gguf.TypeF16:
		return regionOf(a.h, cols), region{}, region{}
	default: // F32
		return regionOf(a.X, cols), region{}, region{}
	}
}

// goAddr is p's address in Go's linear memory, which JS reads through the
// engine's WebAssembly.Memory (Go's heap does not move).
func goAddr(p unsafe.Pointer) int32 { return int32(uintptr(p)) }

// bytesAddr is b's address in Go's linear memory, as a JS number.
func bytesAddr(b []byte) int { return int(goAddr(unsafe.Pointer(unsafe.SliceData(b)))) }

// SetPoolThreads has the browser's CPU pool use n threads (1 to the
// size it started with; n ≤ 0 keeps the current count) and returns the
// count in use; without a pool it returns 1 (Go's own single thread).
func SetPoolThreads(n int) int {
	if thePoolJS.IsUndefined() {
		return 1
	}
	poolThreadsSet = n > 0 // else Kernels() measures (poolthreads_js.go)
	if n > 0 {
		return thePoolJS.Call("setThreads", n).Int()
	}
	return thePoolJS.Get("threads").Int()
}

// MaterializeOutside reads a lazily loaded weight (Data nil, Src set)
// straight into the pool's memory, a megabyte at a time, so that Go's
// memory never holds it whole (Go's WebAssembly memory never shrinks: a
// weight read into it and then copied would stay counted twice). It
// reports false, reading nothing, where the pool does not run w.Type's
// products (no pool, another type, or calibration chose the Go kernel)
// or its memory cannot grow: the caller reads the weight into Data.
func MaterializeOutside(w *Weight) (bool, error) {
	if thePoolJS.IsUndefined() || w.Data != nil || w.Src == nil {
		return false, nil
	}
	if _, ok := poolOps[w.Type]; !ok {
		return false, nil
	}
	if k := kernelFor(w.Type, false); k.isa != poolISA {
		return false, nil
	}
	size := w.Size()
	v, err := safejs.Safe(thePoolJS).Call("alloc", int(size))
	if err != nil {
		return false, nil // the pool's memory is full: Go's may not be
	}
	off, err := v.Int()
	if err != nil {
		return false, err
	}
	buf := make([]byte, min(size, 1<<20))
	for done := int64(0); done < size; {
		n := min(int64(len(buf)), size-done)
		if _, err := w.Src.ReadAt(buf[:n], w.Off+done); err != nil {
			poolFree(off)
			return false, fmt.Errorf("%s: reading its bytes: %w", w.Name, err)
		}
		thePoolJS.Call("write", off+int(done), bytesAddr(buf), int(n))
		done += n
	}
	runtime.KeepAlive(buf)
	w.outside = &outsideCopy{}
	w.outside.hold(off)
	return true, nil
}
