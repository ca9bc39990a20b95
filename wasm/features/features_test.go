package features

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Reports as shim/features.js produces them in the three engines here
// (shared/BROWSERS.md), trimmed to what Choose reads.
const (
	chromiumJSON = `{"webgpu":{"present":true,"adapter":{"vendor":"google","architecture":"swiftshader","description":"SwiftShader Device (Subzero)","isFallbackAdapter":true},"features":["subgroups","timestamp-query"],"limits":{"maxStorageBufferBindingSize":1073741824}},"wasm":{"present":true,"simd":true,"threads":true}}`
	firefoxJSON  = `{"webgpu":{"present":true,"adapter":{"vendor":"","architecture":"","description":"","isFallbackAdapter":false},"features":["shader-f16","timestamp-query"],"limits":{"maxStorageBufferBindingSize":134217728}}}`
	webkitJSON   = `{"webgpu":{"present":false,"adapter":null},"wasm":{"present":true,"simd":true}}`
)

func decode(t *testing.T, s string) Report {
	var r Report
	require.NoError(t, json.Unmarshal([]byte(s), &r))
	return r
}

func TestChoose(t *testing.T) {
	cases := []struct {
		name      string
		report    string
		prefs     Prefs
		backend   string
		precision string
		why       string
	}{
		{"chromium swiftshader", chromiumJSON, Prefs{}, "webgpu", "f32", `"SwiftShader Device (Subzero)" (a software fallback adapter)`},
		{"firefox lavapipe has f16", firefoxJSON, Prefs{}, "webgpu", "f16", "with shader-f16"},
		{"firefox forced f32", firefoxJSON, Prefs{Precision: "f32"}, "webgpu", "f32", "(unnamed)"},
		{"f16 forced without shader-f16", chromiumJSON, Prefs{Precision: "f16"}, "webgpu", "f32", "lacks shader-f16"},
		{"webkit has no webgpu", webkitJSON, Prefs{}, "cpu", "f32", "navigator.gpu is absent"},
		{"webgpu forced where absent", webkitJSON, Prefs{Backend: "webgpu"}, "cpu", "f32", "WebGPU requested but navigator.gpu is absent"},
		{"cpu forced", chromiumJSON, Prefs{Backend: "cpu"}, "cpu", "f32", "CPU requested"},
		{"no adapter", `{"webgpu":{"present":true,"adapter":null,"error":"blocklisted"}}`, Prefs{}, "cpu", "f32", "no adapter: blocklisted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Choose(decode(t, tc.report), tc.prefs)
			assert.Equal(t, tc.backend, p.Backend)
			assert.Equal(t, tc.precision, p.Precision)
			assert.Contains(t, p.Why, tc.why)
		})
	}
}
