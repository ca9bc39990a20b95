//go:build js && wasm

package jsutil

import (
	"context"
	"fmt"

	"github.com/hack-pad/safejs"
)

// PostJSON POSTs body (JSON) to url with the host's fetch and returns the
// answer's HTTP status. (Not net/http: in js/wasm it is fetch underneath
// too, and it would bring TLS and the rest into the module.)
func PostJSON(ctx context.Context, url string, body []byte) (int, error) {
	fetch, err := safejs.Global().Get("fetch")
	if err != nil || fetch.Type() != safejs.TypeFunction {
		return 0, fmt.Errorf("this host has no fetch")
	}
	opts, err := ValueFromJSON([]byte(`{"method":"POST","headers":{"Content-Type":"application/json"}}`))
	if err != nil {
		return 0, err
	}
	if err := opts.Set("body", string(body)); err != nil {
		return 0, err
	}
	p, err := fetch.Invoke(url, opts)
	if err != nil {
		return 0, err
	}
	resp, err := Await(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("%s", ErrorMessage(err))
	}
	status, err := resp.Get("status")
	if err != nil {
		return 0, err
	}
	return status.Int()
}
