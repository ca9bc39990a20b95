//go:build js && wasm

package kernels_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/quant"
	"github.com/webinfer/webinfer/wasm/webgpu"
	"github.com/webinfer/webinfer/wasm/webgpu/webgputest"
)

// TestProductFormSpeed times the product forms on the shapes of the two
// benchmark models (SmolLM2-135M in Q8_0, Llama-3.2-1B in Q4_0): one token
// through main_wg, and eight through main_wg (eight times), main_wgb and
// main_wgt, each the median GPU time of a dispatch among many (timestamp
// queries), and checks on the way that the batched forms give main_wg's
// sums bit for bit. It measures, so it runs only where asked
// (WEBINFER_FORM_SPEED=1: scripts/h100-bench.sh on the GPU server; or a
// part of "model what", such as "smol135 o", for those shapes alone).
func TestProductFormSpeed(t *testing.T) {
	if os.Getenv("WEBINFER_FORM_SPEED") == "" {
		t.Skip("a measurement: set WEBINFER_FORM_SPEED=1")
	}
	dev := webgputest.Open(t)
	ctx := context.Background()
	info := dev.Info()
	sg := kernels.SubgroupsFit(info.HasFeature("subgroups"), info.Adapter.SubgroupMinSize, info.Adapter.SubgroupMaxSize)
	stage := kernels.StageTokensFor(info.Limit("maxComputeWorkgroupStorageSize"), sg)
	rng := rand.New(rand.NewPCG(3, 4))
	type shape struct {
		model, typ, what string
		f                kernels.Fusion
		rows, cols       int
	}
	shapes := []shape{
		{"llama1b", "Q4_0", "qkv", kernels.Fusion{Norm: true}, 3072, 2048},
		{"llama1b", "Q4_0", "o", kernels.Fusion{Acc: true}, 2048, 2048},
		{"llama1b", "Q4_0", "gate/up", kernels.Fusion{Norm: true, Gated: true}, 8192, 2048},
		{"llama1b", "Q4_0", "down", kernels.Fusion{Acc: true}, 2048, 8192},
		{"llama1b", "Q4_0", "output/4", kernels.Fusion{Norm: true}, 32064, 2048},
		{"smol135", "Q8_0", "qkv", kernels.Fusion{Norm: true}, 960, 576},
		{"smol135", "Q8_0", "o", kernels.Fusion{Acc: true}, 576, 576},
		{"smol135", "Q8_0", "gate/up", kernels.Fusion{Norm: true, Gated: true}, 1536, 576},
		{"smol135", "Q8_0", "down", kernels.Fusion{Acc: true}, 576, 1536},
		{"smol135", "Q8_0", "output", kernels.Fusion{Norm: true}, 49152, 576},
	}
	const T, reps = 8, 24
	var table []string
	only := os.Getenv("WEBINFER_FORM_SPEED") // "1": every shape; else the shapes whose "model what" holds it
	for _, s := range shapes {
		if only != "1" && !strings.Contains(s.model+" "+s.what, only) {
			continue
		}
		f := s.f
		f.Subgroups, f.StageTokens = sg, stage
		k, err := kernels.MatMul(s.typ, f)
		require.NoError(t, err)
		wrows := s.rows
		if f.Gated {
			wrows *= 2
		}
		data, scales := kernels.Split(s.typ, randomBlocks(rng, s.typ, wrows*s.cols), quant.F16ToF32)
		bufs := []webgpu.Binding{webgpu.Whole(upload(t, dev, data)), webgpu.Whole(upload(t, dev, webgpu.Float32Bytes(scales)))}
		x := upload(t, dev, webgpu.Float32Bytes(randoms(rng, T*s.cols, 2)))
		y0 := webgpu.Float32Bytes(randoms(rng, T*s.rows, 1))
		y := upload(t, dev, y0)
		p := kernels.MatMulParams{Rows: s.rows, Cols: s.cols, Batch: T, YStride: s.rows, Eps: 1e-5}
		bufs = append(bufs, webgpu.Whole(x), webgpu.Whole(y), webgpu.Whole(uniform(t, dev, p.Bytes())))
		if f.Norm {
			bufs = append(bufs, webgpu.Whole(upload(t, dev, webgpu.Float32Bytes(randoms(rng, s.cols, 1.5)))))
		}
		wgx, wgy, _ := kernels.MatMulWorkgroups(s.rows, 1, 65535)
		tx, ty, _ := kernels.MatMulTransposedWorkgroups(s.rows, f.Gated, 65535)
		forms := []struct {
			name    string
			k       kernels.Kernel
			x, y, z uint32
		}{
			{"wg T=1", kernels.WorkgroupForm(k), wgx, wgy, 1},
			{"wg T=8", kernels.WorkgroupForm(k), wgx, wgy, T},
			{"wgb T=8", kernels.BatchForm(k), wgx, wgy, 1},
			{"wgt T=8", kernels.TransposedForm(k), tx, ty, 1},
		}
		var solo []byte
		for i, fm := range forms {
			fmt.Println("form speed, running", s.model, s.what, fm.name)
			pipe, err := dev.Pipeline(ctx, fm.k.WGSL, fm.k.EntryPoint, nil)
			require.NoError(t, err, "%s", fm.k.Name)
			bg, err := dev.BindGroupRanges(pipe, bufs...)
			require.NoError(t, err)
			// Once from y0, for the sums (every form but the first).
			require.NoError(t, dev.WriteBuffer(y, 0, y0))
			var one webgpu.CommandList
			one.Dispatch(pipe, bg, fm.x, fm.y, fm.z)
			require.NoError(t, dev.Submit(&one))
			got, err := dev.Read(ctx, y, 0, int64(len(y0)))
			require.NoError(t, err)
			switch {
			case i == 1:
				solo = got
			case i > 1:
				require.Equal(t, solo, got, "%s %s %s: %s's sums differ from main_wg's", s.model, s.what, s.typ, fm.name)
			}
			var cl webgpu.CommandList
			for r := 0; r < reps; r++ {
				cl.Dispatch(pipe, bg, fm.x, fm.y, fm.z)
			}
			times, err := dev.SubmitProfiled(ctx, &cl)
			require.NoError(t, err)
			slices.Sort(times)
			med := times[len(times)/2]
			// And the wall time of the dispatches back to back, without
			// the timestamps between them.
			start := time.Now()
			require.NoError(t, dev.Submit(&cl))
			_, err = dev.Read(ctx, y, 0, 4)
			require.NoError(t, err)
			wall := time.Since(start) / reps
			table = append(table, fmt.Sprintf("%-8s %-5s %-9s %6d×%-5d %-8s gpu %8.1f µs  wall %8.1f µs",
				s.model, s.typ, s.what, s.rows, s.cols, fm.name, float64(med.Nanoseconds())/1000, float64(wall.Nanoseconds())/1000))
		}
	}
	for _, l := range table {
		fmt.Println("formspeed:", l)
	}
}

// randomBlocks is n weights of type typ (Q8_0 or Q4_0) as GGUF blocks of
// random quants and small random scales: fast to make, unlike quantizing.
func randomBlocks(rng *rand.Rand, typ string, n int) []byte {
	size := map[string]int{"Q8_0": 34, "Q4_0": 18}[typ]
	b := make([]byte, n/32*size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for o := 0; o < len(b); o += size {
		binary.LittleEndian.PutUint16(b[o:], quant.F32ToF16(rng.Float32()*0.02+0.001))
	}
	return b
}
