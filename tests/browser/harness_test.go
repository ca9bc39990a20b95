//go:build browser

package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/internal/headless"
	"github.com/webinfer/webinfer/internal/server"
	gen "github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/scheduler"
	"github.com/webinfer/webinfer/wasm/synth"
)

// launchTimeout bounds one browser run; runs are retried once, since a
// browser on a loaded 2-core machine can stall at start for reasons that are
// not ours. The longest run is the js/wasm model tests on a software
// WebGPU adapter (about two minutes here; gotest.js gives them 330 s).
const launchTimeout = 360 * time.Second

// repoRoot is the checkout's top folder (this file is tests/browser/x.go).
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "dist", "app.wasm")); err != nil {
		t.Fatalf("dist/app.wasm is missing: run `make build` first")
	}
	return root
}

// testServer is the real webinfer server plus two test-only routes:
// /test/result receives what a page or Go test binary POSTs, /test/files
// serves the test page and compiled test binaries (with the same
// cross-origin isolation headers the server sets).
type testServer struct {
	*httptest.Server
	store   *server.MemoryStore
	results chan []byte
	mu      sync.Mutex
	cut     map[string][]string      // /test/cut/ requests by path: their Range headers
	held    map[string]chan struct{} // /test/slow/ downloads by path: closed to send the tail
	dropped int                      // /test/garbage/ downloads the client broke off
}

// droppedDownloads is how many /test/garbage/ downloads the client broke off.
func (ts *testServer) droppedDownloads() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.dropped
}

// hold is the channel that releases path's tail.
func (ts *testServer) hold(path string) chan struct{} {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.held[path] == nil {
		ts.held[path] = make(chan struct{})
	}
	return ts.held[path]
}

// cutRequests are the Range headers of path's requests so far.
func (ts *testServer) cutRequests(path string) []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.cut[path]...)
}

func startServer(t testing.TB) *testServer {
	root := repoRoot(t)
	store := server.NewMemoryStore()
	// The default model on the native engine behind /v1 (the JS API's
	// remote backend streams from it).
	f, fh, err := gguf.Open(filepath.Join(root, "assets", "models", "kjv-q8_0.gguf"))
	require.NoError(t, err)
	t.Cleanup(func() { fh.Close() })
	m, err := model.Load(f, fh)
	require.NoError(t, err)
	sched := scheduler.New(m, gen.CPUBatch(m, 4, 512), scheduler.Config{Slots: 4, Ctx: 512})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sched.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	srv, err := server.New(server.Config{Root: root, Store: store, Logf: t.Logf, Engine: sched, ModelName: "kjv-q8_0"})
	require.NoError(t, err)
	ts := &testServer{store: store, results: make(chan []byte, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /test/result", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
		ts.results <- body
	})
	files := http.StripPrefix("/test/files/", http.FileServer(http.Dir(filepath.Join(root, "tests", "browser", "static"))))
	bins := http.StripPrefix("/test/bin/", http.FileServer(http.Dir(testBinDir(root))))
	isolate := func(h http.Handler) http.Handler {
		h = server.Isolate(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			h.ServeHTTP(w, r)
		})
	}
	// Synthetic models for the js/wasm tests of wasm/gpumodel.
	for _, typ := range []gguf.Type{gguf.TypeQ4_0, gguf.TypeF32, gguf.TypeF16, gguf.TypeQ4_K, gguf.TypeQ6_K} {
		_, err := synth.Cached("tiny", typ, 1)
		require.NoError(t, err)
	}
	_, err = synth.Cached("qwen2", gguf.TypeQ4_K, 1)
	require.NoError(t, err)
	models := http.StripPrefix("/test/models/", http.FileServer(http.Dir(filepath.Join(root, ".cache", "models"))))
	mux.Handle("/test/models/", isolate(models))
	// The app embedding the package (tests/embed), with dist/webinfer
	// copied in as ./webinfer/ the way an app would; a broken model.
	embed := http.StripPrefix("/test/embed/", http.FileServer(http.Dir(filepath.Join(root, "tests", "embed"))))
	pkg := http.StripPrefix("/test/embed/webinfer/", http.FileServer(http.Dir(filepath.Join(root, "dist", "webinfer"))))
	mux.Handle("/test/embed/", isolate(embed))
	mux.Handle("/test/embed/webinfer/", isolate(pkg))
	kjv, err := os.ReadFile(filepath.Join(root, "assets", "models", "kjv-q8_0.gguf"))
	require.NoError(t, err)
	mux.HandleFunc("/test/broken.gguf", func(w http.ResponseWriter, r *http.Request) {
		w.Write(kjv[:len(kjv)/3]) // the header whole, the tensors cut
	})
	// The default model under any name, with Range requests and an ETag;
	// each name's first whole-file answer breaks off at a third of the file.
	ts.cut, ts.held = map[string][]string{}, map[string]chan struct{}{}
	mux.HandleFunc("/test/cut/", func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		first := len(ts.cut[r.URL.Path]) == 0
		ts.cut[r.URL.Path] = append(ts.cut[r.URL.Path], r.Header.Get("Range"))
		ts.mu.Unlock()
		w.Header().Set("ETag", `"kjv-q8_0"`)
		w.Header().Set("Cache-Control", "no-store")
		if first && r.Header.Get("Range") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(kjv)))
			w.Write(kjv[:len(kjv)/3])
			w.(http.Flusher).Flush()
			// Time for the bytes to reach the page before the connection
			// drops mid-file (a browser may drop what it holds on a reset;
			// then the download starts over, which the test accepts).
			time.Sleep(300 * time.Millisecond)
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "model.gguf", time.Time{}, bytes.NewReader(kjv))
	})
	// /test/slow/ serves the default model but holds its last 64 KiB back
	// until /test/release?path=P (or 20 s): an engine that loads while it
	// downloads shows its compile or upload phase before the download ends.
	mux.HandleFunc("/test/slow/", func(w http.ResponseWriter, r *http.Request) {
		hold := ts.hold(r.URL.Path)
		w.Header().Set("Content-Length", strconv.Itoa(len(kjv)))
		w.Header().Set("Cache-Control", "no-store")
		tail := len(kjv) - 64<<10
		w.Write(kjv[:tail])
		w.(http.Flusher).Flush()
		select {
		case <-hold:
		case <-time.After(20 * time.Second):
		case <-r.Context().Done():
			return
		}
		w.Write(kjv[tail:])
	})
	// /test/garbage/ is no GGUF file: its first 256 KiB of 4 MiB, then
	// nothing for 20 s. An engine that loads while it downloads fails at
	// the header, and its side breaks the download off (counted).
	mux.HandleFunc("/test/garbage/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(4<<20))
		w.Header().Set("Cache-Control", "no-store")
		w.Write(bytes.Repeat([]byte("no model here. "), (256<<10)/15))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			ts.mu.Lock()
			ts.dropped++
			ts.mu.Unlock()
		case <-time.After(20 * time.Second):
		}
	})
	mux.HandleFunc("/test/release", func(w http.ResponseWriter, r *http.Request) {
		hold := ts.hold(r.URL.Query().Get("path"))
		ts.mu.Lock()
		select {
		case <-hold:
		default:
			close(hold)
		}
		ts.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/test/files/", isolate(files))
	mux.Handle("/test/bin/", isolate(bins))
	mux.Handle("/", srv)
	// 127.0.0.1 is a secure context, which WebGPU requires.
	ts.Server = httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func testBinDir(root string) string { return filepath.Join(root, "dist", "test") }

// engine is one browser engine that the driverless harness can launch.
type engine struct {
	name   string
	webgpu bool // does WebGPU work in it here (shared/BROWSERS.md)
	start  func(t testing.TB, url string) *exec.Cmd
}

var engines = []engine{
	{name: "chromium", webgpu: true, start: startChromium},
	{name: "firefox", webgpu: true, start: startFirefox},
	{name: "webkit", webgpu: false, start: startWebKit},
}

func startChromium(t testing.TB, url string) *exec.Cmd {
	return headless.Chromium(t.TempDir(), url)
}

func startFirefox(t testing.TB, url string) *exec.Cmd {
	cmd, err := headless.Firefox(t.TempDir(), url)
	require.NoError(t, err)
	return cmd
}

const miniBrowser = "/usr/lib/x86_64-linux-gnu/webkitgtk-6.0/MiniBrowser"

func startWebKit(t testing.TB, url string) *exec.Cmd {
	cmd := exec.Command("xvfb-run", "-a", miniBrowser, url)
	// SharedArrayBuffer (WASM threads) only with this switch.
	cmd.Env = append(os.Environ(), "JSC_useSharedArrayBuffer=1")
	return cmd
}

// runInBrowser opens url (which must POST once to /test/result or to the
// report store) in e, waits for the POST, ends the browser, and returns
// what was posted. It retries once if the browser gives nothing in time.
func runInBrowser(t *testing.T, ts *testServer, e engine, url string, received func() ([]byte, bool)) []byte {
	t.Helper()
	for attempt := 1; attempt <= 2; attempt++ {
		body, err := runOnce(t, e, url, received)
		if err == nil {
			return body
		}
		t.Logf("%s attempt %d: %v", e.name, attempt, err)
	}
	t.Fatalf("%s: no result after 2 attempts", e.name)
	return nil
}

func runOnce(t *testing.T, e engine, url string, received func() ([]byte, bool)) ([]byte, error) {
	cmd := e.start(t, url)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // to end the whole tree
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", e.name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}()
	deadline := time.After(launchTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if body, ok := received(); ok {
			return body, nil
		}
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("%s exited before reporting (%v); its output:\n%s", e.name, err, tail(logs.String(), 4000))
		case <-deadline:
			return nil, fmt.Errorf("%s gave no result within %v; its output:\n%s", e.name, launchTimeout, tail(logs.String(), 4000))
		case <-tick.C:
		}
	}
}

// fromChannel reads what POST /test/result received.
func (ts *testServer) fromChannel() func() ([]byte, bool) {
	return func() ([]byte, bool) {
		select {
		case b := <-ts.results:
			return b, true
		default:
			return nil, false
		}
	}
}

// fromStore reads the newest page report stored through POST /api/reports.
func (ts *testServer) fromStore(after int) func() ([]byte, bool) {
	return func() ([]byte, bool) {
		recs, _ := ts.store.List(context.Background(), server.Filter{})
		if len(recs) > after {
			return recs[len(recs)-1].Body, true
		}
		return nil, false
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func decode[T any](t *testing.T, b []byte) T {
	var v T
	require.NoError(t, json.Unmarshal(b, &v), "%s", tail(string(b), 2000))
	return v
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
