package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/quant"
)

// benchWeight is a rows×cols weight of type t with random values.
func benchWeight(b *testing.B, t gguf.Type, rows, cols int) Weight {
	rng := rand.New(rand.NewPCG(1, 2))
	f := make([]float32, rows*cols)
	for i := range f {
		f[i] = float32(rng.NormFloat64()) * 0.05
	}
	data, err := quant.Quantize(t, f)
	if err != nil {
		b.Fatal(err)
	}
	w, err := NewWeight("w", t, rows, cols, data)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// BenchmarkRowDot is one thread's weight bandwidth per type and kernel
// (the portable "go" one and each vector kernel of this build) on
// SmolLM2's feed-forward shapes (the bytes are the weight's): 1536×576
// (up), and 576×1536 (down) for the K-quants, whose blocks are 256 wide.
func BenchmarkRowDot(b *testing.B) {
	for _, t := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ4_K, gguf.TypeQ6_K} {
		ks := []vectorKernel{{typ: t, isa: "go", rows: portableRows}}
		for _, vk := range vectorKernels {
			if vk.typ == t {
				ks = append(ks, vk)
			}
		}
		for _, k := range ks {
			b.Run(t.String()+"/"+k.isa, func(b *testing.B) {
				rows, cols := 1536, 576
				if t.BlockSize() == 256 {
					rows, cols = 576, 1536
				}
				w := benchWeight(b, t, rows, cols)
				x := make([]float32, cols)
				for i := range x {
					x[i] = float32(i%7) - 3
				}
				var a Activations
				a.Prepare(x)
				k.prepareActs(&a)
				y := make([]float32, rows)
				b.SetBytes(w.Size())
				for b.Loop() {
					k.rows(y, w, 0, rows, &a)
				}
				_ = fmt.Sprint(y[0])
			})
		}
	}
}

// BenchmarkMatMul is a prefill's product on all threads: 64 tokens
// through SmolLM2's 1536×576 up projection with the kernels chosen on this
// CPU (WEBINFER_KERNELS forces one); the bytes are the weight's, once per
// token, so MB/s over the weight's size is tokens times its bandwidth.
func BenchmarkMatMul(b *testing.B) {
	for _, t := range []gguf.Type{gguf.TypeQ8_0, gguf.TypeQ4_0} {
		b.Run(t.String(), func(b *testing.B) {
			const rows, cols, tokens = 1536, 576, 64
			w := benchWeight(b, t, rows, cols)
			as := make([]*Activations, tokens)
			ys := make([][]float32, tokens)
			for i := range as {
				x := make([]float32, cols)
				for j := range x {
					x[j] = float32((i+j)%7) - 3
				}
				as[i] = &Activations{}
				as[i].Prepare(x)
				ys[i] = make([]float32, rows)
			}
			b.SetBytes(w.Size() * tokens)
			for b.Loop() {
				for _, a := range as {
					a.Prepare(a.X)
				}
				MatMul(ys, w, as)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
		})
	}
}
