package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/webinfer/webinfer/internal/server"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/scheduler"
	"github.com/webinfer/webinfer/wasm/source"
)

// serve runs `webinfer serve` until ctx ends.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultAddr(), "address to listen on (PORT sets the port of the default)")
	root := fs.String("root", ".", "directory holding index.html, dist/, shim/ and assets/")
	modelSrc := fs.String("model", "", "GGUF model the /v1 endpoints generate with: a path or an http(s) URL (default: the page's default model under --root, when present)")
	upstream := fs.String("upstream", "", "relay generation to this OpenAI-compatible endpoint (llama.cpp's server, vLLM, Ollama, another webinfer serve) instead of a local model")
	slots := fs.Int("slots", 4, "requests generated together (batched) at most")
	ctxLen := fs.Int("ctx", 2048, "context positions per request")
	dbPath := fs.String("db", "", "where reports are kept: a SQLite file (default: .cache/webinfer.db under --root), a postgres:// URL, or :memory:")
	token := fs.String("report-token", os.Getenv("WEBINFER_REPORT_TOKEN"), "token that POST /api/reports must send (Authorization: Bearer …); required off loopback (default $WEBINFER_REPORT_TOKEN)")
	idle := fs.Duration("idle-timeout", server.DefaultLimits.IdleTimeout, "close a /v1/stream socket that has sent nothing and streamed nothing for this long")
	reqTimeout := fs.Duration("request-timeout", server.DefaultLimits.RequestTimeout, "end a request (code timeout) that has run this long")
	var origins stringList
	fs.Var(&origins, "origin", "host pattern of another origin whose pages may open /v1/stream (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !server.IsLoopback(*addr) && *token == "" {
		return fmt.Errorf("listening on %s, beyond loopback, needs --report-token (or WEBINFER_REPORT_TOKEN)", *addr)
	}
	cfg := server.Config{Root: *root, Origins: origins, ReportToken: *token,
		Limits: server.Limits{IdleTimeout: *idle, RequestTimeout: *reqTimeout}}
	switch {
	case *dbPath == ":memory:":
		cfg.Store = server.NewMemoryStore()
	case strings.HasPrefix(*dbPath, "postgres://"), strings.HasPrefix(*dbPath, "postgresql://"):
		db, err := server.OpenPostgres(*dbPath)
		if err != nil {
			return err
		}
		defer db.Close()
		cfg.Store = db
		fmt.Fprintln(stderr, "webinfer: reports in PostgreSQL")
	default:
		p := *dbPath
		if p == "" {
			p = filepath.Join(*root, ".cache", "webinfer.db")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
		}
		db, err := server.OpenSQLite(p)
		if err != nil {
			return err
		}
		defer db.Close()
		cfg.Store = db
		fmt.Fprintf(stderr, "webinfer: reports in %s\n", p)
	}
	src := *modelSrc
	if *upstream != "" {
		if src != "" {
			return fmt.Errorf("--model and --upstream: give one")
		}
		cfg.Engine, cfg.ModelName = &server.Upstream{URL: *upstream}, "upstream"
		fmt.Fprintf(stderr, "webinfer: relaying generation to %s\n", *upstream)
	} else if src == "" {
		if p := filepath.Join(*root, "assets", "models", "kjv-q8_0.gguf"); fileExists(p) {
			src = p
		}
	}
	if src != "" {
		m, info, closeModel, err := source.Load(ctx, src, nil)
		if err != nil {
			return err
		}
		defer closeModel()
		n := min(*ctxLen, m.CtxTrain)
		sched := scheduler.New(m, engine.CPUBatch(m, *slots, n), scheduler.Config{Slots: *slots, Ctx: n})
		go sched.Run(ctx)
		cfg.Engine, cfg.ModelName = sched, strings.TrimSuffix(info.Name, ".gguf")
		fmt.Fprintf(stderr, "webinfer: model %s (%.1f MB), %d requests at once, %d positions each\n", info.Name, float64(info.Bytes)/1e6, *slots, n)
	} else if *upstream == "" {
		fmt.Fprintln(stderr, "webinfer: no model: /v1 endpoints answer no-model (give --model or --upstream)")
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "webinfer: serving http://%s/\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func defaultAddr() string {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	return "127.0.0.1:" + port
}
