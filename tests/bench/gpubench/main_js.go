//go:build js && wasm

// Command gpubench measures the WebGPU backend on one model, as the page
// runs it: the same Go module, shim and kernels, under Node with Dawn
// (scripts/node-gpu.mjs) on a GPU server, or in a browser. It prints one
// JSON line per measure in the shape of CONTRACTS.md section 6's results.
//
//	node scripts/node-gpu.mjs dist/gpubench.wasm MODEL.gguf [prompt=32] [decode=128] [prefill=512] [long=4000]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/webinfer/webinfer/internal/loadgen"
	"github.com/webinfer/webinfer/wasm/cpu"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/gpumodel"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/scheduler"
	"github.com/webinfer/webinfer/wasm/source"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gpubench:", err)
		os.Exit(1)
	}
}

func arg(i, def int) int {
	if len(os.Args) > i {
		if n, err := strconv.Atoi(os.Args[i]); err == nil {
			return n
		}
	}
	return def
}

func run() error {
	if len(os.Args) < 2 {
		return fmt.Errorf("usage: gpubench MODEL.gguf [prompt] [decode] [prefill]")
	}
	path := os.Args[1]
	nPrompt, nDecode, nPrefill := arg(2, 32), arg(3, 128), arg(4, 512)
	ctx := context.Background()
	m, modelInfo, closeModel, err := source.Load(ctx, path, nil)
	if err != nil {
		return err
	}
	defer closeModel()
	dev, err := webgpu.Open(ctx, webgpu.Options{})
	if err != nil {
		return err
	}
	info := dev.Info()
	if os.Getenv("GPUBENCH_ONLY") == "streams" { // the concurrent streams alone (a quick look)
		streams, ops, err := concurrentStreams(ctx, dev, m)
		if err != nil {
			return err
		}
		var rows []map[string]any
		for _, l := range streams {
			rows = append(rows, map[string]any{"case": l.name, "measure": l.measure, "samples": l.samples})
		}
		t := gpumodel.DeviceTarget(info)
		b, _ := json.Marshal(map[string]any{"streams": rows, "batch_gpu_us_per_op": ops,
			"workgroup_storage": info.Limit("maxComputeWorkgroupStorageSize"), "stage_tokens": t.StageTokens, "subgroups": t.Subgroups})
		fmt.Println(string(b))
		return nil
	}
	ctxLen := nPrefill + 64
	t0 := time.Now()
	r, err := gpumodel.New(ctx, dev, m, max(ctxLen, nPrompt+nDecode+8), nPrefill)
	if err != nil {
		return err
	}
	upload := time.Since(t0)

	prompt := make([]int32, nPrompt)
	for i := range prompt {
		prompt[i] = int32((i*7919 + 13) % m.Vocab)
	}
	// The row-per-invocation form, for prefill: which form wins on a real
	// GPU for batches is measured here, not assumed.
	rowForm, err := gpumodel.New(ctx, dev, m, ctxLen, nPrefill, gpumodel.WorkgroupPerRow(false))
	if err != nil {
		return err
	}
	var decode, decodeUnpipelined, prefill, prefillRow []float64
	dispatches := 0
	var split map[string]float64
	ops := map[string][]float64{}
	opCount := map[string]int{}
	long := make([]int32, nPrefill)
	for i := range long {
		long[i] = int32((i*104729 + 7) % m.Vocab)
	}
	for run := 0; run < 4; run++ {
		// Greedy decode as the engine runs it: the argmax on the GPU, each
		// step queued before the previous token is read back.
		if err := r.Reset(ctxLen); err != nil {
			return err
		}
		n := 0
		var start time.Time
		r.Timings()
		if err := pipelined(ctx, r, prompt, nDecode+1, sample.Params{}, nil, func(int32) bool {
			if n == 0 { // the first token ends the prompt's prefill
				start = time.Now()
				r.Timings()
			}
			n++
			return true
		}); err != nil {
			return err
		}
		tm := r.Timings()
		dispatches = r.Dispatches()
		if run > 0 { // the first run compiles and warms up
			decode = append(decode, float64(nDecode)/time.Since(start).Seconds())
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(tm.Steps) }
			split = map[string]float64{"prepare_ms": ms(tm.Prepare), "submit_ms": ms(tm.Submit), "wait_ms": ms(tm.Wait)}
		}
		// The same without queuing ahead: one token read back per step.
		if err := r.Reset(ctxLen); err != nil {
			return err
		}
		next, err := r.ForwardArgmax(ctx, prompt)
		if err != nil {
			return err
		}
		start = time.Now()
		for i := 0; i < nDecode; i++ {
			if next, err = r.ForwardArgmax(ctx, []int32{next}); err != nil {
				return err
			}
		}
		if run > 0 {
			decodeUnpipelined = append(decodeUnpipelined, float64(nDecode)/time.Since(start).Seconds())
		}
		// GPU time per kernel of one decode step (timestamp queries).
		if prof, err := r.Profile(ctx, []int32{next}); err == nil && run > 0 {
			for name, o := range prof {
				ops[name] = append(ops[name], float64(o.GPU.Nanoseconds())/1000)
				opCount[name] = o.Count
			}
		} else if err != nil && run == 0 {
			fmt.Fprintln(os.Stderr, "gpubench: no GPU times per op:", err)
		}
		for _, pf := range []struct {
			r   *gpumodel.Runner
			out *[]float64
		}{{r, &prefill}, {rowForm, &prefillRow}} {
			if err := pf.r.Reset(ctxLen); err != nil {
				return err
			}
			start = time.Now()
			if _, err := pf.r.Forward(ctx, long); err != nil {
				return err
			}
			if run > 0 {
				*pf.out = append(*pf.out, float64(nPrefill)/time.Since(start).Seconds())
			}
		}
	}
	// Sampled decode (the page's defaults), pipelined as greedy is.
	pageSampling := sample.Defaults.WithSeed(1)
	sampled, err := decodeRate(ctx, r, prompt, nDecode, pageSampling)
	if err != nil {
		return err
	}
	// The same greedy decode with RoPE and the cache append in a dispatch
	// of their own (rope_kv), as before they moved into attention.
	ra, err := gpumodel.New(ctx, dev, m, max(ctxLen, nPrompt+nDecode+8), nPrefill, gpumodel.RopeInAttention(false))
	if err != nil {
		return err
	}
	ropeApart, err := decodeRate(ctx, ra, prompt, nDecode, sample.Params{})
	ra.Close()
	if err != nil {
		return err
	}
	longCtx, err := longContext(ctx, dev, m, nPrefill, arg(5, 4000))
	if err != nil {
		return err
	}
	batched, err := batchedDecode(ctx, dev, m, prompt)
	if err != nil {
		return err
	}
	streams, batchOps, err := concurrentStreams(ctx, dev, m)
	if err != nil {
		return err
	}
	// GPU time per kernel of one prefill step.
	prefillOps := map[string]map[string]float64{}
	for _, pf := range []struct {
		r    *gpumodel.Runner
		form string
	}{{r, "default"}, {rowForm, "row"}} {
		if err := pf.r.Reset(ctxLen); err != nil {
			return err
		}
		if prof, err := pf.r.Profile(ctx, long); err == nil {
			for name, o := range prof {
				prefillOps[pf.form+" "+name] = map[string]float64{"us": float64(o.GPU.Nanoseconds()) / 1000, "dispatches": float64(o.Count)}
			}
		}
	}
	opTimes := map[string]map[string]float64{}
	var gpuStep float64
	for name, v := range ops {
		sort.Float64s(v)
		med := v[len(v)/2]
		opTimes[name] = map[string]float64{"us": med, "dispatches": float64(opCount[name])}
		gpuStep += med
	}
	// The weights a decode step reads: every block's and the output's
	// (the embedding itself when tied).
	weightBytes := int64(len(m.Output.Data))
	for _, l := range m.Layers {
		for _, w := range []cpu.Weight{l.Wq, l.Wk, l.Wv, l.Wo, l.Wgate, l.Wup, l.Wdown} {
			weightBytes += int64(len(w.Data))
		}
	}
	adapter := info.Adapter.Description
	if adapter == "" {
		adapter = info.Adapter.Architecture
	}
	tb := report.Testbed{Engine: "node-dawn", EngineVersion: "webgpu@0.6.2", Adapter: adapter, Fallback: info.Adapter.IsFallbackAdapter, OS: "linux"}
	bm := report.BenchModel{Name: strings.TrimSuffix(filepath.Base(path), ".gguf"), Bytes: modelInfo.Bytes}
	mk := func(c, measure string, s []float64) report.BenchResult {
		res := report.BenchResult{Testbed: tb, Model: bm, Backend: "webgpu", Case: c, Measure: measure, Unit: "tok/s", HigherIsBetter: true, Samples: s}
		res.Summarize()
		return res
	}
	d := mk(fmt.Sprintf("decode %d after %d", nDecode, nPrompt), "decode_tok_s", decode)
	du := mk(fmt.Sprintf("decode %d after %d, one step at a time", nDecode, nPrompt), "decode_unpipelined_tok_s", decodeUnpipelined)
	p := mk(fmt.Sprintf("prefill %d", nPrefill), "prefill_tok_s", prefill)
	pr := mk(fmt.Sprintf("prefill %d, row per invocation", nPrefill), "prefill_row_form_tok_s", prefillRow)
	perToken := 1 / d.Median
	results := []report.BenchResult{d, du, p, pr, mk(fmt.Sprintf("decode %d after %d, sampled (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05)", nDecode, nPrompt), "decode_sampled_tok_s", sampled),
		mk(fmt.Sprintf("decode %d after %d, RoPE in its own dispatch", nDecode, nPrompt), "decode_rope_apart_tok_s", ropeApart)}
	for _, l := range longCtx {
		results = append(results, mk(l.name, l.measure, l.samples))
	}
	for _, l := range batched {
		results = append(results, mk(l.name, l.measure, l.samples))
	}
	for _, l := range streams {
		res := mk(l.name, l.measure, l.samples)
		switch {
		case strings.HasSuffix(l.measure, "_ms"):
			res.Unit, res.HigherIsBetter = "ms", false
		case strings.HasSuffix(l.measure, "_max_batch"):
			res.Unit = "sequences"
		}
		results = append(results, res)
	}
	out := map[string]any{
		"results":               results,
		"dispatches_per_step":   dispatches,
		"weight_bytes":          weightBytes,
		"bandwidth_GBps":        float64(weightBytes) / perToken / 1e9,
		"upload_ms":             upload.Milliseconds(),
		"decode_step_split":     split,
		"gpu_us_per_op":         opTimes,
		"prefill_gpu_us_per_op": prefillOps,
		"batch_gpu_us_per_op":   batchOps,
		"gpu_us_per_step":       gpuStep,
		"gpu_bandwidth_GBps":    float64(weightBytes) / (gpuStep * 1e-6) / 1e9,
		"features":              info.Features,
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return nil
}

// decodeRate runs r.Decode of n tokens after prompt three times from an
// empty cache and returns the tok/s of the last two (the first warms up),
// timed from the first token (the prompt's prefill left out).
func decodeRate(ctx context.Context, r *gpumodel.Runner, prompt []int32, n int, p sample.Params) ([]float64, error) {
	var out []float64
	for s := 0; s < 3; s++ {
		if err := r.Reset(len(prompt) + n + 1); err != nil {
			return nil, err
		}
		k := 0
		var start time.Time
		if err := pipelined(ctx, r, prompt, n+1, p, prompt, func(int32) bool {
			if k == 0 {
				start = time.Now()
			}
			k++
			return true
		}); err != nil {
			return nil, err
		}
		if s > 0 {
			out = append(out, float64(n)/time.Since(start).Seconds())
		}
	}
	return out, nil
}

// measured is one measure's samples.
type measured struct {
	name, measure string
	samples       []float64
}

// longContext measures greedy decode of 64 tokens after past positions,
// with attention split over the positions (the default) and whole, and
// split with f16 activations and cache where the device has shader-f16.
func longContext(ctx context.Context, dev *webgpu.Device, m *model.Model, batch, past int) ([]measured, error) {
	const n = 64
	ids := make([]int32, past)
	for i := range ids {
		ids[i] = int32((i*31 + 5) % m.Vocab)
	}
	var out []measured
	configs := []struct {
		name    string
		splitAt int
		half    bool
	}{{"split", 1024, false}, {"whole", 0, false}}
	if dev.Info().HasFeature("shader-f16") {
		configs = append(configs, struct {
			name    string
			splitAt int
			half    bool
		}{"split_f16", 1024, true})
	}
	for _, f := range configs {
		r, err := gpumodel.New(ctx, dev, m, past+n+8, batch, gpumodel.AttentionSplitAt(f.splitAt), gpumodel.HalfActivations(f.half))
		if err != nil {
			return nil, err
		}
		samples, err := decodeRate(ctx, r, ids, n, sample.Params{})
		r.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, measured{fmt.Sprintf("decode %d after %d, attention %s", n, past, f.name), "decode_long_" + f.name + "_tok_s", samples})
	}
	return out, nil
}

// batchedDecode measures StepBatch: B sequences decoding greedily in
// shared steps (one token of each per step, read back every step), as
// tokens per second over all of them, for B = 1, 4, 8.
func batchedDecode(ctx context.Context, dev *webgpu.Device, m *model.Model, prompt []int32) ([]measured, error) {
	const n = 32
	r, err := gpumodel.New(ctx, dev, m, len(prompt)+n+8, max(len(prompt), 8), gpumodel.Sequences(8))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []measured
	for _, B := range []int{1, 4, 8} {
		var samples []float64
		for s := 0; s < 3; s++ {
			seqs := make([]int, B)
			next := make([]int32, B)
			for i := range seqs {
				seqs[i] = i
				r.ResetSeq(i)
				if err := r.Prefill(ctx, i, prompt[:len(prompt)-1]); err != nil {
					return nil, err
				}
				next[i] = prompt[len(prompt)-1]
			}
			start := time.Now()
			for k := 0; k < n; k++ {
				if next, err = r.StepBatch(ctx, seqs, next); err != nil {
					return nil, err
				}
			}
			if s > 0 {
				samples = append(samples, float64(B*n)/time.Since(start).Seconds())
			}
		}
		out = append(out, measured{fmt.Sprintf("batched decode, %d sequences, a step reads back", B), fmt.Sprintf("decode_batch%d_tok_s", B), samples})
	}
	return out, nil
}

// concurrentStreams measures 1, 2, 4 and 8 concurrent streams through the
// batching scheduler on one runner of 8 sequences, as the page's engine
// and the server run them (each step queued before the last one's picks
// are read; prompts prefilled in chunks between the others' steps; the
// page's sampling, a seed each): the aggregate tok/s and the p50/p99
// inter-token latency, with the batch fixed at the number of streams and
// with the controller choosing it (its default target: twice the
// single-stream step). And the GPU time per kernel of a batched step of
// 1, 4 and 8 sequences.
func concurrentStreams(ctx context.Context, dev *webgpu.Device, m *model.Model) ([]measured, map[string]map[string]float64, error) {
	const slots, ctxLen = 8, 256
	tokens := 64
	if n, err := strconv.Atoi(os.Getenv("GPUBENCH_STREAM_TOKENS")); err == nil && n > 0 {
		tokens = n // fewer, for a look on a software adapter
	}
	opts := []gpumodel.Option{gpumodel.Sequences(slots)}
	// GPUBENCH_WGT_ROWS: the transposed few-tokens form from this many
	// rows (0: never), instead of the device's default.
	if n, err := strconv.Atoi(os.Getenv("GPUBENCH_WGT_ROWS")); err == nil {
		opts = append(opts, gpumodel.TransposedRows(n))
	}
	r, err := gpumodel.New(ctx, dev, m, ctxLen, 64, opts...)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	// GPUBENCH_STREAMS picks the stream counts, with the controller's runs
	// left out (a quick look).
	counts, controller := []int{1, 2, 4, 8}, []int{4, 8}
	if s := os.Getenv("GPUBENCH_STREAMS"); s != "" {
		counts, controller = nil, nil
		for _, f := range strings.Split(s, ",") {
			if n, err := strconv.Atoi(f); err == nil && n >= 1 && n <= slots {
				counts = append(counts, n)
			}
		}
	}
	var out []measured
	run := func(n, batch int, target time.Duration, name string) error {
		var agg, p50, p99, most []float64
		for s := 0; s < 3; s++ {
			sctx, cancel := context.WithCancel(ctx)
			sch := scheduler.New(m, r, scheduler.Config{Slots: batch, Ctx: ctxLen, Target: target})
			go sch.Run(sctx)
			r.Timings() // from here
			res, err := loadgen.Streams(sctx, sch, n, tokens, ctxLen, loadgen.Prompt)
			cancel()
			if err != nil {
				return err
			}
			// Where the host's time went: a step's preparation and
			// submission, and the time it waited for picks.
			tm := r.Timings()
			per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(max(tm.Steps, 1)) }
			fmt.Fprintf(os.Stderr, "gpubench: %d streams (%s): %.1f tok/s, p99 %.1f ms, batch up to %d; %d steps (prefills too): prepare %.0f µs, submit %.0f µs, wait %.0f µs a step\n",
				n, name, res.TokS, res.P99, res.MaxBatch, tm.Steps, per(tm.Prepare), per(tm.Submit), per(tm.Wait))
			if s > 0 { // the first run warms up
				agg, p50, p99, most = append(agg, res.TokS), append(p50, res.P50), append(p99, res.P99), append(most, float64(res.MaxBatch))
			}
		}
		c := fmt.Sprintf("%d concurrent streams, %s", n, name)
		key := fmt.Sprintf("streams%d", n)
		if name != "fixed batch" {
			key += "_controller"
		}
		out = append(out, measured{c, key + "_decode_tok_s", agg}, measured{c, key + "_itl_p50_ms", p50},
			measured{c, key + "_itl_p99_ms", p99}, measured{c, key + "_max_batch", most})
		return nil
	}
	for _, n := range counts {
		if err := run(n, n, time.Hour, "fixed batch"); err != nil {
			return nil, nil, err
		}
	}
	for _, n := range controller {
		if err := run(n, slots, 0, "the controller's batch"); err != nil {
			return nil, nil, err
		}
	}
	ops := map[string]map[string]float64{}
	ids := m.Tokenizer.Encode(loadgen.Prompt, true, false)
	for _, B := range []int{1, 4, 8} {
		seqs := make([]int, B)
		toks := make([]int32, B)
		for i := range seqs {
			seqs[i] = i
			r.ResetSeq(i)
			if err := r.Prefill(ctx, i, ids[:len(ids)-1]); err != nil {
				return nil, nil, err
			}
			toks[i] = ids[len(ids)-1]
		}
		prof, err := r.ProfileBatch(ctx, seqs, toks)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gpubench: no GPU times of a batched step:", err)
			break
		}
		for name, o := range prof {
			ops[fmt.Sprintf("batch%d %s", B, name)] = map[string]float64{"us": float64(o.GPU.Nanoseconds()) / 1000, "dispatches": float64(o.Count)}
		}
	}
	return out, ops, nil
}

// pipelined sets sequence 0's sampling (p, recent) and runs the engine's
// pipelined loop on r: tokens, then up to n picks handed to yield.
func pipelined(ctx context.Context, r *gpumodel.Runner, tokens []int32, n int, p sample.Params, recent []int32, yield func(int32) bool) error {
	if err := r.SetSampling(ctx, 0, p, recent); err != nil {
		return err
	}
	return engine.Pipeline(ctx, r, tokens, n, yield)
}
