package server

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/report"
)

// testWasm is the test page's dist/app.wasm: large enough to compress.
var testWasm = "\x00asm" + strings.Repeat("webinfer ", 300)

func newTestServer(t *testing.T) *httptest.Server {
	root := t.TempDir()
	for name, body := range map[string]string{
		"index.html":       "<!doctype html><title>x</title>",
		"dist/app.wasm":    testWasm,
		"shim/gpu.js":      "export {}",
		"secret.txt":       "not public",
		"assets/style.css": "body{}",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	s, err := New(Config{Root: root, Logf: t.Logf})
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

func do(t *testing.T, ts *httptest.Server, method, path, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := ts.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestNewNeedsIndexHTML(t *testing.T) {
	_, err := New(Config{Root: t.TempDir()})
	assert.ErrorContains(t, err, "no index.html")
}

func TestStaticFilesAndIsolationHeaders(t *testing.T) {
	ts := newTestServer(t)
	cases := []struct {
		name, path  string
		status      int
		contentType string
	}{
		{"page", "/", 200, "text/html"},
		{"wasm", "/dist/app.wasm", 200, "application/wasm"},
		{"shim", "/shim/gpu.js", 200, "text/javascript"},
		{"css", "/assets/style.css", 200, "text/css"},
		{"outside the public folders", "/secret.txt", 404, "application/json"},
		{"dot-dot", "/dist/../secret.txt", 404, "application/json"},
		{"folder", "/dist/", 404, "application/json"},
		{"missing", "/dist/nope.wasm", 404, "application/json"},
		{"unknown api", "/api/nope", 404, "application/json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := do(t, ts, "GET", tc.path, "")
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Contains(t, resp.Header.Get("Content-Type"), tc.contentType)
			assert.Equal(t, "same-origin", resp.Header.Get("Cross-Origin-Opener-Policy"))
			assert.Equal(t, "require-corp", resp.Header.Get("Cross-Origin-Embedder-Policy"))
		})
	}
	resp, body := do(t, ts, "DELETE", "/", "")
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Contains(t, body, `"code":"method-not-allowed"`)
}

const pageReport = `{"engine":{"name":"firefox","version":"153.0","ua":"x"},
 "features":{"webgpu":{"present":true,"adapter":{"vendor":"","isFallbackAdapter":true},"features":["shader-f16"]},"wasm":{"simd":true}},
 "backend":"webgpu","precision":"f16","tokens":[],"text":"","metrics":{"compile_ms":12},
 "checks":[{"kernel":"matmul_Q8_0+norm","backend":"webgpu","ok":true}],"errors":[]}`

func TestReportsRoundTripAndCompat(t *testing.T) {
	ts := newTestServer(t)
	resp, body := do(t, ts, "POST", "/api/reports", pageReport)
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	resp, body = do(t, ts, "POST", "/api/reports", `{"suite":"webinfer-bench","version":1,"results":[{"testbed":{"engine":"native"},"measure":"decode_tok_s"}]}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)

	var list struct {
		Reports []Record `json:"reports"`
	}
	_, body = do(t, ts, "GET", "/api/reports?engine=firefox", "")
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list.Reports, 1)
	assert.Equal(t, "page", list.Reports[0].Kind)
	assert.Equal(t, []string{"compile_ms"}, list.Reports[0].Measures)

	_, body = do(t, ts, "GET", "/api/reports?measure=decode_tok_s", "")
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list.Reports, 1)
	assert.Equal(t, "bench", list.Reports[0].Kind)

	_, body = do(t, ts, "GET", "/api/reports?since=2999-01-01T00:00:00Z", "")
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	assert.Empty(t, list.Reports)

	var compat report.Compat
	_, body = do(t, ts, "GET", "/api/compat", "")
	require.NoError(t, json.Unmarshal([]byte(body), &compat))
	require.Len(t, compat.Rows, 1)
	row := compat.Rows[0]
	assert.Equal(t, "firefox", row.Engine)
	assert.True(t, row.WebGPU)
	assert.True(t, row.F16)
	assert.True(t, row.Fallback)
	assert.True(t, row.ChecksOK)
	assert.Equal(t, "f16", row.Precision)

	_, body = do(t, ts, "GET", "/metrics", "")
	assert.Contains(t, body, "webinfer_reports_stored 2")
}

func TestBadReportsGet4xxWithJSON(t *testing.T) {
	ts := newTestServer(t)
	cases := []struct{ name, body, code string }{
		{"not json", "{", "bad-report"},
		{"empty object", "{}", "bad-report"},
		{"unknown suite", `{"suite":"other"}`, "bad-report"},
		{"engine without name", `{"engine":{},"backend":"cpu"}`, "bad-report"},
		{"wrong types", `{"engine":{"name":1},"backend":"cpu"}`, "bad-report"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, ts, "POST", "/api/reports", tc.body)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &e), body)
			assert.Equal(t, tc.code, e.Error.Code)
			assert.NotEmpty(t, e.Error.Message)
		})
	}
	resp, _ := do(t, ts, "POST", "/api/reports", `{"engine":{"name":"x"},"backend":"cpu","text":"`+strings.Repeat("a", maxReportBytes)+`"}`)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	resp, _ = do(t, ts, "GET", "/api/reports?since=yesterday", "")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, body := do(t, ts, "GET", "/healthz", "")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, body, `"status":"ok"`)
}

// TestCompressedStatic: a client that accepts brotli or gzip gets the
// file compressed (the same bytes once decoded); one that does not, or
// asks for a range, gets it as it is.
func TestCompressedStatic(t *testing.T) {
	ts := newTestServer(t)
	raw := []byte(testWasm)
	get := func(accept, rng string) *http.Response {
		req, _ := http.NewRequest("GET", ts.URL+"/dist/app.wasm", nil)
		req.Header.Set("Accept-Encoding", accept)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gzip
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := get("gzip, deflate, br", "")
	assert.Equal(t, "br", resp.Header.Get("Content-Encoding"))
	assert.Equal(t, "application/wasm", resp.Header.Get("Content-Type"))
	got, err := io.ReadAll(brotli.NewReader(resp.Body))
	require.NoError(t, err)
	assert.Equal(t, raw, got)

	resp = get("gzip", "")
	assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	zr, err := gzip.NewReader(resp.Body)
	require.NoError(t, err)
	got, err = io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, raw, got)

	for _, c := range []struct{ accept, rng string }{{"", ""}, {"identity", ""}, {"br;q=0, gzip;q=0", ""}, {"br", "bytes=0-3"}} {
		resp = get(c.accept, c.rng)
		assert.Empty(t, resp.Header.Get("Content-Encoding"), "%+v", c)
		got, _ = io.ReadAll(resp.Body)
		if c.rng != "" {
			assert.Equal(t, raw[:4], got)
		} else {
			assert.Equal(t, raw, got)
		}
	}
}
