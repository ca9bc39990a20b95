//go:build !(js && wasm)

package source

import (
	"context"
	"errors"
	"io"
)

// isBlob: blob: URLs exist in browsers only.
func isBlob(string) bool { return false }

func openBlob(context.Context, string) (io.ReaderAt, int64, error) {
	return nil, 0, errors.New("source: blob: URLs exist in browsers only")
}
