package cpu

import (
	"fmt"
	"io"

	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/quant"
)

// Weight is a 2-D weight tensor kept in its GGUF type: Rows rows of Cols
// elements, row r at Data[r·RowBytes : (r+1)·RowBytes].
type Weight struct {
	Name       string
	Type       gguf.Type
	Rows, Cols int
	Data       []byte
	// Src and Off, when Data is nil, are where the weight's bytes lie (a
	// model loaded lazily, model.LoadLazy: the GPU upload reads them a
	// piece at a time; the CPU's products need Data, model.Materialize).
	Src io.ReaderAt
	Off int64
	// outside is where Data was copied for kernels that run outside Go's
	// memory (the browser's thread pool, simd128_js.go), made on their
	// first product; one per Data, shared by every copy of the Weight.
	// NewWeight and SetData make it; a Weight without one (a literal)
	// has its bytes copied for each product.
	outside *outsideCopy
}

// outsideCopy is a weight's bytes in the memory of kernels outside Go's
// (simd128_js.go): at off once copied, or failed when they could not be
// (the other memory is full), so that the weight runs the Go kernels.
type outsideCopy struct {
	off    int
	copied bool
	failed bool
}

// readOutside, where kernels run outside Go's memory (simd128_js.go),
// copies len(dst) bytes from offset off there into dst.
var readOutside func(off int, dst []byte)

// Resident reports whether the weight's bytes are in memory: in Data, or
// only in the memory of the kernels outside Go's (MaterializeOutside).
func (w Weight) Resident() bool { return w.Data != nil || (w.outside != nil && w.outside.copied) }

// SetData gives the weight its bytes (a lazily loaded weight read in).
func (w *Weight) SetData(data []byte) {
	w.Data = data
	w.outside = &outsideCopy{}
}

// Size is the weight's bytes.
func (w Weight) Size() int64 { return int64(w.Rows) * w.Type.RowBytes(int64(w.Cols)) }

// ReadRows returns the blocks of rows r0 to r0+n: a slice of Data, or read
// from Src.
func (w Weight) ReadRows(r0, n int) ([]byte, error) {
	rb := int64(w.RowBytes())
	if r0 < 0 || n < 0 || r0+n > w.Rows {
		return nil, fmt.Errorf("%s: rows %d to %d of %d", w.Name, r0, r0+n, w.Rows)
	}
	if w.Data != nil {
		return w.Data[int64(r0)*rb : int64(r0+n)*rb], nil
	}
	if c := w.outside; c != nil && c.copied && readOutside != nil {
		out := make([]byte, int64(n)*rb)
		readOutside(c.off+int(int64(r0)*rb), out)
		return out, nil
	}
	if w.Src == nil {
		return nil, fmt.Errorf("%s: the weight has no data", w.Name)
	}
	out := make([]byte, int64(n)*rb)
	if _, err := w.Src.ReadAt(out, w.Off+int64(r0)*rb); err != nil {
		return nil, fmt.Errorf("%s: reading rows %d to %d: %w", w.Name, r0, r0+n, err)
	}
	return out, nil
}

// NewWeight checks that data holds rows×cols elements of type t.
func NewWeight(name string, t gguf.Type, rows, cols int, data []byte) (Weight, error) {
	if !quant.IsSupported(t) {
		return Weight{}, fmt.Errorf("unsupported tensor type %s for %s", t, name)
	}
	if cols%t.BlockSize() != 0 {
		return Weight{}, fmt.Errorf("%s: %d columns is not a multiple of the %s block size", name, cols, t)
	}
	if want := int64(rows) * t.RowBytes(int64(cols)); int64(len(data)) != want {
		return Weight{}, fmt.Errorf("%s: %d bytes, want %d", name, len(data), want)
	}
	return Weight{Name: name, Type: t, Rows: rows, Cols: cols, Data: data, outside: &outsideCopy{}}, nil
}

// RowBytes is the size of one row.
func (w Weight) RowBytes() int { return int(w.Type.RowBytes(int64(w.Cols))) }

// Row returns row r's blocks.
func (w Weight) Row(r int) []byte {
	n := w.RowBytes()
	return w.Data[r*n : (r+1)*n]
}

// DequantizeRow writes row r as float32 into dst (len Cols): the embedding
// lookup, which reads one row and so needs no quantized dot.
func (w Weight) DequantizeRow(r int, dst []float32) error {
	row, err := w.ReadRows(r, 1) // read from the file when the weight is lazy
	if err != nil {
		return err
	}
	return quant.Dequantize(w.Type, row, dst)
}

// MatVec computes y = W·x for the activations a (len Cols) into y (len
// Rows), dotting each row's blocks directly: weights are never dequantized.
func MatVec(y []float32, w Weight, a *Activations) {
	k := kernelFor(w.Type, a.Exact)
	k.prepareActs(a)
	ParallelRows(w.Rows, w.Rows*w.Cols, func(lo, hi int) { k.rows(y, w, lo, hi, a) })
}

// MatMul computes ys[t] = W·xs[t] for a batch of activations (a prefill,
// or one token of each of several sequences): the rows are taken a few at
// a time, and every token runs through those rows while they are in
// cache, so each weight row is read from memory once for the whole batch.
// Where the type's kernel has a batched form (tile), tokens go through it
// in fours, each weight block widened once for the four; a last three is
// padded to four with a spare token, a last two go together, a last one
// alone. Either way each token's results are those MatVec gives it, bit
// for bit.
func MatMul(ys [][]float32, w Weight, as []*Activations) {
	if len(as) == 0 {
		return
	}
	k := kernelFor(w.Type, as[0].Exact)
	// Each token's quantization is its own: they share the pool too.
	ParallelRows(len(as), len(as)*w.Cols*8, func(lo, hi int) {
		for _, a := range as[lo:hi] {
			k.prepareActs(a)
		}
	})
	if k.all != nil {
		k.all(ys, w, as)
		return
	}
	// 16 rows of the widest weights (8192 Q8_0 columns) are 139 KB: within
	// a core's L2 while the batch's tokens pass over them.
	span := 16
	if len(as) == 1 {
		span = w.Rows // one token (a decode step): no reuse to wait for
	}
	// With a tile kernel, tokens go in fours, a last two or three
	// together too (three padded to four with a spare token), one alone.
	type group struct {
		t [4]int // token indexes; len(as) is the spare
		n int
	}
	var groups []group
	var spare []float32 // the spare token's results, thrown away
	n := len(as)
	if k.tile != nil && n > 1 {
		t := 0
		for ; n-t >= 2; t += 4 {
			g := group{n: min(4, n-t)}
			for i := range g.t {
				g.t[i] = min(t+i, n)
			}
			groups = append(groups, g)
		}
		if n%4 == 3 {
			spare = make([]float32, w.Rows)
		}
		n -= min(t, n) // the one left, if any, goes alone
	}
	single := len(as) - n // the tokens from here go through rows
	ParallelRows(w.Rows, w.Rows*w.Cols*len(as), func(lo, hi int) {
		for r := lo; r < hi; r += span {
			end := min(r+span, hi)
			for _, g := range groups {
				var gy [4][]float32
				var ga [4]*Activations
				for i, t := range g.t {
					if t == len(as) {
						gy[i], ga[i] = spare, as[len(as)-1]
					} else {
						gy[i], ga[i] = ys[t], as[t]
					}
				}
				k.tile(gy, w, r, end, ga, g.n)
			}
			for t := single; t < len(as); t++ {
				k.rows(ys[t], w, r, end, as[t])
			}
		}
	})
}

// maxSharedWeights is the most weights a shared kernel takes at once
// (cpupool.js's matmul).
const maxSharedWeights = 8

// MatMulShared computes ys[i][t] = ws[i]·as[t] for weights that read the
// same activations (a layer's Q, K and V; its gate and up): the results
// MatMul gives each weight, bit for bit. Where one kernel runs them all
// outside Go (the browser's pool) they go in one call, so that a layer
// crosses into it fewer times; elsewhere they run one after another.
func MatMulShared(ys [][][]float32, ws []Weight, as []*Activations) {
	if len(as) == 0 || len(ws) == 0 {
		return
	}
	k := kernelFor(ws[0].Type, as[0].Exact)
	same := k.shared != nil && len(ws) <= maxSharedWeights
	for _, w := range ws[1:] {
		same = same && w.Type == ws[0].Type && w.Cols == ws[0].Cols
	}
	if !same {
		for i, w := range ws {
			MatMul(ys[i], w, as)
		}
		return
	}
	for _, a := range as {
		k.prepareActs(a)
	}
	k.shared(ys, ws, as)
}
