package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/webinfer/webinfer/internal/bench"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/synth"
)

// benchCmd runs `webinfer bench` (package internal/bench): our engines and
// their peers side by side, same models, prompt and threads.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("bench", stderr)
	engines := fl.String("engines", "native,streams,serve,soak,llama.cpp,webgpu,cpu-wasm,browser-streams,wllama", "what to measure: native (our CPU engine), streams (1, 2, 4 and 8 concurrent streams through the scheduler, natively, on the first model), serve (as many clients of webinfer serve, each on its own /v1/stream socket, on the first model), soak (32 such clients for 60 s, every answer checked against its solo run, on the first model) and the peer llama.cpp; in headless browsers (--browsers), on the first model only: webgpu and cpu-wasm (our page), browser-streams (1, 2, 4 and 8 concurrent streams through the JS API, on the CPU path) and the peer wllama")
	soakStreams := fl.Int("soak-streams", bench.Soak.Streams, "soak: sockets streaming at once")
	soakFor := fl.Duration("soak-duration", bench.Soak.Duration, "soak: how long the sockets keep asking")
	browserSamples := fl.Int("browser-samples", 3, "timed runs per measure of the in-browser engines")
	browsers := fl.String("browsers", "chromium,firefox", "where the in-browser engines run (webgpu in chromium only)")
	modelPath := fl.String("model", "", "GGUF model (default: synthetic SmolLM2-135M-shaped models, see --types)")
	types := fl.String("types", "Q8_0,Q4_0", "with no --model: tensor types of the synthetic models")
	preset := fl.String("preset", "smol135", "with no --model: synthetic model shape")
	samples := fl.Int("samples", 5, "timed runs per measure (after one warm-up)")
	n := fl.Int("tokens", 32, "tokens to generate per run")
	threads := fl.Int("threads", 2, "CPU threads for every engine")
	asJSON := fl.Bool("json", true, "print the JSON of CONTRACTS.md section 6")
	if err := fl.Parse(args); err != nil {
		return err
	}
	runtime.GOMAXPROCS(*threads)
	var models []string
	if *modelPath != "" {
		models = []string{*modelPath}
	} else {
		for _, t := range strings.Split(*types, ",") {
			typ, ok := gguf.TypeByName(strings.TrimSpace(t))
			if !ok {
				return fmt.Errorf("--types: unknown tensor type %q", t)
			}
			fmt.Fprintf(stderr, "webinfer: bench: preparing %s %s\n", *preset, typ)
			p, err := synth.Cached(*preset, typ, 1)
			if err != nil {
				return err
			}
			models = append(models, p)
		}
	}
	if *soakStreams < 1 || *soakFor <= 0 {
		return fmt.Errorf("--soak-streams and --soak-duration: want at least one stream and a positive duration")
	}
	bench.Soak.Streams, bench.Soak.Duration = *soakStreams, *soakFor
	want := map[string]bool{}
	for _, e := range strings.Split(*engines, ",") {
		want[strings.TrimSpace(e)] = true
	}
	var bs []string
	for _, b := range strings.Split(*browsers, ",") {
		switch b = strings.TrimSpace(b); b {
		case "chromium", "firefox":
			bs = append(bs, b)
		case "":
		default:
			return fmt.Errorf("--browsers: %q: want chromium or firefox", b)
		}
	}
	out, err := bench.Run(ctx, bench.Config{Engines: want, Models: models, Samples: *samples, BrowserSamples: *browserSamples, Browsers: bs,
		Tokens: *n, Threads: *threads, Log: stderr})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for _, r := range append(out.Results, out.Peers...) {
		fmt.Fprintf(stdout, "%-10s %-22s %-14s %8.1f %s [%.1f, %.1f]\n", r.Testbed.Engine, r.Model.Name, r.Measure, r.Median, r.Unit, r.CI95[0], r.CI95[1])
	}
	return nil
}
