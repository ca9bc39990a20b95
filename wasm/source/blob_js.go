//go:build js && wasm

package source

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/hack-pad/safejs"
	"github.com/webinfer/webinfer/wasm/jsutil"
)

// isBlob says whether src is a blob: URL (the JS API hands the engine a
// model kept in the cache, or given as a File, Blob or ArrayBuffer, so)
// or a growing source: a model still downloading on the page's side
// (shim/host.js), read as it arrives.
func isBlob(src string) bool {
	return strings.HasPrefix(src, "blob:") || strings.HasPrefix(src, growingPrefix)
}

// growingPrefix names a growing source: globalThis[src] is Blob-like
// (size, slice(a, b).arrayBuffer()), each read waiting for its bytes.
const growingPrefix = "webinfer-growing:"

// openBlob fetches a blob: URL's Blob (its bytes stay outside the WASM
// memory) and returns a ReaderAt over it and its size.
func openBlob(ctx context.Context, src string) (io.ReaderAt, int64, error) {
	if strings.HasPrefix(src, growingPrefix) {
		g, err := safejs.Global().Get(src)
		if err != nil || g.Type() != safejs.TypeObject {
			return nil, 0, fmt.Errorf("%s: no such download on this side", src)
		}
		r, size, err := readerOf(g)
		if err == nil {
			r.(*blobReader).growing = true
		}
		return r, size, err
	}
	fetch, err := safejs.Global().Get("fetch")
	if err != nil {
		return nil, 0, err
	}
	p, err := fetch.Invoke(src)
	if err != nil {
		return nil, 0, err
	}
	resp, err := jsutil.Await(ctx, p)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %s", src, jsutil.ErrorMessage(err))
	}
	bp, err := resp.Call("blob")
	if err != nil {
		return nil, 0, err
	}
	blob, err := jsutil.Await(ctx, bp)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %s", src, jsutil.ErrorMessage(err))
	}
	return readerOf(blob)
}

// readerOf is a ReaderAt over a Blob (or a growing source) and its size.
func readerOf(blob safejs.Value) (io.ReaderAt, int64, error) {
	sv, err := blob.Get("size")
	if err != nil {
		return nil, 0, err
	}
	size, err := sv.Float()
	if err != nil {
		return nil, 0, err
	}
	// Reads outlive the load (an upload again after a lost device, the CPU
	// path's materialization): not bound to ctx.
	return &blobReader{ctx: context.Background(), blob: blob, size: int64(size)}, int64(size), nil
}

// blobWindow is what a small read brings in at once: the GGUF header is
// read in many small pieces, each of which would otherwise be a trip
// through the JS event loop.
const blobWindow = 1 << 20

// blobReader reads a JS Blob's bytes by range (Blob.slice, arrayBuffer),
// small reads through a window of blobWindow bytes.
type blobReader struct {
	ctx  context.Context
	blob safejs.Value
	size int64
	// growing: a download still arriving (readAtLeast: a window fill
	// waits for the bytes asked for, not the whole window).
	growing bool

	mu     sync.Mutex
	win    []byte
	winOff int64
}

func (b *blobReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= b.size {
		return 0, io.EOF
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(p) >= blobWindow {
		n, err := b.read(p, off)
		if err == nil && n < len(p) {
			err = io.EOF
		}
		return n, err
	}
	if off < b.winOff || off+int64(len(p)) > b.winOff+int64(len(b.win)) {
		b.win = make([]byte, min(blobWindow, b.size-off))
		n, err := b.readAtLeast(b.win, off, len(p))
		if err != nil {
			b.win = nil
			return 0, err
		}
		b.win, b.winOff = b.win[:n], off
	}
	n := copy(p, b.win[off-b.winOff:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// read copies the bytes at off into p (up to the end of the blob).
func (b *blobReader) read(p []byte, off int64) (int, error) { return b.readAtLeast(p, off, len(p)) }

// readAtLeast copies the bytes at off into p: all of them from a Blob;
// from a growing source at least need of them (or up to its end), more
// where they have arrived.
func (b *blobReader) readAtLeast(p []byte, off int64, need int) (int, error) {
	end := min(b.size, off+int64(len(p)))
	var ap safejs.Value
	var err error
	if b.growing {
		ap, err = b.blob.Call("readAtLeast", float64(off), float64(end), float64(min(end, off+int64(need))))
	} else {
		var part safejs.Value
		if part, err = b.blob.Call("slice", float64(off), float64(end)); err == nil {
			ap, err = part.Call("arrayBuffer")
		}
	}
	if err != nil {
		return 0, err
	}
	ab, err := jsutil.Await(b.ctx, ap)
	if err != nil {
		return 0, fmt.Errorf("reading the model's bytes %d to %d: %s", off, end, jsutil.ErrorMessage(err))
	}
	u8, err := safejs.Global().Get("Uint8Array")
	if err != nil {
		return 0, err
	}
	arr, err := u8.New(ab)
	if err != nil {
		return 0, err
	}
	return safejs.CopyBytesToGo(p[:end-off], arr) // as many as arrived (Go copies the shorter)
}
