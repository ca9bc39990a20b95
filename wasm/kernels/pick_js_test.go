//go:build js && wasm

package kernels_test

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/kernels"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/webgpu"
	"github.com/webinfer/webinfer/wasm/webgpu/webgputest"
)

// The picks after the logits: the argmax and the sampler.

func TestArgmax(t *testing.T) {
	dev := webgputest.Open(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	var pipes []webgpu.Pipeline
	for _, k := range []kernels.Kernel{kernels.Argmax(), kernels.ArgmaxPartial(), kernels.ArgmaxFinal()} {
		pipe, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
		require.NoError(t, err)
		pipes = append(pipes, pipe)
	}
	for _, n := range []int{1, 5, 256, 2047, 2048, 2049, 8192, 8193, 49152, 128256} {
		for _, c := range []struct{ tie, split bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
			tie := c.tie
			x := randoms(rng, n, 10)
			want := rng.IntN(n)
			x[want] = 11
			if tie && want+1 < n {
				x[n-1] = 11 // an equal value later: the first wins
			}
			// A second row, its maximum elsewhere: one workgroup a row.
			x2 := randoms(rng, n, 10)
			want2 := rng.IntN(n)
			x2[want2] = 12
			if c.tie && c.split && n > kernels.ArgmaxSlice {
				// An equal value in another slice, before the maximum.
				want = n - 1
				x[want] = 11
				x[0] = 11
				want = 0
			}
			out := upload(t, dev, make([]byte, 8))
			bufs := []webgpu.Buffer{upload(t, dev, webgpu.Float32Bytes(append(x, x2...))), out, uniform(t, dev, kernels.ArgmaxParams(n)),
				upload(t, dev, make([]byte, 8*2*kernels.ArgmaxParts(n)))}
			var cl webgpu.CommandList
			if c.split {
				bg, err := dev.BindGroup(pipes[1], bufs...)
				require.NoError(t, err)
				cl.Dispatch(pipes[1], bg, uint32(kernels.ArgmaxParts(n)), 2, 1)
				bg, err = dev.BindGroup(pipes[2], bufs...)
				require.NoError(t, err)
				cl.Dispatch(pipes[2], bg, 2, 1, 1)
			} else {
				bg, err := dev.BindGroup(pipes[0], bufs...)
				require.NoError(t, err)
				cl.Dispatch(pipes[0], bg, 2, 1, 1)
			}
			require.NoError(t, dev.Submit(&cl))
			raw, err := dev.Read(ctx, out, 0, 8)
			require.NoError(t, err)
			require.Equal(t, uint32(want), binary.LittleEndian.Uint32(raw), "n=%d %+v", n, c)
			require.Equal(t, uint32(want2), binary.LittleEndian.Uint32(raw[4:]), "n=%d %+v, row 2", n, c)
		}
	}
}

// sampleCase is one column of TestSample.
type sampleCase struct {
	name   string
	p      sample.Params
	recent []int32 // every token ever accepted, oldest first
	scale  float32 // of the random logits
	ties   bool    // logits rounded to halves: many equal keys
}

// TestSample runs the GPU sampler on columns of random logits with many
// parameter sets and seeds, and checks each token against sample.Pick.
// A draw whose token changes when u, top-p or min-p move by 1e-4 sits on
// a boundary where f32 and f64 sums may disagree: those are skipped (and
// must be rare).
func TestSample(t *testing.T) {
	dev := webgputest.Open(t)
	ctx := context.Background()
	k := kernels.Sample()
	pipe, err := dev.Pipeline(ctx, k.WGSL, k.EntryPoint, k.Constants)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(9, 10))
	hist := func(n, vocab int) []int32 {
		h := make([]int32, n)
		for i := range h {
			h[i] = int32(rng.IntN(min(vocab, 20))) // likely among the top few
		}
		return h
	}
	vocabs := []int{7, 300, 5000, 49152}
	if !webgputest.SoftwareAdapter(dev.Info()) {
		vocabs = append(vocabs, 128256)
	}
	const ring = 16
	skipped, total := 0, 0
	for _, vocab := range vocabs {
		cases := []sampleCase{
			{name: "greedy", p: sample.Params{}, scale: 3},
			{name: "greedy+repeat", p: sample.Params{RepeatPenalty: 1.3}, recent: hist(10, vocab), scale: 3},
			{name: "temperature", p: sample.Params{Temperature: 0.8}, scale: 3},
			{name: "min-p", p: sample.Params{Temperature: 1, MinP: 0.05}, scale: 3},
			{name: "min-p>1", p: sample.Params{Temperature: 1, MinP: 2}, scale: 3},
			{name: "top-k", p: sample.Params{Temperature: 0.7, TopK: 40}, scale: 3},
			{name: "page", p: sample.Params{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05}, scale: 3},
			{name: "top-p", p: sample.Params{Temperature: 1, TopP: 0.9}, scale: 3},
			{name: "top-p flat", p: sample.Params{Temperature: 1, TopP: 0.9}, scale: 0.1},
			{name: "top-k 1", p: sample.Params{Temperature: 1, TopK: 1}, scale: 3},
			{name: "top-k capped", p: sample.Params{Temperature: 1.5, TopK: 2000}, scale: 1},
			{name: "penalties", p: sample.Params{Temperature: 1, TopK: 50, RepeatPenalty: 1.1, FrequencyPenalty: 0.5, PresencePenalty: 0.3, RepeatLastN: 8}, recent: hist(20, vocab), scale: 2},
			{name: "ties", p: sample.Params{Temperature: 1, TopK: 40}, scale: 3, ties: true},
			{name: "ties top-p", p: sample.Params{Temperature: 2, TopP: 0.5}, scale: 1, ties: true},
		}
		T := len(cases)
		logits := make([]float32, T*vocab)
		var cols, recent []byte
		for c, sc := range cases {
			row := logits[c*vocab : (c+1)*vocab]
			for i := range row {
				row[i] = float32(rng.NormFloat64()) * sc.scale
				if sc.ties {
					row[i] = float32(math.Round(float64(row[i])*2) / 2)
				}
			}
			p := sc.p.Normalized()
			p.Seed = rng.Uint64()
			cases[c].p = p
			cols = append(cols, kernels.SampleColumn{Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP, MinP: p.MinP,
				RepeatPenalty: p.RepeatPenalty, FrequencyPenalty: p.FrequencyPenalty, PresencePenalty: p.PresencePenalty,
				LastN: min(p.RepeatLastN, ring), Seed: p.Seed, Draw: uint32(c), Row: uint32(c)}.Bytes()...)
			r := make([]uint32, 1+ring)
			r[0] = uint32(len(sc.recent))
			for i, id := range sc.recent {
				r[1+i%ring] = uint32(id)
			}
			recent = append(recent, u32Bytes(r)...)
		}
		for round := 0; round < 8; round++ {
			// A new seed per round for every column; the logits stay.
			for c := range cases {
				cases[c].p.Seed = rng.Uint64()
				binary.LittleEndian.PutUint32(cols[48*c+32:], uint32(cases[c].p.Seed))
				binary.LittleEndian.PutUint32(cols[48*c+36:], uint32(cases[c].p.Seed>>32))
			}
			lBuf := upload(t, dev, webgpu.Float32Bytes(logits))
			out := upload(t, dev, make([]byte, 4*T))
			rBuf := upload(t, dev, recent)
			bg, err := dev.BindGroup(pipe, lBuf, out, upload(t, dev, cols), rBuf, uniform(t, dev, kernels.SampleParams(vocab, ring)))
			require.NoError(t, err)
			var cl webgpu.CommandList
			cl.Dispatch(pipe, bg, uint32(T), 1, 1)
			require.NoError(t, dev.Submit(&cl))
			raw, err := dev.Read(ctx, out, 0, int64(4*T))
			require.NoError(t, err)
			rr, err := dev.Read(ctx, rBuf, 0, int64(len(recent)))
			require.NoError(t, err)
			for c, sc := range cases {
				got := int32(binary.LittleEndian.Uint32(raw[4*c:]))
				row := logits[c*vocab : (c+1)*vocab]
				u := sample.Uniform(sc.p.Seed, uint32(c))
				want := sample.Pick(row, sc.recent, sc.p, u)
				// The ring: the pick appended.
				base := 4 * c * (1 + ring)
				n := len(sc.recent)
				require.Equal(t, uint32(n+1), binary.LittleEndian.Uint32(rr[base:]), "%s: ring count", sc.name)
				require.Equal(t, uint32(got), binary.LittleEndian.Uint32(rr[base+4*(1+n%ring):]), "%s: ring entry", sc.name)
				total++
				if got != want && onBoundary(row, sc.recent, sc.p, u, want) {
					skipped++
					continue
				}
				require.Equal(t, want, got, "vocab %d, %s, round %d (u=%v)", vocab, sc.name, round, u)
			}
		}
	}
	t.Logf("%d draws, %d on a boundary", total, skipped)
	require.LessOrEqual(t, skipped, total/50)
}

// onBoundary says whether Pick's token moves when u, top-p or min-p move
// by 1e-4.
func onBoundary(logits []float32, recent []int32, p sample.Params, u float32, want int32) bool {
	const d = 1e-4
	for _, du := range []float32{-d, d} {
		if sample.Pick(logits, recent, p, min(max(u+du, 0), 0.99999)) != want {
			return true
		}
		q := p
		if q.TopP > 0 && q.TopP < 1 {
			q.TopP += du
			if sample.Pick(logits, recent, q, u) != want {
				return true
			}
		}
		q = p
		if q.MinP > 0 {
			q.MinP *= 1 + du
			if sample.Pick(logits, recent, q, u) != want {
				return true
			}
		}
	}
	return false
}

// f16Bytes rounds v to f16 in place and returns its f16 bytes, padded
// to 4 bytes.
