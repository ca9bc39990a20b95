// Package source opens a model file wherever it is — a local path, an
// http(s) URL, or in the browser a URL relative to the page (fetched as a
// stream) — reports the bytes as they arrive, and loads the model. It is
// the one way the CLI, the page, the session layer and the benchmarks get
// a model.
//
// In: a source string and a progress callback. Out: a *model.Model and a
// close function, or an error naming the source (a bad file wraps
// model.ErrBadModel or a *gguf.Error).
package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strings"

	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
)

// Progress is how much of a source has been read.
type Progress struct {
	Loaded, Total int64 // bytes; Total is -1 when unknown
}

// Info describes an opened source.
type Info struct {
	Name  string // the file's base name
	Bytes int64  // its size
}

// IsURL says whether src is fetched over HTTP wherever it runs.
func IsURL(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

// fetched says whether src is read over HTTP here: a URL, or, in a browser
// (js/wasm without a file system: os.Stat fails with ENOSYS), a URL
// relative to the page. Under Node (js/wasm with a file system) a path is
// a file, and a missing one an error naming it.
func fetched(src string) bool {
	if IsURL(src) {
		return true
	}
	if runtime.GOOS != "js" {
		return false
	}
	_, err := os.Stat(src)
	return err != nil && !errors.Is(err, fs.ErrNotExist)
}

// NameOf is the file name of a path or URL, without a query or fragment.
func NameOf(src string) string {
	name := path.Base(src)
	if i := strings.IndexAny(name, "?#"); i >= 0 {
		name = name[:i]
	}
	return name
}

// Load opens src and loads its model. Natively a path is read in place
// (tensor by tensor, never the whole file) and a URL is downloaded to a
// temporary file first; in js/wasm a blob: URL's model is loaded lazily
// (model.LoadLazy: the weights stay in the Blob) and a fetched source is
// read into memory.
// progress (may be nil) gets the bytes read as they arrive. close frees
// the file.
func Load(ctx context.Context, src string, progress func(Progress)) (*model.Model, Info, func(), error) {
	info := Info{Name: NameOf(src)}
	if isBlob(src) {
		// A model in the browser's keeping (the cache, or a File): read
		// lazily from there, never whole into the WASM memory (the GPU
		// upload reads it a chunk at a time; the CPU path materializes it).
		r, size, err := openBlob(ctx, src)
		if err != nil {
			return nil, info, nil, err
		}
		info.Bytes = size
		info.Name = "model.gguf"
		f, err := gguf.ReadAt(r, size)
		if err != nil {
			return nil, info, nil, fmt.Errorf("model: %w", err)
		}
		m, err := model.LoadLazy(f, r)
		if err != nil {
			return nil, info, nil, fmt.Errorf("model: %w", err)
		}
		if progress != nil {
			progress(Progress{Loaded: size, Total: size})
		}
		return m, info, func() {}, nil
	}
	if fetched(src) && runtime.GOOS == "js" {
		data, err := fetch(ctx, src, progress)
		if err != nil {
			return nil, info, nil, err
		}
		info.Bytes = int64(len(data))
		f, err := gguf.ReadAt(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return nil, info, nil, fmt.Errorf("%s: %w", src, err)
		}
		m, err := model.LoadFromMemory(f, data)
		if err != nil {
			return nil, info, nil, fmt.Errorf("%s: %w", src, err)
		}
		return m, info, func() {}, nil
	}
	f, fh, closeFn, err := Open(ctx, src, progress)
	if err != nil {
		return nil, info, nil, err
	}
	if st, err := fh.Stat(); err == nil {
		info.Bytes = st.Size()
	}
	m, err := model.Load(f, fh)
	if err != nil {
		closeFn()
		return nil, info, nil, fmt.Errorf("%s: %w", src, err)
	}
	return m, info, closeFn, nil
}

// Open opens src's GGUF header and tensor table as a file: a path, or a
// URL downloaded to a temporary file (removed by close). progress (may be
// nil) gets a download's bytes as they arrive.
func Open(ctx context.Context, src string, progress func(Progress)) (*gguf.File, *os.File, func(), error) {
	p := src
	cleanup := func() {}
	if IsURL(src) {
		tmp, err := download(ctx, src, progress)
		if err != nil {
			return nil, nil, nil, err
		}
		p, cleanup = tmp, func() { os.Remove(tmp) }
	}
	f, fh, err := gguf.Open(p)
	if err != nil {
		cleanup()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil, err // the error names the path already
		}
		return nil, nil, nil, fmt.Errorf("%s: %w", src, err)
	}
	if progress != nil && !IsURL(src) {
		if st, err := fh.Stat(); err == nil {
			progress(Progress{Loaded: st.Size(), Total: st.Size()})
		}
	}
	return f, fh, func() { fh.Close(); cleanup() }, nil
}

// counter reports the bytes read through it.
type counter struct {
	r        io.Reader
	n, total int64
	progress func(Progress)
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(Progress{Loaded: c.n, Total: c.total})
	}
	return n, err
}

// fetch reads src over HTTP into memory (a browser: no file system), the
// buffer sized from Content-Length when the server sends it.
func fetch(ctx context.Context, src string, progress func(Progress)) ([]byte, error) {
	body, length, err := get(ctx, src)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	buf := make([]byte, 0, max(length, 0))
	c := &counter{r: body, total: length, progress: progress}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
	}
}

// download writes src to a temporary file and returns its path.
func download(ctx context.Context, src string, progress func(Progress)) (string, error) {
	body, length, err := get(ctx, src)
	if err != nil {
		return "", err
	}
	defer body.Close()
	tmp, err := os.CreateTemp("", "webinfer-*.gguf")
	if err != nil {
		return "", err
	}
	c := &counter{r: body, total: length, progress: progress}
	if _, err := io.Copy(tmp, c); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", fmt.Errorf("%s: %w", src, err)
	}
	return tmp.Name(), tmp.Close()
}
