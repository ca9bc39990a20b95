//go:build browser

package browser

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGoTestsInBrowsers runs the engine's js/wasm Go tests (`go test -c`
// binaries that make build-tests puts in dist/test/) inside each engine,
// with the WebGPU shim loaded, so that the Go side of WebGPU is tested on
// the real thing: SwiftShader in Chromium, lavapipe in Firefox, and its
// absence in WebKit.
func TestGoTestsInBrowsers(t *testing.T) {
	ts := startServer(t)
	bins, err := filepath.Glob(filepath.Join(testBinDir(repoRoot(t)), "*.test.wasm"))
	require.NoError(t, err)
	require.NotEmpty(t, bins, "no test binaries in dist/test: run `make build-tests`")
	for _, e := range engines {
		for _, bin := range bins {
			name := filepath.Base(bin)
			t.Run(e.name+"/"+strings.TrimSuffix(name, ".test.wasm"), func(t *testing.T) {
				u := ts.URL + "/test/files/gotest.html?bin=" + url.QueryEscape(name) + "&report=" + url.QueryEscape(ts.URL+"/test/result")
				res := decode[struct {
					Exit   int    `json:"exit"`
					Output string `json:"output"`
				}](t, runInBrowser(t, ts, e, u, ts.fromChannel()))
				if res.Exit != 0 || testing.Verbose() {
					t.Logf("%s in %s:\n%s", name, e.name, res.Output)
				}
				assert.Equal(t, 0, res.Exit, "go test exit status")
				assert.Contains(t, res.Output, "PASS")
				if e.webgpu && name == "webgpu.test.wasm" {
					assert.NotContains(t, res.Output, "--- SKIP", "WebGPU works in %s here: no test may skip", e.name)
				}
			})
		}
	}
}
