//go:build !(js && wasm)

package webgpu

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNativeOpenIsUnavailable(t *testing.T) {
	_, err := Open(context.Background(), Options{})
	assert.ErrorIs(t, err, ErrUnavailable)
}
