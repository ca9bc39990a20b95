package bench

import (
	"context"
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
	m, _, closeFn, err := source.Load(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	slots := streamCounts[len(streamCounts)-1]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sched := scheduler.New(m, engine.CPUBatch(m, slots, 512), scheduler.Config{Slots: slots, Ctx: 512, Target: time.Hour})
	go sched.Run(ctx)
	root, err := os.MkdirTemp("", "webinfer-bench-serve")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("<!doctype html>"), 0o644); err != nil {
		return nil, err
	}
	srv, err := server.New(server.Config{Root: root, Engine: sched, ModelName: bm.Name, Store: server.NewMemoryStore()})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	url := "ws://" + ln.Addr().String() + "/v1/stream"

	tb := testbed("native", runtime.Version(), threads)
	return perStreamCount(tb, bm, samples, "webinfer serve, %d concurrent /v1/stream sockets", "serve_ws%d_tok_s", "serve_ws%d",
		func(n int) (loadgen.Result, error) { return loadgen.Sockets(ctx, url, n, tokens, Prompt) })
}
