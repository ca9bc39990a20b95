//go:build js && wasm

package gpumodel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/webgpu"
	"github.com/webinfer/webinfer/wasm/webgpu/webgputest"
)

// defaultModel reads the committed default model.
func defaultModel(t *testing.T) *model.Model {
	return loadModel(t, "assets/models/kjv-q8_0.gguf", "/assets/models/kjv-q8_0.gguf")
}

// loadModel reads a model from the file system under Node (from the
// package folder or the repository root), or over HTTP from the test
// server in a browser.
func loadModel(t *testing.T, repoPath, url string) *model.Model {
	var data []byte
	for _, p := range []string{"../../" + repoPath, repoPath} {
		if b, err := os.ReadFile(p); err == nil {
			data = b
			break
		}
	}
	if data == nil {
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, "GET %s", url)
		data, err = io.ReadAll(resp.Body)
		require.NoError(t, err)
	}
	f, err := gguf.ReadAt(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	m, err := model.LoadFromMemory(f, data)
	require.NoError(t, err)
	return m
}

func logSoftmax(x []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - mx)
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v) - mx - math.Log(s)
	}
	return out
}

func argmax(x []float32) int32 {
	b := 0
	for i := range x {
		if x[i] > x[b] {
			b = i
		}
	}
	return int32(b)
}

// nearTie is the top-two gap (nats) under which two float32 computations
// in different orders may pick different tokens.
const nearTie = 0.01

// logitTolerance bounds |GPU − CPU reference| log-softmax. The reference
// is the CPU path with f32 activations (model.ExactActivations), as the
// GPU keeps them; what is left is float32 summation order (the GPU sums
// each block in 4-wide pieces, attention in workgroup trees), measured
// around 1e-5; a wrong index or a dropped block shows as 0.1 and more.
// Against the llama.cpp-style CPU path (8-bit activations) the distance is
// about 0.14 on this model, from the activation rounding alone.
const logitTolerance = 2e-3

// TestGPUMatchesCPU runs the default model on WebGPU and on the CPU path,
// teacher-forced on the CPU's greedy tokens: the log-probabilities agree
// within logitTolerance and the argmax is the same but at near ties.
func TestGPUMatchesCPU(t *testing.T) {
	dev := webgputest.Open(t)
	webgputest.Long(t, dev)
	software := webgputest.SoftwareAdapter(dev.Info())
	// Both matmul forms, whatever the adapter would pick. The workgroup
	// form is slow on the CPU adapters of CI: fewer steps there.
	for _, wg := range []bool{false, true} {
		steps := map[bool]int{false: 24, true: 4}[wg]
		form := map[bool]string{false: "row per invocation", true: "workgroup per row"}[wg]
		if wg && software {
			steps = 2 // about 12 s a step on the CPU adapters of CI
		}
		t.Run("default model Q8_0, "+form, func(t *testing.T) {
			gpuMatchesCPU(t, dev, defaultModel(t), "And God said", steps, f32Bounds, WorkgroupPerRow(wg))
		})
		// Synthetic models (tests/browser and make test-dawn make them in
		// .cache/models) for the Q4_0 and f32 products.
		// Every type in the row form; the workgroup and tiled forms (slow on
		// the CPU adapters of CI) on the default model only, the kernel
		// tests covering those forms for every type.
		types := []string{"Q4_0", "F32", "F16", "Q4_K", "Q6_K"}
		if wg {
			types = nil
		}
		for _, typ := range types {
			t.Run("tiny "+typ+", "+form, func(t *testing.T) {
				name := "tiny-" + typ + "-s1.gguf"
				gpuMatchesCPU(t, dev, loadModel(t, ".cache/models/"+name, "/test/models/"+name), "The quick brown fox", steps, f32Bounds, WorkgroupPerRow(wg))
			})
		}
		// qwen2: Q/K/V biases and NeoX RoPE. In the row form only: its
		// 151,936-row output product in the workgroup form takes a minute on
		// the CPU adapters of CI (the kernel tests cover that form's biases).
		if !wg {
			t.Run("qwen2 Q4_K, "+form, func(t *testing.T) {
				name := "qwen2-Q4_K-s1.gguf"
				gpuMatchesCPU(t, dev, loadModel(t, ".cache/models/"+name, "/test/models/"+name), "The quick brown fox", 8, f32Bounds, WorkgroupPerRow(wg))
			})
		}
	}
}

// bounds are how far the GPU's log-probabilities may be from the CPU's
// (logit), and the top-two gap under which their argmax may differ (tie).
type bounds struct{ logit, tie float64 }

// f32Bounds are those of f32 activations; halfBounds of f16 ones: each
// activation rounded to 11 bits (relative 2^-11) before every product and
// in the cache, through every block, measured at about 3e-3 on the
// default model.
var (
	f32Bounds  = bounds{logitTolerance, nearTie}
	halfBounds = bounds{0.03, 0.05}
)

// TestHalfActivations runs the default model with f16 activations and KV
// cache (where the device has shader-f16) against the CPU path.
func TestHalfActivations(t *testing.T) {
	dev := webgputest.Open(t)
	if !dev.Info().HasFeature("shader-f16") {
		t.Skip("no shader-f16 here")
	}
	for _, wg := range []bool{false, true} {
		t.Run(fmt.Sprintf("workgroups=%v", wg), func(t *testing.T) {
			gpuMatchesCPU(t, dev, defaultModel(t), "And God said", 12, halfBounds, HalfActivations(true), WorkgroupPerRow(wg))
		})
	}
}

func gpuMatchesCPU(t *testing.T, dev *webgpu.Device, m *model.Model, prompt string, steps int, bound bounds, opts ...Option) {
	ctx := context.Background()
	r, err := New(ctx, dev, m, 128, 16, opts...)
	require.NoError(t, err)
	defer r.Close()

	m.ExactActivations = true
	ids := m.Tokenizer.Encode(prompt, true, false)
	st := m.NewState(128)
	want, err := m.Forward(st, ids)
	require.NoError(t, err)
	got, err := r.Forward(ctx, ids)
	require.NoError(t, err)
	t.Logf("one step: %d dispatches and copies in one submit", r.Dispatches())

	worst, ties, agree := 0.0, 0, 0
	for step := 0; step < steps; step++ {
		a, b := logSoftmax(want), logSoftmax(got)
		for i := range a {
			worst = math.Max(worst, math.Abs(a[i]-b[i]))
		}
		next := argmax(want)
		if g := argmax(got); g == next {
			agree++
		} else {
			sorted := append([]float64(nil), a...)
			first, second := math.Inf(-1), math.Inf(-1)
			for _, v := range sorted {
				if v > first {
					first, second = v, first
				} else if v > second {
					second = v
				}
			}
			if first-second < bound.tie {
				ties++
			} else {
				t.Errorf("step %d: GPU picks %d, CPU %d (gap %.3f)", step, g, next, first-second)
			}
		}
		want, err = m.Forward(st, []int32{next})
		require.NoError(t, err)
		got, err = r.Forward(ctx, []int32{next})
		require.NoError(t, err)
	}
	t.Logf("%d teacher-forced steps: %d same argmax, %d near ties; max |log-softmax GPU − CPU| = %.2e", steps, agree, ties, worst)
	assert.LessOrEqual(t, worst, bound.logit)
}

// TestLongPromptIsChunked feeds a prompt longer than the batch and checks
// the result equals feeding it in one go.
func TestLongPromptIsChunked(t *testing.T) {
	dev := webgputest.Open(t)
	m := defaultModel(t)
	ctx := context.Background()
	ids := m.Tokenizer.Encode("In the beginning God created the heaven and the earth. And the earth was without form, and void;", true, false)
	require.Greater(t, len(ids), 8)
	small, err := New(ctx, dev, m, 128, 8)
	require.NoError(t, err)
	defer small.Close()
	big, err := New(ctx, dev, m, 128, 64)
	require.NoError(t, err)
	defer big.Close()
	a, err := small.Forward(ctx, ids)
	require.NoError(t, err)
	b, err := big.Forward(ctx, ids)
	require.NoError(t, err)
	for i := range a {
		require.InDelta(t, a[i], b[i], 1e-3, "logit %d", i)
	}
	_, err = big.Forward(ctx, make([]int32, 200))
	var full model.ContextFullError
	assert.ErrorAs(t, err, &full)
}

// twoRunners gives two runners of m on one device, closed when t ends.
func twoRunners(t *testing.T, m *model.Model) (a, b *Runner) {
	dev := webgputest.Open(t)
	a, err := New(context.Background(), dev, m, 128, 16)
	require.NoError(t, err)
	t.Cleanup(a.Close)
	b, err = New(context.Background(), dev, m, 128, 16)
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return a, b
}

// argmaxSplit forces the argmax's split form on or off.
func argmaxSplit(on bool) Option { return func(r *Runner) { r.argmaxSplit = &on } }

// TestForwardArgmax checks the GPU argmax (4-byte read back, in its
// split form) against the argmax of the logits read back, over a greedy
// continuation.
func TestForwardArgmax(t *testing.T) {
	m := defaultModel(t)
	ctx := context.Background()
	dev := webgputest.Open(t)
	a, err := New(ctx, dev, m, 128, 16, argmaxSplit(true))
	require.NoError(t, err)
	defer a.Close()
	b, err := New(ctx, dev, m, 128, 16)
	require.NoError(t, err)
	defer b.Close()
	ids := m.Tokenizer.Encode("And God said", true, false)
	got, err := a.ForwardArgmax(ctx, ids)
	require.NoError(t, err)
	logits, err := b.Forward(ctx, ids)
	require.NoError(t, err)
	for i := 0; i < 16; i++ {
		want := argmax(logits)
		require.Equal(t, want, got, "step %d", i)
		got, err = a.ForwardArgmax(ctx, []int32{got})
		require.NoError(t, err)
		logits, err = b.Forward(ctx, []int32{want})
		require.NoError(t, err)
	}
}

// TestDecodeGreedy checks the pipelined greedy decode (each step queued
// before the previous token is read) against one ForwardArgmax at a time,
// and that stopping early leaves the position as if the step queued ahead
// had never run.
func TestDecodeGreedy(t *testing.T) {
	m := defaultModel(t)
	ctx := context.Background()
	a, b := twoRunners(t, m)
	ids := m.Tokenizer.Encode("And God said", true, false)

	var want []int32
	next, err := b.ForwardArgmax(ctx, ids)
	require.NoError(t, err)
	for i := 0; i < 12; i++ {
		want = append(want, next)
		next, err = b.ForwardArgmax(ctx, []int32{next})
		require.NoError(t, err)
	}
	var got []int32
	require.NoError(t, decode(ctx, a, ids, 12, sample.Params{}, nil, func(id int32) bool { got = append(got, id); return true }))
	assert.Equal(t, want, got)
	// n tokens: the last is not fed back, as with ForwardArgmax.
	assert.Equal(t, len(ids)+11, a.Pos())

	// Stop after 5: the step queued for the 6th is undone, and feeding on
	// from there gives the same tokens.
	require.NoError(t, a.Reset(128))
	got = got[:0]
	require.NoError(t, decode(ctx, a, ids, 100, sample.Params{}, nil, func(id int32) bool { got = append(got, id); return len(got) < 5 }))
	assert.Equal(t, want[:5], got)
	assert.Equal(t, len(ids)+4, a.Pos())
	require.NoError(t, decode(ctx, a, []int32{got[4]}, 3, sample.Params{}, nil, func(id int32) bool { got = append(got, id); return true }))
	assert.Equal(t, want[:8], got)
}

// TestDecodeSampled checks sampling on the GPU (penalties, top-k, top-p,
// min-p, temperature, seeded draws) in the pipelined decode against the
// CPU sampler on the logits of one Forward at a time.
func TestDecodeSampled(t *testing.T) {
	m := defaultModel(t)
	ctx := context.Background()
	a, b := twoRunners(t, m)
	ids := m.Tokenizer.Encode("And God said", true, false)
	n := 24
	if webgputest.SoftwareAdapter(a.dev.Info()) {
		n = 12 // CPU adapters: a few seconds a set
	}
	for _, p := range []sample.Params{
		{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, Seed: 7},
		{Temperature: 1, RepeatPenalty: 1.3, FrequencyPenalty: 0.2, PresencePenalty: 0.1, RepeatLastN: 16, Seed: 3},
		{Temperature: 1.2, TopP: 0.9, Seed: 11},
		{RepeatPenalty: 1.5, RepeatLastN: 8}, // greedy with penalties: the sampler, not the argmax
	} {
		require.NoError(t, a.Reset(128))
		require.NoError(t, b.Reset(128))
		// The CPU: one Forward at a time, the sampler on its logits.
		s := sample.New(p)
		for _, id := range ids {
			s.Accept(id)
		}
		var want []int32
		var steps [][]float32
		feed := ids
		for i := 0; i < n; i++ {
			logits, err := b.Forward(ctx, feed)
			require.NoError(t, err)
			steps = append(steps, logits)
			id := s.Sample(logits)
			s.Accept(id)
			want = append(want, id)
			feed = []int32{id}
		}
		var got []int32
		require.NoError(t, decode(ctx, a, ids, n, p, ids, func(id int32) bool { got = append(got, id); return true }))
		require.Len(t, got, n)
		for i := range want {
			if got[i] != want[i] {
				// A draw on a boundary of f32 and f64 sums ends the comparison.
				recent := append(append([]int32(nil), ids...), want[:i]...)
				u := sample.Uniform(p.Seed, uint32(i))
				require.True(t, onBoundary(steps[i], recent, p, u), "%+v: token %d: got %d, want %d", p, i, got[i], want[i])
				t.Logf("%+v: token %d on a boundary", p, i)
				break
			}
		}
		t.Logf("%+v: %v", p, got)
	}
}

// TestStepBatch decodes three sequences of different lengths in shared
// steps (one token of each per step, each with its own cache and
// position; one sampled, two greedy) and checks that each gets the tokens
// it gets decoded alone. In the row form and in the workgroup forms (a
// batch of 3 takes main_wgb, one token main_wg) a token's sums do not
// depend on the others in its step, so the tokens must be equal.
func TestStepBatch(t *testing.T) {
	m := defaultModel(t)
	dev := webgputest.Open(t)
	forms := []bool{false}
	if !webgputest.SoftwareAdapter(dev.Info()) { // the workgroup forms take minutes on CPU adapters
		forms = append(forms, true)
	}
	for _, wg := range forms {
		t.Run(fmt.Sprintf("workgroups=%v", wg), func(t *testing.T) { stepBatch(t, dev, m, wg) })
	}
}

func stepBatch(t *testing.T, dev *webgpu.Device, m *model.Model, wg bool) {
	ctx := context.Background()
	batch, err := New(ctx, dev, m, 64, 16, Sequences(3), WorkgroupPerRow(wg))
	require.NoError(t, err)
	defer batch.Close()
	alone, err := New(ctx, dev, m, 64, 16, WorkgroupPerRow(wg))
	require.NoError(t, err)
	defer alone.Close()

	prompts := [][]int32{
		m.Tokenizer.Encode("And God said", true, false),
		m.Tokenizer.Encode("In the beginning God created the heaven and the earth. And the earth was", true, false),
		m.Tokenizer.Encode("Jesus wept", true, false),
	}
	params := []sample.Params{{}, {Temperature: 0.9, TopK: 40, RepeatPenalty: 1.2, Seed: 5}, {}}
	const n = 10
	want := make([][]int32, len(prompts))
	for s, p := range prompts {
		require.NoError(t, alone.Reset(64))
		require.NoError(t, decode(ctx, alone, p, n, params[s], p, func(id int32) bool { want[s] = append(want[s], id); return true }))
	}

	seqs := []int{2, 0, 1} // any order
	next := make([]int32, len(seqs))
	for i, s := range seqs {
		p := prompts[s]
		require.NoError(t, batch.Prefill(ctx, s, p[:len(p)-1]))
		require.NoError(t, batch.SetSampling(ctx, s, params[s], p))
		next[i] = p[len(p)-1]
	}
	got := make([][]int32, len(prompts))
	for step := 0; step < n; step++ {
		ids, err := batch.StepBatch(ctx, seqs, next)
		require.NoError(t, err)
		for i, s := range seqs {
			got[s] = append(got[s], ids[i])
		}
		next = ids
	}
	for s := range prompts {
		assert.Equal(t, want[s], got[s], "sequence %d", s)
		assert.Equal(t, len(prompts[s])+n-1, batch.SeqPos(s))
	}
	// Queued ahead (engine.BatchQueuer, as the scheduler drives it): step
	// t+1 is queued before step t is read, its tokens step t's picks
	// copied on the GPU into another column order each step; sequence 0
	// leaves after 5 tokens, seen one step late, its part of the step
	// queued after undone.
	for i, s := range seqs {
		p := prompts[s]
		batch.ResetSeq(s)
		require.NoError(t, batch.Prefill(ctx, s, p[:len(p)-1]))
		require.NoError(t, batch.SetSampling(ctx, s, params[s], p))
		next[i] = p[len(p)-1]
	}
	orders := [][]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}}
	queued := make([][]int32, len(prompts))
	left := map[int]bool{}
	prev := seqs
	wait, ok, err := batch.QueueBatch(ctx, prev, next, nil)
	require.NoError(t, err)
	require.True(t, ok)
	for step := 0; step < n; step++ {
		var cur []int
		var curWait engine.BatchPick
		if step < n-1 {
			var from []int
			for _, s := range orders[step%3] {
				if !left[s] {
					cur = append(cur, s)
					from = append(from, slices.Index(prev, s))
				}
			}
			curWait, ok, err = batch.QueueBatch(ctx, cur, make([]int32, len(cur)), from)
			require.NoError(t, err)
			require.True(t, ok)
		}
		ids, err := wait(ctx)
		require.NoError(t, err)
		for i, s := range prev {
			if !left[s] {
				queued[s] = append(queued[s], ids[i])
			}
		}
		if len(queued[0]) == 5 && !left[0] {
			left[0] = true
			if slices.Contains(cur, 0) {
				batch.UnqueueSeq(0)
			}
		}
		prev, wait = cur, curWait
	}
	assert.Equal(t, want[0][:5], queued[0])
	assert.Equal(t, want[1], queued[1])
	assert.Equal(t, want[2], queued[2])
	assert.Equal(t, len(prompts[0])+5-1, batch.SeqPos(0), "the step queued after its end undone")
	assert.Equal(t, len(prompts[1])+n-1, batch.SeqPos(1))

	// A batch of one is a step of that sequence alone.
	batch.ResetSeq(1)
	require.NoError(t, batch.Prefill(ctx, 1, prompts[1][:len(prompts[1])-1]))
	require.NoError(t, batch.SetSampling(ctx, 1, params[1], prompts[1]))
	ids, err := batch.StepBatch(ctx, []int{1}, prompts[1][len(prompts[1])-1:])
	require.NoError(t, err)
	assert.Equal(t, want[1][0], ids[0])
	_, err = batch.StepBatch(ctx, []int{0, 0}, []int32{1, 2})
	assert.ErrorContains(t, err, "repeated")
	_, err = batch.StepBatch(ctx, []int{3}, []int32{1})
	assert.Error(t, err)
}

// attentionChunk sets the positions per workgroup of split attention.
func attentionChunk(n int) Option { return func(r *Runner) { r.chunk = n } }

// TestAttentionSplit decodes with attention split over the positions
// (chunks of 16 positions here, forced on from 2 positions) and whole,
// and checks the logits agree.
func TestAttentionSplit(t *testing.T) {
	dev := webgputest.Open(t)
	m := defaultModel(t)
	ctx := context.Background()
	whole, err := New(ctx, dev, m, 128, 64, AttentionSplitAt(0))
	require.NoError(t, err)
	defer whole.Close()
	split, err := New(ctx, dev, m, 128, 64, AttentionSplitAt(1), attentionChunk(16))
	require.NoError(t, err)
	defer split.Close()
	var ids []int32
	for len(ids) < 40 {
		ids = append(ids, m.Tokenizer.Encode("In the beginning God created the heaven and the earth. ", len(ids) == 0, false)...)
	}
	// The prompt (over four tokens: whole in both), then single tokens.
	sameLogits(t, whole, split, ids, 6)
	require.Greater(t, split.Pos(), 3*16, "three chunks at least")
	assert.Equal(t, len(m.Layers), split.Dispatches()-whole.Dispatches(), "split and combine in each block")
}

// sameLogits feeds ids, then steps−1 greedy tokens, to a and b, and
// checks their logits agree within 1e-4 at each step.
func sameLogits(t *testing.T, a, b *Runner, ids []int32, steps int) {
	ctx := context.Background()
	for step := 0; step < steps; step++ {
		la, err := a.Forward(ctx, ids)
		require.NoError(t, err)
		lb, err := b.Forward(ctx, ids)
		require.NoError(t, err)
		for i := range la {
			require.InDelta(t, la[i], lb[i], 1e-4, "step %d logit %d", step, i)
		}
		ids = []int32{argmax(la)}
	}
}

// onBoundary says whether sample.Pick's token moves when u moves by 1e-4.
func onBoundary(logits []float32, recent []int32, p sample.Params, u float32) bool {
	want := sample.Pick(logits, recent, p, u)
	return sample.Pick(logits, recent, p, max(u-1e-4, 0)) != want || sample.Pick(logits, recent, p, min(u+1e-4, 0.99999)) != want
}

// TestProfile times one step's kernels with timestamp queries where the
// adapter has them.
func TestProfile(t *testing.T) {
	dev := webgputest.Open(t)
	m := defaultModel(t)
	ctx := context.Background()
	r, err := New(ctx, dev, m, 128, 16)
	require.NoError(t, err)
	defer r.Close()
	_, err = r.ForwardArgmax(ctx, m.Tokenizer.Encode("And God said", true, false))
	require.NoError(t, err)
	pos := r.Pos()
	ops, err := r.Profile(ctx, []int32{42})
	if errors.Is(err, webgpu.ErrUnsupported) {
		t.Skipf("no timestamp queries here: %v", err)
	}
	require.NoError(t, err)
	assert.Equal(t, pos+1, r.Pos())
	n := 0
	for name, o := range ops {
		t.Logf("%-28s %3d× %v", name, o.Count, o.GPU)
		n += o.Count
	}
	assert.Equal(t, len(m.Layers), ops["attention"].Count)
	assert.Zero(t, ops["rope_kv"].Count, "a decode step rotates in attention")
	assert.Equal(t, 1, ops["argmax"].Count)
	assert.Equal(t, r.Dispatches(), n, "every dispatch of a greedy step")
}

// TestSplitWeights caps the binding size so that every product's weight
// is split by rows into parts (as a 1B model's output is in Firefox, whose
// bindings hold 128 MiB): the logits are those of the unsplit runner.
func TestSplitWeights(t *testing.T) {
	dev := webgputest.Open(t)
	m := defaultModel(t)
	ctx := context.Background()
	whole, err := New(ctx, dev, m, 128, 16)
	require.NoError(t, err)
	defer whole.Close()
	// 40 KB: the 4,096-row output (Q8_0, 256 columns) in parts of 150
	// rows, the blocks' products in 2 to 4, gate and up apart, the lookup
	// on the CPU.
	split, err := New(ctx, dev, m, 128, 16, MaxBindingSize(40<<10))
	require.NoError(t, err)
	defer split.Close()
	assert.Nil(t, split.embed)
	sameLogits(t, whole, split, m.Tokenizer.Encode("And God said", true, false), 3)
	t.Logf("a step: %d dispatches split, %d whole", split.Dispatches(), whole.Dispatches())
}

// decode sets sequence 0's sampling (p, recent) and runs the engine's
// pipelined loop on r: tokens, then up to n picks handed to yield.
func decode(ctx context.Context, r *Runner, tokens []int32, n int, p sample.Params, recent []int32, yield func(int32) bool) error {
	if err := r.SetSampling(ctx, 0, p, recent); err != nil {
		return err
	}
	return engine.Pipeline(ctx, r, tokens, n, yield)
}

// The runner is the engine's Decoder (one sequence, picks queued ahead)
// and Batcher (several sequences a step).
var (
	_ engine.Decoder = (*Runner)(nil)
	_ engine.Batcher = (*Runner)(nil)
)
