package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func guardedServer(t *testing.T) *httptest.Server {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "index.html"), []byte("<!doctype html>"), 0o644))
	s, err := New(Config{Root: root, Origins: []string{"app.example.com", "*.trusted.test"}, ReportToken: "s3cret", Logf: t.Logf})
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

func TestGuards(t *testing.T) {
	ts := guardedServer(t)
	req := func(method, path, origin, auth, body string) *http.Response {
		r, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	// CORS: allowed origins get the header and a preflight; others not.
	resp := req("GET", "/api/compat", "https://app.example.com", "", "")
	assert.Equal(t, "https://app.example.com", resp.Header.Get("Access-Control-Allow-Origin"))
	resp = req("OPTIONS", "/v1/chat/completions", "https://a.trusted.test", "", "")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	resp = req("GET", "/api/compat", "https://evil.test", "", "")
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	resp = req("OPTIONS", "/v1/chat/completions", "https://evil.test", "", "")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Writing reports needs the token.
	body := `{"suite":"webinfer-bench","version":1,"results":[{"testbed":{"engine":"native"},"measure":"m"}]}`
	assert.Equal(t, http.StatusUnauthorized, req("POST", "/api/reports", "", "", body).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, req("POST", "/api/reports", "", "Bearer wrong", body).StatusCode)
	assert.Equal(t, http.StatusCreated, req("POST", "/api/reports", "", "Bearer s3cret", body).StatusCode)
	assert.Equal(t, http.StatusOK, req("GET", "/api/reports", "", "", "").StatusCode, "reading needs none")

	// A wrong method: a JSON 405 naming the right one.
	resp = req("GET", "/v1/chat/completions", "", "", "")
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "POST", resp.Header.Get("Allow"))
	assert.Contains(t, resp.Header.Get("Content-Type"), "application/json")
	// Without a model, the generation endpoints say so.
	assert.Equal(t, http.StatusServiceUnavailable, req("POST", "/v1/completions", "", "", `{"prompt":"hi"}`).StatusCode)
}

func TestIsLoopbackAndClients(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true, "0.0.0.0:8080": false, ":8080": false, "10.1.2.3:80": false, "nonsense": false} {
		assert.Equal(t, want, IsLoopback(addr), addr)
	}
	var c clients
	assert.True(t, c.acquire("a", 2))
	assert.True(t, c.acquire("a", 2))
	assert.False(t, c.acquire("a", 2))
	assert.True(t, c.acquire("b", 2))
	c.release("a")
	assert.True(t, c.acquire("a", 2))
}
