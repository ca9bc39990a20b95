package source

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/synth/synthtest"
)

func fixture(t *testing.T) string { return synthtest.Path(t, "tiny", gguf.TypeQ8_0, 1) }

func TestLoadPathAndURL(t *testing.T) {
	path := fixture(t)
	st, err := os.Stat(path)
	require.NoError(t, err)
	var last Progress
	m, info, closeFn, err := Load(context.Background(), path, func(p Progress) { last = p })
	require.NoError(t, err)
	defer closeFn()
	assert.Equal(t, filepath.Base(path), info.Name)
	assert.Equal(t, st.Size(), info.Bytes)
	assert.Equal(t, Progress{Loaded: st.Size(), Total: st.Size()}, last)

	if runtime.GOOS == "js" {
		// js/wasm fetches with the host's fetch, which cannot reach a test
		// server inside this process; the browser tests fetch real models.
		return
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(path))))
	defer srv.Close()
	var calls int
	m2, info2, close2, err := Load(context.Background(), srv.URL+"/"+filepath.Base(path)+"?v=1", func(p Progress) { calls++; last = p })
	require.NoError(t, err)
	defer close2()
	assert.Equal(t, info.Name, info2.Name, "the query is not part of the name")
	assert.Equal(t, st.Size(), last.Loaded)
	assert.Equal(t, st.Size(), last.Total)
	assert.Greater(t, calls, 0)
	assert.Equal(t, m.Config, m2.Config)
}

func TestLoadErrors(t *testing.T) {
	_, _, _, err := Load(context.Background(), filepath.Join(t.TempDir(), "none.gguf"), nil)
	assert.ErrorIs(t, err, os.ErrNotExist)

	bad := filepath.Join(t.TempDir(), "bad.gguf")
	require.NoError(t, os.WriteFile(bad, []byte("not a model at all"), 0o644))
	_, _, _, err = Load(context.Background(), bad, nil)
	assert.ErrorIs(t, err, gguf.ErrBadMagic)
	assert.Contains(t, err.Error(), bad)

	if runtime.GOOS != "js" { // the host's fetch cannot reach a test server in this process
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		_, _, _, err = Load(context.Background(), srv.URL+"/missing.gguf", nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "404")
	}

	// A file that is a GGUF but not a model: model.ErrBadModel.
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	f, err := os.Create(filepath.Join(t.TempDir(), "empty.gguf"))
	require.NoError(t, err)
	_, err = w.WriteTo(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, _, _, err = Load(context.Background(), f.Name(), nil)
	assert.ErrorIs(t, err, model.ErrBadModel)
}
