//go:build js && wasm

package source

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/hack-pad/safejs"
	"github.com/webinfer/webinfer/wasm/jsutil"
)

// get starts a GET of src with the JS fetch (a page's or worker's, or
// Node's): its body, read chunk by chunk from the response's stream, and
// its length (-1: unknown). Not net/http: its js/wasm transport is fetch
// too, and it would bring TLS and the rest of net/http into the WASM
// module (about a third of its size).
func get(ctx context.Context, src string) (io.ReadCloser, int64, error) {
	fetch, err := safejs.Global().Get("fetch")
	if err != nil || fetch.Type() != safejs.TypeFunction {
		return nil, 0, fmt.Errorf("%s: this host has no fetch", src)
	}
	ctl, err := safejs.Global().Get("AbortController")
	if err != nil {
		return nil, 0, err
	}
	abort, err := ctl.New()
	if err != nil {
		return nil, 0, err
	}
	signal, err := abort.Get("signal")
	if err != nil {
		return nil, 0, err
	}
	opts, err := jsutil.ValueFromJSON([]byte(`{}`))
	if err != nil {
		return nil, 0, err
	}
	if err := opts.Set("signal", signal); err != nil {
		return nil, 0, err
	}
	p, err := fetch.Invoke(src, opts)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", src, err)
	}
	resp, err := jsutil.Await(ctx, p)
	if err != nil {
		_, _ = abort.Call("abort")
		return nil, 0, fmt.Errorf("%s: %s", src, jsutil.ErrorMessage(err))
	}
	ok, _ := resp.Get("ok")
	if b, _ := ok.Bool(); !b {
		status, _ := resp.Get("status")
		n, _ := status.Int()
		return nil, 0, fmt.Errorf("%s: HTTP %d", src, n)
	}
	length := int64(-1)
	if headers, err := resp.Get("headers"); err == nil {
		if v, err := headers.Call("get", "Content-Length"); err == nil && v.Type() == safejs.TypeString {
			s, _ := v.String()
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				length = n
			}
		}
	}
	body, err := resp.Get("body")
	if err != nil || body.IsNull() {
		return nil, 0, fmt.Errorf("%s: the response has no body stream", src)
	}
	reader, err := body.Call("getReader")
	if err != nil {
		return nil, 0, err
	}
	return &jsBody{ctx: ctx, src: src, reader: reader, abort: abort}, length, nil
}

// jsBody reads a fetch response's stream.
type jsBody struct {
	ctx    context.Context
	src    string
	reader safejs.Value
	abort  safejs.Value
	chunk  []byte // what is left of the last chunk
	done   bool
}

func (b *jsBody) Read(p []byte) (int, error) {
	for len(b.chunk) == 0 {
		if b.done {
			return 0, io.EOF
		}
		pr, err := b.reader.Call("read")
		if err != nil {
			return 0, err
		}
		r, err := jsutil.Await(b.ctx, pr)
		if err != nil {
			return 0, fmt.Errorf("reading: %s", jsutil.ErrorMessage(err))
		}
		done, _ := r.Get("done")
		if d, _ := done.Bool(); d {
			b.done = true
			continue
		}
		v, err := r.Get("value")
		if err != nil {
			return 0, err
		}
		n, _ := v.Length()
		b.chunk = make([]byte, n)
		if _, err := safejs.CopyBytesToGo(b.chunk, v); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.chunk)
	b.chunk = b.chunk[n:]
	return n, nil
}

func (b *jsBody) Close() error {
	if !b.done {
		_, _ = b.abort.Call("abort")
	}
	return nil
}
