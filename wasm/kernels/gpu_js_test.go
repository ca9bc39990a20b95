//go:build js && wasm

package kernels_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/quant"
	"github.com/webinfer/webinfer/wasm/webgpu"
	"github.com/webinfer/webinfer/wasm/webgpu/webgputest"
)

// These tests run every WebGPU kernel variant on the WebGPU of the js/wasm
// host (a browser in tests/browser, Dawn under Node in make test-dawn) and
// compare each output element with the Go reference within its bound.

func randoms(rng *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = (rng.Float32()*2 - 1) * scale
	}
	return v
}

func typeByName(name string) gguf.Type {
	for t := gguf.Type(0); t < 64; t++ {
		if t.String() == name {
			return t
		}
	}
	panic("no type " + name)
}

// TestMatMulVariants checks each weight type × fusion × form × batch.
func TestMatMulVariants(t *testing.T) {
	dev := webgputest.Open(t)
	ctx := context.Background()
	fusions := []kernels.Fusion{{}, {Norm: true}, {Gated: true}, {Norm: true, Gated: true}, {Bias: true}, {Norm: true, Bias: true}, {Acc: true}}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, typ := range kernels.WeightTypes() {
		layout, _ := kernels.Layout(typ)
		// 3,072 columns: 96 units, three for each of main_wg's lanes, and x
		// staged in two chunks (2,048 + 1,024 elements).
		cols := 3072
		const rows = 37 // not a multiple of any workgroup's rows
		// The weights: random, quantized to typ, and dequantized for the
		// reference (which is then exact for the GPU's weights).
		gt := typeByName(typ)
		blocks, err := quant.Quantize(gt, randoms(rng, 2*rows*cols, 1))
		require.NoError(t, err)
		wDeq := make([]float32, 2*rows*cols)
		require.NoError(t, quant.Dequantize(gt, blocks, wDeq))
		data, scales := kernels.Split(typ, blocks, quant.F16ToF32)
		wBuf := upload(t, dev, data)
		var sBuf webgpu.Buffer
		if layout.Split {
			sBuf = upload(t, dev, webgpu.Float32Bytes(scales))
		}
		variants := fusions
		info := dev.Info()
		if kernels.SubgroupsFit(info.HasFeature("subgroups"), info.Adapter.SubgroupMinSize, info.Adapter.SubgroupMaxSize) {
			for _, f := range fusions {
				f.Subgroups = true
				variants = append(variants, f)
			}
		}
		// CPU adapters compile the workgroup and tiled forms slowly (about a
		// second each): there, those forms take one fusion of each kind on
		// Q4_K and the plain product on the other types (the row form,
		// which shares each type's unit(), takes everything). Real GPUs
		// take the whole matrix.
		brief := softwareAdapter(info)
		inBrief := func(f kernels.Fusion) bool {
			if typ != "Q4_K" {
				return f == kernels.Fusion{}
			}
			return f == kernels.Fusion{} || f == kernels.Fusion{Norm: true, Gated: true} || f == kernels.Fusion{Norm: true, Bias: true} || f == kernels.Fusion{Acc: true}
		}
		for _, f := range variants {
			for _, form := range []string{"row", "wg", "tile"} {
				if f.Subgroups && form != "wg" {
					continue // only the workgroup form reduces with subgroups
				}
				if brief && form != "row" && !inBrief(f) {
					continue
				}
				wg := form == "wg"
				batches := []int{1, 3}
				switch {
				case form == "tile" && brief:
					batches = []int{70} // a full tile and a partial second
				case form == "tile":
					batches = []int{3, 70}
				case form == "wg" && brief:
					batches = []int{1}
				}
				for _, batch := range batches {
					name := fmt.Sprintf("%s/%v/%s/T=%d", typ, f, form, batch)
					t.Run(name, func(t *testing.T) {
						k, err := kernels.MatMul(typ, f)
						require.NoError(t, err)
						switch form {
						case "wg":
							k = kernels.WorkgroupForm(k)
						case "tile":
							k = kernels.TileForm(k)
						}
						p := kernels.MatMulParams{Rows: rows, Cols: cols, Batch: batch, XOff: 4, YStride: rows + 5, YOff: 2, Eps: 1e-5}
						x := randoms(rng, 4+batch*cols, 2)
						nw := randoms(rng, cols, 1.5)
						bias := randoms(rng, rows, 1)
						y0 := randoms(rng, 2+batch*(rows+5), 1)
						want, tol := kernels.MatMulRef(wDeq, x, nw, bias, y0, p, f)

						pipe, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
						require.NoError(t, err, "%s", k.Name)
						bufs := []webgpu.Binding{webgpu.Whole(wBuf)}
						if layout.Split {
							bufs = append(bufs, webgpu.Whole(sBuf))
						}
						yBuf := upload(t, dev, webgpu.Float32Bytes(y0))
						bufs = append(bufs, webgpu.Whole(upload(t, dev, webgpu.Float32Bytes(x))), webgpu.Whole(yBuf), webgpu.Whole(uniform(t, dev, p.Bytes())))
						if f.Norm {
							bufs = append(bufs, webgpu.Whole(upload(t, dev, webgpu.Float32Bytes(nw))))
						}
						if f.Bias {
							bufs = append(bufs, webgpu.Whole(upload(t, dev, webgpu.Float32Bytes(bias))))
						}
						bg, err := dev.BindGroupRanges(pipe, bufs...)
						require.NoError(t, err)
						var cl webgpu.CommandList
						if form == "tile" {
							gx, gy, gz := kernels.MatMulTiles(rows, batch, f.Gated)
							cl.Dispatch(pipe, bg, gx, gy, gz)
						} else if wg {
							gx, gy, gz := kernels.MatMulWorkgroups(rows, batch, 65535)
							cl.Dispatch(pipe, bg, gx, gy, gz)
						} else {
							cl.Dispatch(pipe, bg, uint32((rows+63)/64), uint32(batch), 1)
						}
						require.NoError(t, dev.Submit(&cl))
						raw, err := dev.Read(ctx, yBuf, 0, int64(4*len(y0)))
						require.NoError(t, err)
						got := webgpu.BytesToFloat32(raw)
						worst := 0.0
						for i := range want {
							d := math.Abs(float64(got[i]) - float64(want[i]))
							if !(d <= tol[i]) {
								t.Fatalf("y[%d] = %g, want %g ± %.2g", i, got[i], want[i], tol[i])
							}
							worst = math.Max(worst, d/math.Max(tol[i], 1e-30))
						}
						t.Logf("worst |err|/bound %.3f", worst)
					})
				}
			}
		}
	}
}

// softwareAdapter says whether the adapter is a CPU one: marked fallback
// (SwiftShader in Chromium and Dawn), named as one, or nameless (Firefox
// hides lavapipe's strings).
func softwareAdapter(info webgpu.Info) bool {
	a := info.Adapter
	name := strings.ToLower(a.Vendor + " " + a.Architecture + " " + a.Device + " " + a.Description)
	return a.IsFallbackAdapter || strings.TrimSpace(name) == "" ||
		strings.Contains(name, "swiftshader") || strings.Contains(name, "llvmpipe") || strings.Contains(name, "lavapipe")
}

func upload(t *testing.T, dev *webgpu.Device, data []byte) webgpu.Buffer {
	b, err := dev.CreateBuffer(int64(len(data)), webgpu.UsageStorage|webgpu.UsageCopyDst|webgpu.UsageCopySrc, "test")
	require.NoError(t, err)
	require.NoError(t, dev.WriteBuffer(b, 0, data))
	t.Cleanup(func() { dev.DestroyBuffer(b) })
	return b
}

func uniform(t *testing.T, dev *webgpu.Device, data []byte) webgpu.Buffer {
	b, err := dev.CreateBuffer(int64(len(data)), webgpu.UsageUniform|webgpu.UsageCopyDst, "params")
	require.NoError(t, err)
	require.NoError(t, dev.WriteBuffer(b, 0, data))
	t.Cleanup(func() { dev.DestroyBuffer(b) })
	return b
}

// TestRopeKV checks rope_kv in both pair layouts, with partial rotation,
// grouped heads and a batch written at a cache offset.
func TestRopeKV(t *testing.T) {
	dev := webgputest.Open(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	const heads, kvHeads, headDim, T, pos, ctxLen = 6, 2, 16, 3, 5, 12
	for _, neox := range []bool{false, true} {
		for _, dims := range []int{headDim, 8} {
			t.Run(fmt.Sprintf("neox=%v/dims=%d", neox, dims), func(t *testing.T) {
				qDim, kvDim := heads*headDim, kvHeads*headDim
				qkv := randoms(rng, T*(qDim+2*kvDim), 2)
				cs := make([]float32, T*dims)
				for i := 0; i < len(cs); i += 2 {
					a := rng.Float64() * 100
					cs[i], cs[i+1] = float32(math.Cos(a)), float32(math.Sin(a))
				}
				kc, vc := randoms(rng, ctxLen*kvDim, 1), randoms(rng, ctxLen*kvDim, 1)
				wantK, wantV := append([]float32(nil), kc...), append([]float32(nil), vc...)
				wantQ := kernels.RopeKVRef(qkv, cs, heads, kvHeads, headDim, dims, T, pos, neox, wantK, wantV)

				k := kernels.RopeKV(neox)
				pipe, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
				require.NoError(t, err)
				qBuf := upload(t, dev, make([]byte, 4*len(wantQ)))
				kBuf, vBuf := upload(t, dev, webgpu.Float32Bytes(kc)), upload(t, dev, webgpu.Float32Bytes(vc))
				bg, err := dev.BindGroup(pipe, upload(t, dev, webgpu.Float32Bytes(qkv)), upload(t, dev, webgpu.Float32Bytes(cs)), qBuf, kBuf, vBuf,
					uniform(t, dev, kernels.RopeKVParams(heads, kvHeads, headDim, dims, T, pos)))
				require.NoError(t, err)
				var cl webgpu.CommandList
				gx, gy := kernels.RopeKVGrid(heads, kvHeads, headDim, T)
				cl.Dispatch(pipe, bg, gx, gy, 1)
				require.NoError(t, dev.Submit(&cl))
				for _, c := range []struct {
					name string
					buf  webgpu.Buffer
					want []float32
				}{{"q", qBuf, wantQ}, {"k cache", kBuf, wantK}, {"v cache", vBuf, wantV}} {
					raw, err := dev.Read(ctx, c.buf, 0, int64(4*len(c.want)))
					require.NoError(t, err)
					got := webgpu.BytesToFloat32(raw)
					for i := range c.want {
						// Two products and a sum, rounded in float32 each.
						require.InDelta(t, c.want[i], got[i], 4e-7*(1+math.Abs(float64(c.want[i]))), "%s[%d]", c.name, i)
					}
				}
			})
		}
	}
}

// TestAttention checks attention for decode (T = 1) and prefill (T > 1),
// with grouped heads and contexts longer than the workgroup.
func TestAttention(t *testing.T) {
	dev := webgputest.Open(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, wg := range []int{64, 256} {
		k := kernels.Attention(wg)
		pipe, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
		require.NoError(t, err)
		attentionCases(t, dev, pipe, rng, wg)
	}
}

func attentionCases(t *testing.T, dev *webgpu.Device, pipe webgpu.Pipeline, rng *rand.Rand, wg int) {
	ctx := context.Background()
	for _, c := range []struct{ heads, kvHeads, headDim, pos, T, ctx int }{
		{4, 2, 16, 0, 1, 8}, {4, 2, 16, 5, 3, 16}, {6, 2, 64, 300, 1, 320}, {2, 1, 128, 40, 4, 64},
	} {
		t.Run(fmt.Sprintf("wg=%d/%+v", wg, c), func(t *testing.T) {
			qDim, kvDim := c.heads*c.headDim, c.kvHeads*c.headDim
			q := randoms(rng, c.T*qDim, 1)
			kc, vc := randoms(rng, c.ctx*kvDim, 1), randoms(rng, c.ctx*kvDim, 1)
			want := kernels.AttentionRef(q, kc, vc, c.heads, c.kvHeads, c.headDim, c.pos, c.T)
			outBuf := upload(t, dev, make([]byte, 4*len(want)))
			bg, err := dev.BindGroup(pipe, upload(t, dev, webgpu.Float32Bytes(q)), upload(t, dev, webgpu.Float32Bytes(kc)), upload(t, dev, webgpu.Float32Bytes(vc)),
				upload(t, dev, make([]byte, 4*c.T*c.heads*c.ctx)), outBuf,
				uniform(t, dev, kernels.AttentionParams(c.heads, c.kvHeads, c.headDim, c.ctx, c.pos, c.T, 1/float32(math.Sqrt(float64(c.headDim))))))
			require.NoError(t, err)
			var cl webgpu.CommandList
			cl.Dispatch(pipe, bg, uint32(c.heads), uint32(c.T), 1)
			require.NoError(t, dev.Submit(&cl))
			raw, err := dev.Read(ctx, outBuf, 0, int64(4*len(want)))
			require.NoError(t, err)
			got := webgpu.BytesToFloat32(raw)
			for i := range want {
				// A weighted mean of values in [-1, 1]: float32 sums over at
				// most a few hundred positions.
				require.InDelta(t, want[i], got[i], 2e-5, "out[%d]", i)
			}
		})
	}
}

// TestArgmax checks the largest logit's index, the lowest among equals,
// for sizes around the workgroup's stride.
func TestArgmax(t *testing.T) {
	dev := webgputest.Open(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	k := kernels.Argmax()
	pipe, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
	require.NoError(t, err)
	for _, n := range []int{1, 5, 256, 2047, 2048, 2049, 49152, 128256} {
		for _, tie := range []bool{false, true} {
			x := randoms(rng, n, 10)
			want := rng.IntN(n)
			x[want] = 11
			if tie && want+1 < n {
				x[n-1] = 11 // an equal value later: the first wins
			}
			out := upload(t, dev, make([]byte, 4))
			bg, err := dev.BindGroup(pipe, upload(t, dev, webgpu.Float32Bytes(x)), out, uniform(t, dev, kernels.ElementwiseParams(n)))
			require.NoError(t, err)
			var cl webgpu.CommandList
			cl.Dispatch(pipe, bg, 1, 1, 1)
			require.NoError(t, dev.Submit(&cl))
			raw, err := dev.Read(ctx, out, 0, 4)
			require.NoError(t, err)
			require.Equal(t, uint32(want), uint32(raw[0])|uint32(raw[1])<<8|uint32(raw[2])<<16|uint32(raw[3])<<24, "n=%d tie=%v", n, tie)
		}
	}
}
