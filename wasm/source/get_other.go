//go:build !(js && wasm)

package source

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// get starts an HTTP GET of src: its body and length (-1: unknown).
func get(ctx context.Context, src string) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", src, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", src, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err // net/http names the URL
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, 0, fmt.Errorf("%s: HTTP %s", src, resp.Status)
	}
	return resp.Body, resp.ContentLength, nil
}
