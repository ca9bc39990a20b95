package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/internal/pgtest"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/synth/synthtest"
)

// startServe runs bin (webinfer) serve on a free port and returns its
// base URL and process.
func startServe(t *testing.T, bin string, args ...string) (string, *exec.Cmd) {
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "webinfer: serving "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return strings.TrimSuffix(u, "/"), cmd
		}
	}
	t.Fatalf("webinfer serve did not start: %v", sc.Err())
	return "", nil
}

// buildServe builds webinfer into a temporary folder, with a page root
// (an index.html) beside it.
func buildServe(t *testing.T) (dir, bin, root string) {
	dir = t.TempDir()
	bin = filepath.Join(dir, "webinfer")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	root = filepath.Join(dir, "root")
	require.NoError(t, os.MkdirAll(root, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "index.html"), []byte("<!doctype html>"), 0o644))
	return dir, bin, root
}

// TestReportsSurviveKill: reports are POSTed while the server is killed
// with SIGKILL; after a restart on the same database (a SQLite file, and a
// PostgreSQL server that the test starts) every report that was answered
// 201 is there.
func TestReportsSurviveKill(t *testing.T) {
	dir, bin, root := buildServe(t)
	for name, db := range map[string]string{"sqlite": filepath.Join(dir, "reports.db"), "postgres": pgtest.Start(t)} {
		t.Run(name, func(t *testing.T) { reportsSurviveKill(t, bin, root, db) })
	}
}

func reportsSurviveKill(t *testing.T, bin, root, db string) {

	base, cmd := startServe(t, bin, "--root", root, "--db", db)
	var mu sync.Mutex
	var acked []int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"suite":"webinfer-bench","version":1,"results":[{"testbed":{"engine":"w%d"},"measure":"m%d"}]}`, w, i)
				resp, err := http.Post(base+"/api/reports", "application/json", strings.NewReader(body))
				if err != nil {
					return // the server is gone
				}
				var r struct{ ID int64 }
				ok := resp.StatusCode == http.StatusCreated && json.NewDecoder(resp.Body).Decode(&r) == nil
				resp.Body.Close()
				if ok {
					mu.Lock()
					acked = append(acked, r.ID)
					mu.Unlock()
				}
			}
		}()
	}
	// Kill once some have been stored, while the writers go on.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 40 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no shutdown, no flush
	close(stop)
	wg.Wait()
	cmd.Wait()
	require.NotEmpty(t, acked)

	base, _ = startServe(t, bin, "--root", root, "--db", db)
	resp, err := http.Get(base + "/api/reports")
	require.NoError(t, err)
	defer resp.Body.Close()
	var list struct {
		Reports []struct{ ID int64 } `json:"reports"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	have := map[int64]bool{}
	for _, r := range list.Reports {
		have[r.ID] = true
	}
	for _, id := range acked {
		assert.True(t, have[id], "report %d was acknowledged and lost", id)
	}
	t.Logf("%d reports acknowledged before the kill, %d stored", len(acked), len(list.Reports))
}

// TestStreamResumesAfterKill: a client reads part of a stream, the server
// is killed with SIGKILL and started again on the same database, and the
// client resumes from the next index: it gets exactly the tokens a run
// without the kill gives, nothing lost or repeated.
func TestStreamResumesAfterKill(t *testing.T) {
	dir, bin, root := buildServe(t)
	model := synthtest.Path(t, "tiny", gguf.TypeQ8_0, 1)
	args := []string{"--root", root, "--db", filepath.Join(dir, "state.db"), "--model", model}
	base, cmd := startServe(t, bin, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dial := func(base string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/stream", nil)
		require.NoError(t, err)
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	type frame struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
		Token int32  `json:"token"`
	}
	read := func(c *websocket.Conn) frame {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		var f frame
		require.NoError(t, json.Unmarshal(b, &f), string(b))
		return f
	}
	collect := func(c *websocket.Conn, ids []int32) []int32 {
		for {
			f := read(c)
			if f.Type == "done" {
				return ids
			}
			require.Equal(t, "token", f.Type, "%+v", f)
			require.Equal(t, len(ids), f.Index)
			ids = append(ids, f.Token)
		}
	}
	gen := `{"type":"generate","id":"%s","prompt":"Hello world","max_tokens":24,"seed":7}`
	c := dial(base)
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf(gen, "before"))))
	var ids []int32
	for len(ids) < 6 {
		f := read(c)
		require.Equal(t, "token", f.Type)
		ids = append(ids, f.Token)
	}
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()

	base, _ = startServe(t, bin, args...)
	c = dial(base)
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"type":"resume","id":"before","from":6}`)))
	ids = collect(c, ids)
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf(gen, "uninterrupted"))))
	want := collect(c, nil)
	assert.Equal(t, want, ids)
}
