//go:build js && wasm

package kernels_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
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
	webgputest.Long(t, dev)
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
		info := dev.Info()
		base := fusions
		if info.HasFeature("shader-f16") {
			// The products of a block with f16 activations: Q/K/V and
			// gate/up write f16, the output and down projections read it.
			base = append(base[:len(base):len(base)], kernels.Fusion{Norm: true, HalfY: true}, kernels.Fusion{Norm: true, Gated: true, HalfY: true},
				kernels.Fusion{Norm: true, Bias: true, HalfY: true}, kernels.Fusion{Acc: true, HalfX: true}, kernels.Fusion{HalfX: true, HalfY: true})
		}
		variants := base
		if kernels.SubgroupsFit(info.HasFeature("subgroups"), info.Adapter.SubgroupMinSize, info.Adapter.SubgroupMaxSize) {
			for _, f := range base {
				f.Subgroups = true
				variants = append(variants, f)
			}
		}
		// CPU adapters compile the workgroup and tiled forms slowly (about a
		// second each): there, those forms take one fusion of each kind on
		// Q4_K and the plain product on the other types (the row form,
		// which shares each type's unit(), takes everything). Real GPUs
		// take the whole matrix.
		brief := webgputest.SoftwareAdapter(info)
		inBrief := func(f kernels.Fusion) bool {
			if typ != "Q4_K" {
				return f == kernels.Fusion{}
			}
			return f == kernels.Fusion{} || f == kernels.Fusion{Norm: true, Gated: true} || f == kernels.Fusion{Norm: true, Bias: true} || f == kernels.Fusion{Acc: true}
		}
		for _, f := range variants {
			for _, form := range []string{"row", "wg", "wgb", "tile"} {
				if f.Subgroups && form != "wg" && form != "wgb" {
					continue // only the workgroup forms reduce with subgroups
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
				case form == "wgb" && brief:
					batches = []int{5}
				case form == "wgb":
					batches = []int{2, 5, 8}
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
						case "wgb":
							k = kernels.BatchForm(k)
						}
						p := kernels.MatMulParams{Rows: rows, Cols: cols, Batch: batch, XOff: 4, YStride: rows + 5, YOff: 2, Eps: 1e-5}
						x := randoms(rng, 4+batch*cols, 2)
						nw := randoms(rng, cols, 1.5)
						bias := randoms(rng, rows, 1)
						y0 := randoms(rng, 2+batch*(rows+5), 1)
						xBytes, yBytes := webgpu.Float32Bytes(x), webgpu.Float32Bytes(y0)
						if f.HalfX { // x as the GPU holds it: f16
							xBytes = f16Bytes(x)
						}
						if f.HalfY {
							yBytes = f16Bytes(y0)
						}
						want, tol := kernels.MatMulRef(wDeq, x, nw, bias, y0, p, f)
						if f.HalfY { // and the rounding of the result to f16
							for i := range tol {
								tol[i] += math.Abs(float64(want[i]))/2048 + 1e-7
							}
						}

						pipe, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
						require.NoError(t, err, "%s", k.Name)
						bufs := []webgpu.Binding{webgpu.Whole(wBuf)}
						if layout.Split {
							bufs = append(bufs, webgpu.Whole(sBuf))
						}
						yBuf := upload(t, dev, yBytes)
						bufs = append(bufs, webgpu.Whole(upload(t, dev, xBytes)), webgpu.Whole(yBuf), webgpu.Whole(uniform(t, dev, p.Bytes())))
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
						} else if form == "wgb" {
							gx, gy, _ := kernels.MatMulWorkgroups(rows, 1, 65535)
							cl.Dispatch(pipe, bg, gx, gy, 1)
						} else {
							cl.Dispatch(pipe, bg, uint32((rows+63)/64), uint32(batch), 1)
						}
						require.NoError(t, dev.Submit(&cl))
						raw, err := dev.Read(ctx, yBuf, 0, int64(len(yBytes)))
						require.NoError(t, err)
						got := webgpu.BytesToFloat32(raw)
						if f.HalfY {
							got = fromF16Bytes(raw)
						}
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
	const heads, kvHeads, headDim, ctxLen = 6, 2, 16, 12
	// Two sequences of 12 rows each: one token of the first at position 5,
	// two of the second at 2 and 3.
	spans := []kernels.Span{{Base: 0, Len: 6}, {Base: 12, Len: 3}, {Base: 12, Len: 4}}
	T := len(spans)
	for _, half := range halves(dev) {
		for _, neox := range []bool{false, true} {
			for _, dims := range []int{headDim, 8} {
				t.Run(fmt.Sprintf("neox=%v/dims=%d/f16=%v", neox, dims, half), func(t *testing.T) {
					qDim, kvDim := heads*headDim, kvHeads*headDim
					qkv := randoms(rng, T*(qDim+2*kvDim), 2)
					act := actBytes(half)
					cs := make([]float32, T*dims)
					for i := 0; i < len(cs); i += 2 {
						a := rng.Float64() * 100
						cs[i], cs[i+1] = float32(math.Cos(a)), float32(math.Sin(a))
					}
					kc, vc := randoms(rng, 2*ctxLen*kvDim, 1), randoms(rng, 2*ctxLen*kvDim, 1)
					qkvBytes, kBytes, vBytes := act(qkv), act(kc), act(vc) // rounded to f16 when half
					wantK, wantV := append([]float32(nil), kc...), append([]float32(nil), vc...)
					wantQ := kernels.RopeKVRef(qkv, cs, heads, kvHeads, headDim, dims, spans, neox, wantK, wantV)

					k := kernels.RopeKV(neox)
					if half {
						k = k.Half()
					}
					pipe, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
					require.NoError(t, err)
					qBuf := upload(t, dev, act(make([]float32, len(wantQ))))
					kBuf, vBuf := upload(t, dev, kBytes), upload(t, dev, vBytes)
					bg, err := dev.BindGroup(pipe, upload(t, dev, qkvBytes), upload(t, dev, webgpu.Float32Bytes(cs)), qBuf, kBuf, vBuf,
						uniform(t, dev, kernels.RopeKVParams(heads, kvHeads, headDim, dims, T)), upload(t, dev, kernels.AppendSpans(nil, spans)))
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
						got := readAct(t, dev, c.buf, len(c.want), half)
						for i := range c.want {
							// Two products and a sum, rounded in float32 each
							// (and the result to f16 when half).
							tol := 4e-7 * (1 + math.Abs(float64(c.want[i])))
							if half {
								tol += math.Abs(float64(c.want[i]))/2048 + 1e-7
							}
							require.InDelta(t, c.want[i], got[i], tol, "%s[%d]", c.name, i)
						}
					}
				})
			}
		}
	}
}

// halves are the activation precisions to test: f32, and f16 where the
// device has shader-f16.
func halves(dev *webgpu.Device) []bool {
	if dev.Info().HasFeature("shader-f16") {
		return []bool{false, true}
	}
	return []bool{false}
}

// actBytes returns the encoder of activations: f32, or f16 (rounding the
// values in place, so a reference sees what the GPU holds).
func actBytes(half bool) func([]float32) []byte {
	if half {
		return f16Bytes
	}
	return webgpu.Float32Bytes
}

// readAct reads n activations of buf, f32 or f16.
func readAct(t *testing.T, dev *webgpu.Device, buf webgpu.Buffer, n int, half bool) []float32 {
	size := 4 * n
	if half {
		size = (2*n + 3) / 4 * 4
	}
	raw, err := dev.Read(context.Background(), buf, 0, int64(size))
	require.NoError(t, err)
	if half {
		return fromF16Bytes(raw)
	}
	return webgpu.BytesToFloat32(raw)
}

// TestAttention checks attention for decode (T = 1), prefill (T > 1) and
// batched decode (tokens of several sequences), with grouped heads and
// contexts longer than the workgroup.
func TestAttention(t *testing.T) {
	dev := webgputest.Open(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, half := range halves(dev) {
		for _, wg := range []int{64, 256} {
			var pipes []webgpu.Pipeline
			for _, k := range []kernels.Kernel{kernels.Attention(wg), kernels.AttentionSplit(wg, kernels.AttentionChunk), kernels.AttentionCombine(wg, kernels.AttentionChunk)} {
				if half {
					k = k.Half()
				}
				p, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
				require.NoError(t, err)
				pipes = append(pipes, p)
			}
			attentionCases(t, dev, pipes, rng, wg, half)
		}
	}
}

// attentionCases runs each case in the whole form (pipes[0]) and the
// split form (pipes[1], then pipes[2] to combine).
func attentionCases(t *testing.T, dev *webgpu.Device, pipes []webgpu.Pipeline, rng *rand.Rand, wg int, half bool) {
	act := actBytes(half)
	batched := []kernels.Span{{Base: 0, Len: 7}, {Base: 64, Len: 1}, {Base: 128, Len: 64}, {Base: 64 * 3, Len: 30}}
	long := []kernels.Span{{Base: 0, Len: 700}, {Base: 800, Len: 256}, {Base: 1600, Len: 257}, {Base: 2400, Len: 3}}
	for _, c := range []struct {
		heads, kvHeads, headDim, ctx int
		spans                        []kernels.Span
	}{
		{4, 2, 16, 8, kernels.Consecutive(0, 0, 1)}, {4, 2, 16, 16, kernels.Consecutive(0, 5, 3)},
		{6, 2, 64, 320, kernels.Consecutive(0, 300, 1)}, {2, 1, 128, 64, kernels.Consecutive(0, 40, 4)},
		{4, 2, 64, 64, batched}, {4, 1, 64, 800, long},
	} {
		for _, split := range []bool{false, true} {
			t.Run(fmt.Sprintf("wg=%d/f16=%v/split=%v/%d-%d-%d-%d/%v", wg, half, split, c.heads, c.kvHeads, c.headDim, c.ctx, c.spans), func(t *testing.T) {
				qDim, kvDim := c.heads*c.headDim, c.kvHeads*c.headDim
				T := len(c.spans)
				rows := 0
				for _, s := range c.spans {
					rows = max(rows, s.Base+c.ctx)
				}
				q := randoms(rng, T*qDim, 1)
				kc, vc := randoms(rng, rows*kvDim, 1), randoms(rng, rows*kvDim, 1)
				qBytes, kBytes, vBytes := act(q), act(kc), act(vc)
				want := kernels.AttentionRef(q, kc, vc, c.heads, c.kvHeads, c.headDim, c.spans)
				outBuf := upload(t, dev, act(make([]float32, len(want))))
				chunks := kernels.AttentionChunks(c.ctx, kernels.AttentionChunk)
				bufs := []webgpu.Buffer{upload(t, dev, qBytes), upload(t, dev, kBytes), upload(t, dev, vBytes),
					upload(t, dev, make([]byte, 4*T*c.heads*c.ctx)), outBuf,
					uniform(t, dev, kernels.AttentionParams{Heads: c.heads, KVHeads: c.kvHeads, HeadDim: c.headDim, Ctx: c.ctx, Batch: T, Scale: 1 / float32(math.Sqrt(float64(c.headDim))), Chunks: chunks}.Bytes()),
					upload(t, dev, kernels.AppendSpans(nil, c.spans)), upload(t, dev, make([]byte, kernels.AttentionPartialBytes(T*c.heads*chunks))),
					upload(t, dev, make([]byte, 16)), upload(t, dev, make([]byte, 16))}
				var cl webgpu.CommandList
				if split {
					bg, err := dev.BindGroup(pipes[1], bufs...)
					require.NoError(t, err)
					cl.Dispatch(pipes[1], bg, uint32(c.heads), uint32(T), uint32(chunks))
					bg, err = dev.BindGroup(pipes[2], bufs...)
					require.NoError(t, err)
					cl.Dispatch(pipes[2], bg, uint32(c.heads), uint32(T), 1)
				} else {
					bg, err := dev.BindGroup(pipes[0], bufs...)
					require.NoError(t, err)
					cl.Dispatch(pipes[0], bg, uint32(c.heads), uint32(T), 1)
				}
				require.NoError(t, dev.Submit(&cl))
				got := readAct(t, dev, outBuf, len(want), half)
				for i := range want {
					// A weighted mean of values in [-1, 1]: float32 sums over at
					// most a few hundred positions (then rounded to f16 when half).
					tol := 2e-5
					if half {
						tol += math.Abs(float64(want[i])) / 2048
					}
					require.InDelta(t, want[i], got[i], tol, "out[%d]", i)
				}
			})
		}
	}
}

// TestAttentionFused checks attention with RoPE and the cache append
// folded in (decode and batched decode: one new token per sequence)
// against rope_kv's reference followed by attention's, whole and split,
// for both RoPE layouts and partial rotation.
func TestAttentionFused(t *testing.T) {
	dev := webgputest.Open(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, 12))
	const heads, kvHeads, headDim, ctxLen = 4, 2, 64, 400
	qDim, kvDim := heads*headDim, kvHeads*headDim
	// Three sequences, one new token each: positions 0, 9 and 300.
	spans := []kernels.Span{{Base: 0, Len: 1}, {Base: ctxLen, Len: 10}, {Base: 2 * ctxLen, Len: 301}}
	T := len(spans)
	for _, half := range halves(dev) {
		act := actBytes(half)
		for _, wg := range []int{64, 256} {
			var pipes []webgpu.Pipeline
			for _, k := range []kernels.Kernel{kernels.Attention(wg), kernels.AttentionSplit(wg, 128), kernels.AttentionCombine(wg, 128)} {
				if half {
					k = k.Half()
				}
				p, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
				require.NoError(t, err)
				pipes = append(pipes, p)
			}
			for _, neox := range []bool{false, true} {
				for _, dims := range []int{headDim, 32} {
					for _, split := range []bool{false, true} {
						t.Run(fmt.Sprintf("f16=%v/wg=%d/neox=%v/dims=%d/split=%v", half, wg, neox, dims, split), func(t *testing.T) {
							qkv := randoms(rng, T*(qDim+2*kvDim), 1)
							cs := make([]float32, T*dims)
							for i := 0; i < len(cs); i += 2 {
								a := rng.Float64() * 100
								cs[i], cs[i+1] = float32(math.Cos(a)), float32(math.Sin(a))
							}
							kc, vc := randoms(rng, 3*ctxLen*kvDim, 1), randoms(rng, 3*ctxLen*kvDim, 1)
							qkvBytes, kBytes, vBytes := act(qkv), act(kc), act(vc)
							q := kernels.RopeKVRef(qkv, cs, heads, kvHeads, headDim, dims, spans, neox, kc, vc)
							want := kernels.AttentionRef(q, kc, vc, heads, kvHeads, headDim, spans)
							chunks := kernels.AttentionChunks(ctxLen, 128)
							kBuf, vBuf, outBuf := upload(t, dev, kBytes), upload(t, dev, vBytes), upload(t, dev, act(make([]float32, len(want))))
							bufs := []webgpu.Buffer{upload(t, dev, make([]byte, 16)), kBuf, vBuf,
								upload(t, dev, make([]byte, 4*T*heads*ctxLen)), outBuf,
								uniform(t, dev, kernels.AttentionParams{Heads: heads, KVHeads: kvHeads, HeadDim: headDim, Ctx: ctxLen, Batch: T,
									Scale: 1 / float32(math.Sqrt(headDim)), Chunks: chunks, Fused: true, RopeDims: dims, NeoX: neox}.Bytes()),
								upload(t, dev, kernels.AppendSpans(nil, spans)), upload(t, dev, make([]byte, kernels.AttentionPartialBytes(T*heads*chunks))),
								upload(t, dev, qkvBytes), upload(t, dev, webgpu.Float32Bytes(cs))}
							var cl webgpu.CommandList
							if split {
								bg, err := dev.BindGroup(pipes[1], bufs...)
								require.NoError(t, err)
								cl.Dispatch(pipes[1], bg, heads, uint32(T), uint32(kernels.AttentionChunks(301, 128)))
								bg, err = dev.BindGroup(pipes[2], bufs...)
								require.NoError(t, err)
								cl.Dispatch(pipes[2], bg, heads, uint32(T), 1)
							} else {
								bg, err := dev.BindGroup(pipes[0], bufs...)
								require.NoError(t, err)
								cl.Dispatch(pipes[0], bg, heads, uint32(T), 1)
							}
							require.NoError(t, dev.Submit(&cl))
							got := readAct(t, dev, outBuf, len(want), half)
							for i := range want {
								tol := 2e-5
								if half {
									tol += math.Abs(float64(want[i]))/2048 + 2e-3 // q and k rounded before the dot
								}
								require.InDelta(t, want[i], got[i], tol, "out[%d]", i)
							}
							// The new rows in the caches.
							gk, gv := readAct(t, dev, kBuf, len(kc), half), readAct(t, dev, vBuf, len(vc), half)
							for _, s := range spans {
								row := (s.Base + s.Len - 1) * kvDim
								for i := row; i < row+kvDim; i++ {
									tol := 4e-7 * (1 + math.Abs(float64(kc[i])))
									if half {
										tol += math.Abs(float64(kc[i]))/2048 + 1e-7
									}
									require.InDelta(t, kc[i], gk[i], tol, "k cache[%d]", i)
									require.InDelta(t, vc[i], gv[i], tol, "v cache[%d]", i)
								}
							}
						})
					}
				}
			}
		}
	}
}

// TestGetRows looks up rows of a matrix of every weight type (in its
// product layout) and compares them with the Go dequantization.
func TestGetRows(t *testing.T) {
	dev := webgputest.Open(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 14))
	const rows, cols = 10, 512
	ids := []uint32{3, 0, 9, 3}
	for _, typ := range kernels.WeightTypes() {
		t.Run(typ, func(t *testing.T) {
			gt := typeByName(typ)
			blocks, err := quant.Quantize(gt, randoms(rng, rows*cols, 2))
			require.NoError(t, err)
			want := make([]float32, rows*cols)
			require.NoError(t, quant.Dequantize(gt, blocks, want))
			k, err := kernels.GetRows(typ)
			require.NoError(t, err)
			pipe, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
			require.NoError(t, err)
			data, scales := kernels.Split(typ, blocks, quant.F16ToF32)
			bufs := []webgpu.Buffer{upload(t, dev, data)}
			if layout, _ := kernels.Layout(typ); layout.Split {
				bufs = append(bufs, upload(t, dev, webgpu.Float32Bytes(scales)))
			}
			x := upload(t, dev, make([]byte, 4*len(ids)*cols))
			bufs = append(bufs, upload(t, dev, u32Bytes(ids)), x, uniform(t, dev, kernels.GetRowsParams(cols, len(ids))))
			bg, err := dev.BindGroup(pipe, bufs...)
			require.NoError(t, err)
			var cl webgpu.CommandList
			gx, gy := kernels.GetRowsGrid(cols, len(ids))
			cl.Dispatch(pipe, bg, gx, gy, 1)
			require.NoError(t, dev.Submit(&cl))
			raw, err := dev.Read(ctx, x, 0, int64(4*len(ids)*cols))
			require.NoError(t, err)
			got := webgpu.BytesToFloat32(raw)
			for i, id := range ids {
				for e := 0; e < cols; e++ {
					w := want[int(id)*cols+e]
					// The same products as the Go dequantization, perhaps
					// in another order.
					require.InDelta(t, w, got[i*cols+e], 1e-6*(1+math.Abs(float64(w))), "%s row %d [%d]", typ, id, e)
				}
			}
		})
	}
}

// TestArgmax checks the largest logit's index, the lowest among equals,
// for sizes around the workgroup's stride and the split form's slice, in
// both forms.
func f16Bytes(v []float32) []byte {
	b := make([]byte, (2*len(v)+3)/4*4)
	for i, x := range v {
		h := quant.F32ToF16(x)
		v[i] = quant.F16ToF32(h)
		binary.LittleEndian.PutUint16(b[2*i:], h)
	}
	return b
}

func fromF16Bytes(b []byte) []float32 {
	v := make([]float32, len(b)/2)
	for i := range v {
		v[i] = quant.F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return v
}

func u32Bytes(v []uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}
