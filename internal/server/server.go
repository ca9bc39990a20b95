// Package server is `webinfer serve`: it serves the page with the headers
// WebGPU and WASM threads need, streams generation from a native engine
// (OpenAI-compatible HTTP with server-sent events, and the WebSocket
// protocol of /v1/stream), stores run reports, and answers health and
// metrics probes (CONTRACTS.md section 5).
//
// In: a directory holding index.html, dist/, shim/ and assets/, a Store,
// and a Generator (wasm/scheduler's Scheduler). Out: an http.Handler.
package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Config configures a Server.
type Config struct {
	// Root is the directory served as the page: index.html and the folders
	// in PublicDirs below it. Nothing else under Root is served.
	Root string
	// Store keeps reports; nil means a fresh MemoryStore.
	Store Store
	// Logf logs requests that fail; nil means log.Printf.
	Logf func(format string, args ...any)
	// Engine generates for /v1/*; nil: those endpoints answer no-model.
	Engine Generator
	// ModelName is the model's name in /v1/models and the completions.
	ModelName string
	// Limits bound each client's requests; zero fields take DefaultLimits'.
	Limits Limits
	// Origins are the host patterns of pages on other origins that may
	// open /v1/stream (websocket.AcceptOptions.OriginPatterns); the
	// server's own origin always may. The same patterns get CORS on /v1
	// and /api.
	Origins []string
	// ReportToken, when set, must come as "Authorization: Bearer <token>"
	// with every POST /api/reports (serve requires one off loopback).
	ReportToken string
}

// apiMethods are the methods of each /v1 and /api endpoint; another method
// gets a JSON 405.
var apiMethods = map[string]string{
	"/v1/models": "GET", "/v1/chat/completions": "POST", "/v1/completions": "POST", "/v1/stream": "GET",
	"/api/reports": "GET, POST", "/api/compat": "GET",
}

// PublicDirs are the folders under Root that the page needs.
var PublicDirs = []string{"dist", "shim", "assets"}

// maxReportBytes bounds a POSTed report; a page report is a few KiB.
const maxReportBytes = 4 << 20

// Server is the HTTP side of webinfer.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	started time.Time
	metrics *metrics
	streams registry   // the requests of /v1/stream, by id
	gz      compressor // compressed static files
	clients clients    // generations running over HTTP, by client
	base    context.Context
	stop    context.CancelFunc
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		cfg.Store = NewMemoryStore()
	}
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	if _, err := os.Stat(filepath.Join(cfg.Root, "index.html")); err != nil {
		return nil, fmt.Errorf("server: page root %q has no index.html", cfg.Root)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	s := &Server{cfg: cfg, mux: http.NewServeMux(), started: time.Now(), streams: registry{reqs: map[string]*live{}}}
	s.base, s.stop = context.WithCancel(context.Background())
	s.metrics = newMetrics(s)
	if s.cfg.Engine != nil {
		s.cfg.Engine = meteredGenerator{g: s.cfg.Engine, m: s.metrics}
	}
	s.mux.HandleFunc("GET /v1/models", s.models)
	s.mux.HandleFunc("POST /v1/chat/completions", s.chatCompletions)
	s.mux.HandleFunc("POST /v1/completions", s.completions)
	s.mux.HandleFunc("GET /v1/stream", s.stream)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.Handle("GET /metrics", s.metrics.handler())
	s.mux.HandleFunc("POST /api/reports", s.postReport)
	s.mux.HandleFunc("GET /api/reports", s.listReports)
	s.mux.HandleFunc("GET /api/compat", s.compat)
	s.mux.HandleFunc("/", s.static)
	return s, nil
}

// Close ends the requests of /v1/stream still running.
func (s *Server) Close() { s.stop() }

// ServeHTTP sets the cross-origin isolation headers on every answer: WebGPU
// needs a secure context (localhost is one) and WASM threads need
// SharedArrayBuffer, which browsers give only to isolated pages.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.metrics.requests.Inc()
	h := w.Header()
	SetIsolation(h)
	h.Set("X-Content-Type-Options", "nosniff")
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.route(rec, r)
	if rec.status >= 400 {
		s.metrics.failures.Inc()
	}
}

// route answers r: the CORS side and a wrong method of the /v1 and /api
// endpoints here, the rest through the mux.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if p := path.Clean("/" + r.URL.Path); strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/api/") {
		if s.cors(w, r) {
			return
		}
		if allow, ok := apiMethods[p]; ok && !slices.Contains(strings.Split(allow, ", "), r.Method) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method-not-allowed", r.Method+" is not allowed on "+p+" (use "+allow+")")
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// SetIsolation sets the cross-origin isolation headers on h (see
// ServeHTTP).
func SetIsolation(h http.Header) {
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Embedder-Policy", "require-corp")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// Isolate serves h's answers with the isolation headers, and .wasm files
// as application/wasm (which WebAssembly.instantiateStreaming requires):
// for the other servers that load the page's pieces (the bench's, the
// browser tests').
func Isolate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetIsolation(w.Header())
		if strings.HasSuffix(r.URL.Path, ".wasm") {
			w.Header().Set("Content-Type", "application/wasm")
		}
		h.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush lets server-sent events through as they are written.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection to the WebSocket of /v1/stream.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("server: the connection cannot be hijacked")
	}
	r.status = http.StatusSwitchingProtocols
	return h.Hijack()
}

// Unwrap is for http.ResponseController.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	p := path.Clean("/" + r.URL.Path)
	if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/v1/") {
		writeError(w, http.StatusNotFound, "not-found", "no such endpoint: "+r.Method+" "+p)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "method-not-allowed", r.Method+" is not allowed on "+p)
		return
	}
	if p == "/" || p == "/index.html" {
		w.Header().Set("Cache-Control", "no-cache")
		file := filepath.Join(s.cfg.Root, "index.html")
		st, err := os.Stat(file)
		if err != nil {
			writeError(w, http.StatusNotFound, "not-found", "not found: "+p)
			return
		}
		s.serveFile(w, r, file, st)
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2)
	public := false
	for _, d := range PublicDirs {
		public = public || parts[0] == d
	}
	if !public || len(parts) < 2 {
		writeError(w, http.StatusNotFound, "not-found", "not found: "+p)
		return
	}
	file := filepath.Join(s.cfg.Root, filepath.FromSlash(strings.TrimPrefix(p, "/")))
	st, err := os.Stat(file)
	if err != nil || st.IsDir() {
		writeError(w, http.StatusNotFound, "not-found", "not found: "+p)
		return
	}
	switch path.Ext(p) {
	case ".wasm":
		w.Header().Set("Content-Type", "application/wasm")
	case ".js", ".mjs":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".gguf":
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	// Revalidate every time: builds change these files in place.
	w.Header().Set("Cache-Control", "no-cache")
	s.serveFile(w, r, file, st)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "uptime_s": time.Since(s.started).Seconds()})
}

func (s *Server) postReport(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		writeError(w, http.StatusUnauthorized, "unauthorized", "writing reports needs Authorization: Bearer <the server's report token>")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReportBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("report larger than %d bytes", maxReportBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "bad-request", "reading body: "+err.Error())
		return
	}
	rec, err := ParseReport(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad-report", err.Error())
		return
	}
	rec.Received = time.Now().UTC()
	id, err := s.cfg.Store.Add(r.Context(), rec)
	if err != nil {
		s.cfg.Logf("webinfer: storing report: %v", err)
		writeError(w, http.StatusServiceUnavailable, "store", err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": id})
}

func (s *Server) listReports(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{Engine: q.Get("engine"), Measure: q.Get("measure")}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad-request", "since: want an RFC 3339 time, got "+v)
			return
		}
		f.Since = t
	}
	recs, err := s.cfg.Store.List(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "store", err.Error())
		return
	}
	out := make([]json.RawMessage, 0, len(recs))
	for _, rec := range recs {
		out = append(out, rec.JSON())
	}
	writeJSON(w, http.StatusOK, map[string]any{"reports": out})
}

func (s *Server) compat(w http.ResponseWriter, r *http.Request) {
	recs, err := s.cfg.Store.List(r.Context(), Filter{})
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "store", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, BuildCompat(recs))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with the contract's error body {"error":{code,message}}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}
