//go:build js && wasm

package kernels_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/quant"
	"github.com/webinfer/webinfer/wasm/webgpu"
	"github.com/webinfer/webinfer/wasm/webgpu/webgputest"
)

// TestBatchFormIsSolo checks that the few-tokens forms (main_wgb, and
// main_wgt where at least TransposedMinStage tokens are staged) give
// every token of its batch bit for bit the sums the one-token form
// (main_wg) gives it, for any number of tokens staged at a time (the
// smallest, a number that leaves a partial group, and this device's): the
// scheduler's promise that a request gets the tokens it gets alone rests
// on it.
func TestBatchFormIsSolo(t *testing.T) {
	dev := webgputest.Open(t)
	ctx := context.Background()
	info := dev.Info()
	rng := rand.New(rand.NewPCG(7, 8))
	brief := webgputest.SoftwareAdapter(info) // workgroup forms compile slowly there
	// stagesFor: the staged tokens tried with fusions f.
	stagesFor := func(f kernels.Fusion) []int {
		stages := []int{2, kernels.StageTokensFor(info.Limit("maxComputeWorkgroupStorageSize"), f.Subgroups)}
		if !brief {
			stages = append(stages, 3)
		}
		slices.Sort(stages)
		return slices.Compact(stages)
	}
	types := []string{"Q4_K"}
	fusions := []kernels.Fusion{{Norm: true, Gated: true}, {Acc: true}}
	batches := []int{8}
	if !brief {
		types = append(types, "Q4_0", "Q8_0", "Q6_K")
		fusions = append(fusions, kernels.Fusion{}, kernels.Fusion{Norm: true, Bias: true})
		if info.HasFeature("shader-f16") {
			fusions = append(fusions, kernels.Fusion{Norm: true, Gated: true, HalfY: true}, kernels.Fusion{Acc: true, HalfX: true})
		}
		batches = []int{2, 5, 8}
	}
	if kernels.SubgroupsFit(info.HasFeature("subgroups"), info.Adapter.SubgroupMinSize, info.Adapter.SubgroupMaxSize) {
		for _, f := range fusions {
			f.Subgroups = true
			fusions = append(fusions, f)
		}
	}
	// 2,304 columns (nine 256-weight blocks): 72 units, two whole chunks
	// of 32 and a partial third.
	const rows, cols = 37, 2304
	for _, typ := range types {
		layout, _ := kernels.Layout(typ)
		blocks, err := quant.Quantize(typeByName(typ), randoms(rng, 2*rows*cols, 1))
		require.NoError(t, err)
		data, scales := kernels.Split(typ, blocks, quant.F16ToF32)
		weights := []webgpu.Binding{webgpu.Whole(upload(t, dev, data))}
		if layout.Split {
			weights = append(weights, webgpu.Whole(upload(t, dev, webgpu.Float32Bytes(scales))))
		}
		nw := upload(t, dev, webgpu.Float32Bytes(randoms(rng, cols, 1.5)))
		bias := upload(t, dev, webgpu.Float32Bytes(randoms(rng, rows, 1)))
		for _, f := range fusions {
			for _, batch := range batches {
				x := randoms(rng, 4+batch*cols, 2)
				xBytes := webgpu.Float32Bytes(x)
				if f.HalfX {
					xBytes = f16Bytes(x)
				}
				xBuf := upload(t, dev, xBytes)
				y0 := randoms(rng, 2+batch*(rows+5), 1)
				y0Bytes := webgpu.Float32Bytes(y0)
				if f.HalfY {
					y0Bytes = f16Bytes(y0)
				}
				p := kernels.MatMulParams{Rows: rows, Cols: cols, Batch: batch, XOff: 4, YStride: rows + 5, YOff: 2, Eps: 1e-5}
				params := uniform(t, dev, p.Bytes())
				// run dispatches kernel k (over T tokens on z for main_wg, all
				// at once for main_wgb) and returns y.
				run := func(t *testing.T, k kernels.Kernel, z uint32) []byte {
					gx, gy, _ := kernels.MatMulWorkgroups(rows, 1, 65535)
					if k.EntryPoint == "main_wgt" {
						gx, gy, _ = kernels.MatMulTransposedWorkgroups(rows, f.Gated, 65535)
					}
					pipe, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
					require.NoError(t, err, "%s", k.Name)
					yBuf := upload(t, dev, y0Bytes)
					bufs := append(slices.Clone(weights), webgpu.Whole(xBuf), webgpu.Whole(yBuf), webgpu.Whole(params))
					if f.Norm {
						bufs = append(bufs, webgpu.Whole(nw))
					}
					if f.Bias {
						bufs = append(bufs, webgpu.Whole(bias))
					}
					bg, err := dev.BindGroupRanges(pipe, bufs...)
					require.NoError(t, err)
					var cl webgpu.CommandList
					cl.Dispatch(pipe, bg, gx, gy, z)
					require.NoError(t, dev.Submit(&cl))
					raw, err := dev.Read(ctx, yBuf, 0, int64(len(y0Bytes)))
					require.NoError(t, err)
					return raw
				}
				k, err := kernels.MatMul(typ, f)
				require.NoError(t, err)
				solo := run(t, kernels.WorkgroupForm(k), uint32(batch))
				for _, stage := range stagesFor(f) {
					t.Run(fmt.Sprintf("%s/%v/T=%d/staged=%d", typ, f, batch, stage), func(t *testing.T) {
						g := f
						g.StageTokens = stage
						k, err := kernels.MatMul(typ, g)
						require.NoError(t, err)
						got := run(t, kernels.BatchForm(k), 1)
						require.Equal(t, solo, got, "main_wgb's sums differ from main_wg's")
						// On a software adapter (brief) the transposed form's
						// gated product alone: its reduction serves every fusion.
						if stage >= kernels.TransposedMinStage && (!brief || f.Gated) {
							got = run(t, kernels.TransposedForm(k), 1)
							require.Equal(t, solo, got, "main_wgt's sums differ from main_wg's")
						}
					})
				}
			}
		}
	}
}
