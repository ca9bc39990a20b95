//go:build js && wasm

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"sync"
	"time"

	"github.com/vugu/vugu"
	"github.com/webinfer/webinfer/ui"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/gpumodel"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/webgpu"
)

// generator runs the model core (compiled to WASM: the CPU path) in the
// page and streams tokens into the playground.
type generator struct {
	m          *model.Model
	st         *ui.State
	ee         vugu.EventEnv
	loadMillis float64
	backend    engine.Backend // nil: the CPU path
	mu         sync.Mutex
	cancel     context.CancelFunc
}

// useWebGPU moves generation to the GPU (package gpumodel), with f16
// activations and KV cache when half.
func (g *generator) useWebGPU(ctx context.Context, dev *webgpu.Device, half bool) error {
	if err := gpumodel.Supported(g.m); err != nil {
		return err
	}
	n := engine.ContextSize(g.m, 0)
	r, err := gpumodel.New(ctx, dev, g.m, n, 64, gpumodel.HalfActivations(half))
	if err != nil {
		return err
	}
	g.backend = r
	g.ee.Lock()
	g.st.ModelBackend = "WebGPU"
	g.ee.UnlockRender()
	return nil
}

// probe times greedy decode steps of one short prompt on a backend (nil:
// the CPU path), after one warm-up step, and returns milliseconds per
// token.
func (g *generator) probe(ctx context.Context, be engine.Backend) (float64, error) {
	if be == nil {
		be = engine.CPUBackend(g.m)
	}
	if err := be.Reset(64); err != nil {
		return 0, err
	}
	ids := g.m.Tokenizer.Encode("And", true, false)
	logits, err := be.Forward(ctx, ids)
	if err != nil {
		return 0, err
	}
	greedy := sample.New(sample.Params{})
	next := func() int32 { return greedy.Sample(logits) }
	if logits, err = be.Forward(ctx, []int32{next()}); err != nil { // warm-up
		return 0, err
	}
	const steps = 4
	start := time.Now()
	for i := 0; i < steps; i++ {
		if logits, err = be.Forward(ctx, []int32{next()}); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Microseconds()) / 1000 / steps, nil
}

// chooseByMeasuring keeps the WebGPU backend only if it decodes faster
// than the CPU path here: on a software adapter (SwiftShader, lavapipe) the
// CPU path usually wins. It returns the measurements for the report.
func (g *generator) chooseByMeasuring(ctx context.Context) (*report.Probe, error) {
	if g.backend == nil {
		return nil, nil
	}
	gpuMs, err := g.probe(ctx, g.backend)
	if err != nil {
		return nil, err
	}
	cpuMs, err := g.probe(ctx, nil)
	if err != nil {
		return nil, err
	}
	p := &report.Probe{WebGPUMillisPerToken: gpuMs, CPUMillisPerToken: cpuMs, Chosen: "webgpu"}
	if cpuMs < gpuMs {
		p.Chosen = "cpu"
		g.backend = nil
		g.ee.Lock()
		g.st.ModelBackend = ""
		g.ee.UnlockRender()
	}
	return p, nil
}

func (g *generator) backendName() string {
	if g.backend != nil {
		return "webgpu"
	}
	return "cpu"
}

// loadGenerator fetches a GGUF model and loads it.
func loadGenerator(ctx context.Context, url string, st *ui.State, ee vugu.EventEnv) (*generator, error) {
	t0 := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	f, err := gguf.ReadAt(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	m, err := model.LoadFromMemory(f, data)
	if err != nil {
		return nil, err
	}
	g := &generator{m: m, st: st, ee: ee, loadMillis: float64(time.Since(t0).Microseconds()) / 1000}
	ee.Lock()
	st.Model, st.ModelBytes = path.Base(url), int64(len(data))
	st.OnGenerate = func(prompt string) {
		if _, err := g.generate(context.Background(), prompt, 128, 0.8, uint64(time.Now().UnixNano())); err != nil {
			g.ee.Lock()
			st.Errors = append(st.Errors, "generate: "+err.Error())
			g.ee.UnlockRender()
		}
	}
	st.OnStop = g.stop
	ee.UnlockRender()
	return g, nil
}

type generation struct {
	tokens []int
	text   string
	res    engine.Result
	itl    report.ITL
}

// kernelTimes times one more decode step on the GPU, kernel by kernel
// (timestamp queries), after a generation of tokens, and undoes it; nil
// without WebGPU, without timestamp-query, or without tokens.
func (g *generator) kernelTimes(ctx context.Context, tokens []int) (map[string]report.KernelTime, error) {
	r, ok := g.backend.(*gpumodel.Runner)
	if !ok || len(tokens) == 0 {
		return nil, nil
	}
	ops, err := r.ProfileDecode(ctx, int32(tokens[len(tokens)-1]))
	var full model.ContextFullError
	if errors.Is(err, webgpu.ErrUnsupported) || errors.As(err, &full) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]report.KernelTime{}
	for name, o := range ops {
		out[name] = report.KernelTime{Micros: float64(o.GPU.Nanoseconds()) / 1000, Dispatches: o.Count}
	}
	return out, nil
}

// generate streams a generation into the playground and returns it.
func (g *generator) generate(ctx context.Context, prompt string, maxTokens int, temp float32, seed uint64) (generation, error) {
	ctx, cancel := context.WithCancel(ctx)
	g.mu.Lock()
	g.cancel = cancel
	g.mu.Unlock()
	defer cancel()
	update := func(f func()) { g.ee.Lock(); f(); g.ee.UnlockRender() }
	update(func() {
		g.st.Generating, g.st.Output, g.st.TokS, g.st.TTFTMillis = true, prompt, 0, 0
		g.st.Status = "generating"
	})
	var out generation
	var text bytes.Buffer
	text.WriteString(prompt)
	var stamps []time.Time
	start := time.Now()
	req := engine.Request{Prompt: prompt, MaxTokens: maxTokens, Backend: g.backend,
		Sample: sample.Defaults.WithSeed(seed)}
	req.Sample.Temperature = temp
	res, err := engine.Generate(ctx, g.m, req, func(t engine.Token) error {
		now := time.Now()
		stamps = append(stamps, now)
		if t.ID >= 0 {
			out.tokens = append(out.tokens, int(t.ID))
		}
		out.text += t.Text
		text.WriteString(t.Text)
		s := text.String()
		n := len(stamps)
		update(func() {
			g.st.Output = s
			if n == 1 {
				g.st.TTFTMillis = float64(now.Sub(start).Microseconds()) / 1000
			} else {
				g.st.TokS = float64(n-1) / now.Sub(stamps[0]).Seconds()
			}
		})
		// Give the browser a turn to paint: without a timer, a busy Go
		// program never returns to the JS event loop.
		time.Sleep(time.Millisecond)
		return nil
	})
	out.res = res
	out.itl = percentiles(stamps)
	update(func() {
		g.st.Generating = false
		g.st.TokS = res.DecodeTokS
		g.st.Status = fmt.Sprintf("done: %d tokens (%s)", res.Tokens, res.Reason)
		if err != nil {
			g.st.Status = "stopped: " + err.Error()
		}
	})
	if err == context.Canceled {
		err = nil
	}
	return out, err
}

func (g *generator) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cancel != nil {
		g.cancel()
	}
}

// percentiles of the gaps between consecutive tokens, in milliseconds.
func percentiles(stamps []time.Time) report.ITL {
	if len(stamps) < 2 {
		return report.ITL{}
	}
	var gaps []float64
	for i := 1; i < len(stamps); i++ {
		gaps = append(gaps, float64(stamps[i].Sub(stamps[i-1]).Microseconds())/1000)
	}
	sort.Float64s(gaps)
	at := func(p float64) float64 { return gaps[min(len(gaps)-1, int(p*float64(len(gaps))))] }
	return report.ITL{P50: at(0.5), P90: at(0.9), P99: at(0.99)}
}
