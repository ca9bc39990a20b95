package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/webinfer/webinfer/internal/loadgen"
	"github.com/webinfer/webinfer/internal/server"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/scheduler"
	"github.com/webinfer/webinfer/wasm/source"
)

// benchServe measures `webinfer serve` from the outside: the server runs
// in this process on a loopback port (the scheduler on the CPU batch,
// with as many slots as the most streams measured), and 1, 2, 4 and 8
// clients each stream on their own /v1/stream socket at once. Per count:
// the aggregate tok/s the clients receive and the p50 and p99 gaps
// between their token frames, JSON, WebSocket and scheduler included.
func benchServe(ctx context.Context, path string, bm report.BenchModel, samples, tokens, threads int) ([]report.BenchResult, error) {
	url, stop, err := serveLoopback(ctx, path, bm.Name, streamCounts[len(streamCounts)-1])
	if err != nil {
		return nil, err
	}
	defer stop()
	tb := testbed("native", runtime.Version(), threads)
	return perStreamCount(tb, bm, samples, "webinfer serve, %d concurrent /v1/stream sockets", "serve_ws%d_tok_s", "serve_ws%d",
		func(n int) (loadgen.Result, error) { return loadgen.Sockets(ctx, url, n, tokens, Prompt) })
}

// Soak is the load of the soak engine: sockets streaming at once, and for
// how long.
var Soak = struct {
	Streams  int
	Duration time.Duration
}{32, time.Minute}

// benchSoak loads `webinfer serve` (in this process, on loopback, one
// scheduler slot a stream) with Soak.Streams sockets for Soak.Duration,
// each asking for its request again and again (loadgen.Soak), and checks
// every answer against the request's solo run: the aggregate tok/s, the
// p50 and p99 gaps between token frames, and the requests whose tokens
// differed (an error if any did: load must change no stream's tokens).
func benchSoak(ctx context.Context, path string, bm report.BenchModel, tokens, threads int, log io.Writer) ([]report.BenchResult, error) {
	url, stop, err := serveLoopback(ctx, path, bm.Name, Soak.Streams)
	if err != nil {
		return nil, err
	}
	defer stop()
	r, err := loadgen.Soak(ctx, loadgen.SoakConfig{URL: url, Streams: Soak.Streams, Duration: Soak.Duration, Tokens: tokens, Prompt: Prompt})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "webinfer: bench: soak: %d streams, %.0f s: %d requests, %d tokens, %.1f tok/s, p99 %.1f ms, %d differing from their solo run\n",
		r.Streams, r.Seconds, r.Requests, r.Tokens, r.TokS, r.P99, r.Mismatches)
	if r.Mismatches > 0 {
		return nil, fmt.Errorf("bench: soak: %d of %d requests differ from their solo run; the first: %s", r.Mismatches, r.Requests, r.FirstMismatch)
	}
	tb := testbed("native", runtime.Version(), threads)
	c := fmt.Sprintf("webinfer serve soak, %d /v1/stream sockets for %v, every answer equal to its solo run (%d requests)", r.Streams, Soak.Duration, r.Requests)
	mk := func(measure, unit string, higher bool, v float64) report.BenchResult {
		res := report.BenchResult{Testbed: tb, Model: bm, Backend: "cpu", Case: c, Measure: measure, Unit: unit, HigherIsBetter: higher, Samples: []float64{v}}
		res.Summarize()
		return res
	}
	p := fmt.Sprintf("soak_ws%d", r.Streams)
	return []report.BenchResult{mk(p+"_tok_s", "tok/s", true, r.TokS), mk(p+"_itl_p50_ms", "ms", false, r.P50), mk(p+"_itl_p99_ms", "ms", false, r.P99)}, nil
}

// serveLoopback starts `webinfer serve`'s handler on a loopback port in
// this process, on the model at path through a scheduler of slots slots
// on the CPU batch; it returns the /v1/stream URL and a stop function.
func serveLoopback(ctx context.Context, path, name string, slots int) (string, func(), error) {
	m, _, closeModel, err := source.Load(ctx, path, nil)
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	sched := scheduler.New(m, engine.CPUBatch(m, slots, 512), scheduler.Config{Slots: slots, Ctx: 512, Target: time.Hour})
	go sched.Run(ctx)
	var undo []func()
	stop := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	undo = append(undo, closeModel, cancel)
	root, err := os.MkdirTemp("", "webinfer-bench-serve")
	if err != nil {
		stop()
		return "", nil, err
	}
	undo = append(undo, func() { os.RemoveAll(root) })
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("<!doctype html>"), 0o644); err != nil {
		stop()
		return "", nil, err
	}
	// Limits as the bench needs: every stream on its own socket, the
	// server's defaults otherwise.
	srv, err := server.New(server.Config{Root: root, Engine: sched, ModelName: name, Store: server.NewMemoryStore()})
	if err != nil {
		stop()
		return "", nil, err
	}
	undo = append(undo, srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stop()
		return "", nil, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	undo = append(undo, func() { hs.Close() })
	return "ws://" + ln.Addr().String() + "/v1/stream", stop, nil
}
