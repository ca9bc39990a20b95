//go:build browser

package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gen "github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/report"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/synth"
)

// embedResult is what tests/embed/app.js POSTs: each case's findings.
type embedResult struct {
	Errors   []string `json:"errors"`
	Progress []struct {
		Phase  string `json:"phase"`
		Loaded int64  `json:"loaded"`
		Total  int64  `json:"total"`
	} `json:"progress"`
	Cases struct {
		Seeded struct {
			IDs    []int32 `json:"ids"`
			Chunks []struct {
				Token int32   `json:"token"`
				Text  string  `json:"text"`
				Index int     `json:"index"`
				AtMs  float64 `json:"atMs"`
			} `json:"chunks"`
			Result struct {
				FinishReason string `json:"finishReason"`
				Usage        struct {
					CompletionTokens int `json:"completionTokens"`
				} `json:"usage"`
			} `json:"result"`
		} `json:"seeded"`
		Concurrent [][]int32 `json:"concurrent"`
		Abort      struct {
			Err    *jsError `json:"err"`
			Tokens int      `json:"tokens"`
			After  int      `json:"after"`
		} `json:"abort"`
		Stop struct {
			Stop, Want, Got string
			Result          struct {
				FinishReason string `json:"finishReason"`
			} `json:"result"`
		} `json:"stop"`
		Chat struct {
			Chunks []struct {
				Object  string `json:"object"`
				Choices []struct {
					Delta struct {
						Role    string `json:"role"`
						Content string `json:"content"`
					} `json:"delta"`
					FinishReason *string `json:"finish_reason"`
				} `json:"choices"`
				Usage *struct {
					CompletionTokens int `json:"completion_tokens"`
				} `json:"usage"`
			} `json:"chunks"`
			One struct {
				Object  string `json:"object"`
				Choices []struct {
					Message struct {
						Content string `json:"content"`
					} `json:"message"`
				} `json:"choices"`
				Usage struct {
					CompletionTokens int `json:"completion_tokens"`
				} `json:"usage"`
			} `json:"one"`
		} `json:"chat"`
		BadOptions  map[string]*jsError `json:"badOptions"`
		ContextFull *jsError            `json:"contextFull"`
		Stats       struct {
			Backend         string             `json:"backend"`
			Worker          bool               `json:"worker"`
			TTFTBreakdownMs map[string]float64 `json:"ttftBreakdownMs"`
			WasmHeapBytes   int64              `json:"wasmHeapBytes"`
			GenAI           map[string]any     `json:"genAI"`
			KVBytes         int64              `json:"kvBytes"`
			DecodeTokS      float64            `json:"decodeTokS"`
			Backends        []struct {
				Name, Health, Why string
			} `json:"backends"`
		} `json:"stats"`
		Features struct {
			Path    struct{ Backend, Why string } `json:"path"`
			Storage struct {
				OPFS bool `json:"opfs"`
			} `json:"storage"`
		} `json:"features"`
		Cache        []any    `json:"cache"`
		BrokenModel  *jsError `json:"brokenModel"`
		GarbageModel *jsError `json:"garbageModel"`
		MainThread   struct {
			IDs     []int32 `json:"ids"`
			Worker  bool    `json:"worker"`
			Backend string  `json:"backend"`
		} `json:"mainThread"`
		Unload *jsError `json:"unload"`
		Remote *struct {
			Seeded     []int32   `json:"seeded"`
			Concurrent [][]int32 `json:"concurrent"`
			Abort      *jsError  `json:"abort"`
			Got        int       `json:"got"`
			Chunks     []struct {
				Choices []struct {
					Delta struct {
						Content string `json:"content"`
					} `json:"delta"`
				} `json:"choices"`
				Usage *struct {
					CompletionTokens int `json:"completion_tokens"`
				} `json:"usage"`
			} `json:"chunks"`
			One struct {
				Choices []struct {
					Message struct {
						Content string `json:"content"`
					} `json:"message"`
				} `json:"choices"`
			} `json:"one"`
			Bad      *jsError `json:"bad"`
			Backend  string   `json:"backend"`
			Fallback struct {
				Backend, Why string
				IDs          []int32 `json:"ids"`
			} `json:"fallback"`
			Down *jsError `json:"down"`
		} `json:"remote"`
		ModelCache *struct {
			First, Second, Third struct {
				Phases  []string `json:"phases"`
				IDs     []int32  `json:"ids"`
				FetchMs float64  `json:"fetchMs"`
			}
			Listed, AfterEvict, After []cachedModel
			TooBig                    *jsError `json:"tooBig"`
			Deleted                   bool     `json:"deleted"`
			Size                      int64    `json:"size"`
			URLs                      []string `json:"urls"`
		} `json:"modelCache"`
		WebGPU *struct {
			IDs          []int32 `json:"ids"`
			Resumed      []int32 `json:"resumed"`
			Next         []int32 `json:"next"`
			Backend      string  `json:"backend"`
			BackendAfter string  `json:"backendAfter"`
			GPUBytes     int64   `json:"gpuBytes"`
			Destroyed    bool    `json:"destroyed"`
			Lost         int     `json:"lost"`
		} `json:"webgpu"`
		Streaming *struct {
			IDs      []int32 `json:"ids"`
			AtEngine *struct {
				Phase      string `json:"phase"`
				Downloaded int64  `json:"downloaded"`
			} `json:"atEngine"`
			Total   int64    `json:"total"`
			Phases  []string `json:"phases"`
			Backend string   `json:"backend"`
		} `json:"streaming"`
		WebGPUGone *struct {
			IDs          []int32 `json:"ids"`
			CPU          []int32 `json:"cpu"`
			Fallbacks    []struct{ From, To, Reason string }
			BackendAfter string `json:"backendAfter"`
		} `json:"webgpuGone"`
	} `json:"cases"`
}

type jsError struct {
	IsWebInferError bool   `json:"isWebInferError"`
	Code            string `json:"code"`
	Message         string `json:"message"`
	Recoverable     bool   `json:"recoverable"`
}

// TestEmbeddedAPI opens tests/embed, an app using the package of `make
// dist` through its JS API only, in Chromium, Firefox and WebKit, and checks
// every case against the native engine (`webinfer generate`'s code):
// seeded tokens, concurrent requests, abort, a stop string across tokens,
// both chat forms, bad options, a prompt past the context, stats from the
// worker, a broken model, the engine on the page's thread, unload.
func TestEmbeddedAPI(t *testing.T) {
	ts := startServer(t)
	cli := cliTokens(t, "And God said", 24, 5)
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			u := ts.URL + "/test/embed/index.html?model=" + url.QueryEscape("/assets/models/kjv-q8_0.gguf") +
				"&broken=" + url.QueryEscape("/test/broken.gguf") + "&report=" + url.QueryEscape(ts.URL+"/test/result")
			if e.webgpu {
				u += "&webgpu=1" // also an engine with backend: "webgpu", in its worker
			}
			u += "&cut=" + url.QueryEscape("/test/cut/"+e.name+"-") + "&remote=" + url.QueryEscape("/v1/stream")
			dropped := ts.droppedDownloads()
			r := decode[embedResult](t, runInBrowser(t, ts, e, u, ts.fromChannel()))
			assert.Eventually(t, func() bool { return ts.droppedDownloads() > dropped }, 10*time.Second, 50*time.Millisecond,
				"the garbage model's download was broken off when its load failed")
			c := r.Cases
			require.Empty(t, r.Errors)
			t.Logf("%s: backend %s, worker %v (%s); decode %.0f tok/s, WASM memory %d MiB", e.name, c.Stats.Backend, c.Stats.Worker, c.Features.Path.Why, c.Stats.DecodeTokS, c.Stats.WasmHeapBytes>>20)

			exact := c.Stats.Backend == "webgpu" // f32 activations, as the native engine's exact mode
			if !exact {
				assert.Equal(t, cli, c.Seeded.IDs, "seeded tokens: webinfer generate's")
			}
			assert.Equal(t, native(t, "And God said", 24, sample.Defaults.WithSeed(5), exact), c.Seeded.IDs, "seeded tokens")
			assert.Equal(t, len(c.Seeded.IDs), c.Seeded.Result.Usage.CompletionTokens)
			for i, ch := range c.Seeded.Chunks {
				assert.Equal(t, i, ch.Index)
				if i > 0 {
					assert.GreaterOrEqual(t, ch.AtMs, c.Seeded.Chunks[i-1].AtMs, "timings in order")
				}
			}
			require.Len(t, c.Concurrent, 3)
			for i, seed := range []uint64{11, 12, 13} {
				assert.Equal(t, native(t, "And God said", 12, sample.Defaults.WithSeed(seed), exact), c.Concurrent[i], "concurrent request %d: its own tokens", i)
			}

			require.NotNil(t, c.Abort.Err)
			assert.Equal(t, "aborted", c.Abort.Err.Code)
			assert.True(t, c.Abort.Err.IsWebInferError)
			assert.Equal(t, 3, c.Abort.Tokens, "no token after the abort")
			assert.Equal(t, 2, c.Abort.After, "the engine goes on after an abort")

			assert.NotEmpty(t, c.Stop.Stop)
			assert.Equal(t, c.Stop.Want, c.Stop.Got, "text up to the stop string %q", c.Stop.Stop)
			assert.NotContains(t, c.Stop.Got, c.Stop.Stop)
			assert.Equal(t, "stop", c.Stop.Result.FinishReason)

			chunks := c.Chat.Chunks
			require.GreaterOrEqual(t, len(chunks), 2)
			assert.Equal(t, "assistant", chunks[0].Choices[0].Delta.Role)
			var text strings.Builder
			for _, ch := range chunks {
				assert.Equal(t, "chat.completion.chunk", ch.Object)
				text.WriteString(ch.Choices[0].Delta.Content)
			}
			last := chunks[len(chunks)-1]
			require.NotNil(t, last.Usage, "usage on the last chunk")
			require.NotNil(t, last.Choices[0].FinishReason)
			assert.Equal(t, "chat.completion", c.Chat.One.Object)
			assert.Equal(t, text.String(), c.Chat.One.Choices[0].Message.Content, "stream: false gives the streamed text")
			assert.Equal(t, last.Usage.CompletionTokens, c.Chat.One.Usage.CompletionTokens)

			for name, want := range map[string]string{
				"maxTokens": "maxTokens: -1: want an integer", "unknown": "max_tokens: not an option",
				"temperature": `temperature: "hot"`, "chat": "messages: want a list", "create": "model: want a URL",
				"backend": `backend: "tpu"`, "prompt": "prompt: want a string",
			} {
				got := c.BadOptions[name]
				if assert.NotNil(t, got, name) {
					assert.True(t, got.IsWebInferError, name)
					assert.Equal(t, "bad-option", got.Code, name)
					assert.Contains(t, got.Message, want, name)
				}
			}
			if assert.NotNil(t, c.ContextFull) {
				assert.Equal(t, "context-full", c.ContextFull.Code)
			}

			assert.True(t, c.Stats.Worker, "the engine runs in a worker by default")
			health := map[string]string{}
			for _, b := range c.Stats.Backends {
				health[b.Name] = b.Health
				t.Logf("%s: backend %s: %s (%s)", e.name, b.Name, b.Health, b.Why)
			}
			assert.Equal(t, "ready", health[c.Stats.Backend], "the chosen backend is ready")
			if e.webgpu {
				assert.Contains(t, []string{"ready", "idle"}, health["webgpu"], "WebGPU started here (idle: measured slower)")
			} else {
				assert.Equal(t, "unavailable", health["webgpu"])
			}
			assert.Greater(t, c.Stats.WasmHeapBytes, int64(0))
			assert.Greater(t, c.Stats.GenAI["gen_ai.client.token.usage.output"], 0.0, "GenAI telemetry from the worker: %v", c.Stats.GenAI)
			assert.Greater(t, c.Stats.KVBytes, int64(0))
			assert.Greater(t, c.Stats.TTFTBreakdownMs["fetch"], 0.0)
			assert.Greater(t, c.Stats.TTFTBreakdownMs["prefill"], 0.0)
			assert.NotEmpty(t, c.Features.Path.Backend)
			assert.NotNil(t, c.Cache)

			var phases []string
			for _, p := range r.Progress {
				if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
					phases = append(phases, p.Phase)
				}
			}
			if assert.Contains(t, phases, "fetch") {
				assert.Equal(t, "ready", phases[len(phases)-1], "phases %v", phases)
			}

			if assert.NotNil(t, c.BrokenModel) {
				assert.Equal(t, "bad-model", c.BrokenModel.Code)
				assert.Contains(t, c.BrokenModel.Message, "gguf")
			}
			if assert.NotNil(t, c.GarbageModel) {
				assert.Equal(t, "bad-model", c.GarbageModel.Code, "%+v", c.GarbageModel)
				assert.Contains(t, c.GarbageModel.Message, "gguf")
			}
			assert.False(t, c.MainThread.Worker)
			mainExact := c.MainThread.Backend == "webgpu"
			assert.Equal(t, native(t, "And God said", 24, sample.Defaults.WithSeed(5), mainExact), c.MainThread.IDs, "worker: false, the same tokens")
			if e.webgpu && assert.NotNil(t, c.WebGPU, "the WebGPU case") {
				g := c.WebGPU
				t.Logf("%s: WebGPU in the worker, %d MiB of GPU buffers; %d device losses survived, then on %s", e.name, g.GPUBytes>>20, g.Lost, g.BackendAfter)
				assert.Equal(t, "webgpu", g.Backend)
				assert.Greater(t, g.GPUBytes, int64(0))
				want := native(t, "And God said", 24, sample.Defaults.WithSeed(5), true)
				assert.Equal(t, want, g.IDs, "seeded tokens on WebGPU")
				assert.True(t, g.Destroyed)
				assert.Equal(t, want, g.Resumed, "the device lost after 3 tokens: the stream goes on with the same tokens")
				assert.Equal(t, want, g.Next, "the device lost between requests")
				assert.Equal(t, 2, g.Lost, "a devicelost event per loss")
				assert.Equal(t, "webgpu", g.BackendAfter, "a new device, not the CPU path")
			}
			if s := c.Streaming; assert.NotNil(t, s, "the streaming case") {
				t.Logf("%s: progressive load on %s: phases %v; the engine's %+v of %d bytes downloaded", e.name, s.Backend, s.Phases, s.AtEngine, s.Total)
				if assert.NotNil(t, s.AtEngine, "the engine's compile or upload phase came") {
					assert.Less(t, s.AtEngine.Downloaded, s.Total, "the engine compiled or uploaded while the download ran")
				}
				assert.Equal(t, native(t, "And God said", 8, sample.Params{}, s.Backend == "webgpu"), s.IDs, "the tokens of a model loaded as it downloaded")
			}
			if e.webgpu && assert.NotNil(t, c.WebGPUGone, "the WebGPU-gone case") {
				g := c.WebGPUGone
				t.Logf("%s: the device lost for good after 4 tokens: %+v, then on %s", e.name, g.Fallbacks, g.BackendAfter)
				assert.Equal(t, "cpu", g.BackendAfter, "the CPU path took over")
				if assert.Len(t, g.Fallbacks, 1) {
					assert.Equal(t, "webgpu", g.Fallbacks[0].From)
					assert.Equal(t, "cpu", g.Fallbacks[0].To)
				}
				assert.Len(t, g.IDs, 16, "the stream went on to its end")
				assert.Equal(t, g.CPU, g.IDs, "greedy: the tokens the CPU path gives from the start")
			}
			// The model cache: the first load's download breaks off and
			// goes on with a Range request from where it stopped; the second
			// load is read from the cache with no request; a model that does
			// not fit beside the first evicts it; one that cannot fit at all
			// is a clear error.
			if mc := c.ModelCache; assert.NotNil(t, mc, "the model cache case") && func() bool {
				greedy := native(t, "And God said", 8, sample.Params{}, c.Stats.Backend == "webgpu")
				a, b := mc.URLs[0], mc.URLs[1]
				pathOf := func(u string) string { p, _ := url.Parse(u); return p.Path }
				reqs := ts.cutRequests(pathOf(a))
				t.Logf("%s: model cache: first load %v (requests %q), second %v, %d bytes kept", e.name, mc.First.Phases, reqs, mc.Second.Phases, mc.Size)
				assert.Equal(t, greedy, mc.First.IDs)
				assert.Equal(t, greedy, mc.Second.IDs)
				assert.Equal(t, greedy, mc.Third.IDs)
				assert.Contains(t, mc.First.Phases, "fetch")
				if !c.Features.Storage.OPFS {
					// No OPFS (WebKitGTK here): nothing is kept, a broken
					// download still goes on where it stopped (in memory).
					t.Logf("%s: no OPFS: no model cache", e.name)
					assert.Empty(t, mc.Listed)
					assert.Contains(t, mc.Second.Phases, "fetch")
					assert.GreaterOrEqual(t, len(reqs), 3, "the broken download, its resumption, and the second load's")
					assert.Nil(t, mc.TooBig, "without a cache, maxBytes bounds nothing")
					return false
				}
				assert.NotContains(t, mc.Second.Phases, "fetch", "the second load: no download")
				assert.Contains(t, mc.Second.Phases, "cache")
				// The broken download, and its resumption: a Range request from
				// the bytes that arrived (a whole request again when the browser
				// dropped them all on the reset); none for the second load.
				if assert.GreaterOrEqual(t, len(reqs), 2) {
					assert.Empty(t, reqs[0])
					last := reqs[len(reqs)-1]
					if last != "" {
						assert.Regexp(t, `^bytes=[1-9][0-9]*-$`, last, "resumed from where it broke")
						var from int
						fmt.Sscanf(last, "bytes=%d-", &from)
						assert.LessOrEqual(t, int64(from), mc.Size/3+1)
					}
					assert.LessOrEqual(t, len(reqs), 3)
				}
				assert.Contains(t, urlsOf(mc.Listed), a)
				assert.NotContains(t, urlsOf(mc.Listed), ts.URL+"/test/broken.gguf", "a file that is no model is not kept")
				assert.Contains(t, urlsOf(mc.AfterEvict), b)
				assert.NotContains(t, urlsOf(mc.AfterEvict), a, "the least recently used model evicted")
				if assert.NotNil(t, mc.TooBig) {
					assert.Equal(t, "out-of-memory", mc.TooBig.Code)
					assert.Contains(t, mc.TooBig.Message, "do not fit")
				}
				assert.True(t, mc.Deleted, "nothing evicted for a model that cannot fit")
				assert.NotContains(t, urlsOf(mc.After), b)
				return true
			}() {
				t.Logf("%s: the model cache kept, resumed and evicted", e.name)
			}
			// The remote backend: webinfer serve's engine (native, CPU),
			// the same chunks and coded errors as a local engine.
			if rm := c.Remote; assert.NotNil(t, rm, "the remote case") {
				assert.Equal(t, "remote", rm.Backend)
				assert.Equal(t, native(t, "And God said", 24, sample.Defaults.WithSeed(5), false), rm.Seeded, "seeded tokens from the server")
				for i, seed := range []uint64{11, 12, 13} {
					assert.Equal(t, native(t, "And God said", 12, sample.Defaults.WithSeed(seed), false), rm.Concurrent[i], "concurrent request %d", i)
				}
				if assert.NotNil(t, rm.Abort) {
					assert.Equal(t, "aborted", rm.Abort.Code)
				}
				assert.Equal(t, 3, rm.Got)
				var text strings.Builder
				for _, ch := range rm.Chunks {
					if len(ch.Choices) > 0 {
						text.WriteString(ch.Choices[0].Delta.Content)
					}
				}
				if assert.NotEmpty(t, rm.Chunks) {
					assert.NotNil(t, rm.Chunks[len(rm.Chunks)-1].Usage, "usage on the last chunk")
				}
				assert.Equal(t, text.String(), rm.One.Choices[0].Message.Content)
				if assert.NotNil(t, rm.Bad) {
					assert.Equal(t, "bad-option", rm.Bad.Code)
					assert.Contains(t, rm.Bad.Message, "maxTokens: -1")
				}
				assert.Equal(t, "remote", rm.Fallback.Backend, rm.Fallback.Why)
				assert.Contains(t, rm.Fallback.Why, "bad-model")
				assert.Equal(t, native(t, "And God said", 4, sample.Params{}, false), rm.Fallback.IDs)
				if assert.NotNil(t, rm.Down) {
					assert.Equal(t, "network", rm.Down.Code)
				}
			}
			if assert.NotNil(t, c.Unload) {
				assert.Contains(t, c.Unload.Message, "unloaded")
			}
		})
	}
}

// native is the native engine's tokens for prompt on the default model;
// exact uses f32 activations, as the WebGPU backend does.
func native(t *testing.T, prompt string, n int, p sample.Params, exact bool) []int32 {
	path := filepath.Join(repoRoot(t), "assets", "models", "kjv-q8_0.gguf")
	f, fh, err := gguf.Open(path)
	require.NoError(t, err)
	defer fh.Close()
	m, err := model.Load(f, fh)
	require.NoError(t, err)
	m.ExactActivations = exact
	ids := []int32{}
	_, err = gen.Generate(context.Background(), m, gen.Request{Prompt: prompt, MaxTokens: n, Sample: p}, func(tk gen.Token) error {
		if tk.ID >= 0 {
			ids = append(ids, tk.ID)
		}
		return nil
	})
	require.NoError(t, err)
	return ids
}

// cliTokens is `webinfer generate`'s tokens (default sampling, seed).
func cliTokens(t *testing.T, prompt string, n int, seed int) []int32 {
	root := repoRoot(t)
	out, err := exec.Command(filepath.Join(root, "bin", "webinfer"), "generate", "--json", "--model", filepath.Join(root, "assets", "models", "kjv-q8_0.gguf"),
		"--prompt", prompt, "--max-tokens", itoa(n), "--seed", itoa(seed)).Output()
	require.NoError(t, err)
	ids := []int32{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var tok struct {
			Token *int32 `json:"token"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &tok))
		if tok.Token != nil && *tok.Token >= 0 {
			ids = append(ids, *tok.Token)
		}
	}
	return ids
}

func itoa(n int) string { return strconv.Itoa(n) }

// cachedModel is one entry of listCachedModels().
type cachedModel struct {
	URL   string `json:"url"`
	Bytes int64  `json:"bytes"`
}

func urlsOf(ms []cachedModel) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.URL)
	}
	return out
}

// TestWASMHeapWhileLoading loads the SmolLM2-135M-shaped Q8_0 model (176 MB)
// through the JS API in Chromium and checks the engine's WASM memory at
// its peak: on WebGPU under a quarter of the file (the weights go from the
// cache's file to the GPU a chunk at a time, never whole into the WASM
// memory); on the CPU path under three fifths of it (the weights go into
// the CPU pool's own memory a megabyte at a time; the token embedding, a
// sixth of this model, stays in the engine's, beside Go's heap headroom):
// before, the whole file was read into the engine's memory.
func TestWASMHeapWhileLoading(t *testing.T) {
	ts := startServer(t)
	path, err := synth.Cached("smol135", gguf.TypeQ8_0, 1)
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	for _, backend := range []string{"webgpu", "cpu"} {
		t.Run(backend, func(t *testing.T) {
			u := ts.URL + "/test/embed/index.html?heap=" + url.QueryEscape("/test/models/"+filepath.Base(path)) + "&backend=" + backend + "&report=" + url.QueryEscape(ts.URL+"/test/result")
			r := decode[struct {
				Errors []string `json:"errors"`
				Cases  struct {
					Heap struct {
						Backend       string          `json:"backend"`
						WasmHeapBytes int64           `json:"wasmHeapBytes"`
						GPUBytes      int64           `json:"gpuBytes"`
						Tokens        int             `json:"tokens"`
						CPU           *report.CPUPath `json:"cpu"`
					} `json:"heap"`
				} `json:"cases"`
			}](t, runInBrowser(t, ts, engines[0], u, ts.fromChannel()))
			require.Empty(t, r.Errors)
			h := r.Cases.Heap
			t.Logf("smol135 Q8_0 (%d MiB) on %s: WASM memory %d MiB at its peak, GPU buffers %d MiB, CPU %+v", st.Size()>>20, backend, h.WasmHeapBytes>>20, h.GPUBytes>>20, h.CPU)
			assert.Equal(t, backend, h.Backend)
			assert.Equal(t, 2, h.Tokens)
			if backend == "webgpu" {
				assert.Greater(t, h.GPUBytes, st.Size()/2, "the weights are on the GPU")
				assert.Less(t, h.WasmHeapBytes, st.Size()/4, "the WASM memory's peak: under a quarter of the file")
			} else {
				require.NotNil(t, h.CPU)
				assert.Positive(t, h.CPU.Threads, "the CPU pool runs")
				assert.Less(t, h.WasmHeapBytes, st.Size()*3/5, "the engine's WASM memory's peak: under three fifths of the file")
			}
		})
	}
}
