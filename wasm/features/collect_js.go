//go:build js && wasm

package features

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hack-pad/safejs"
	"github.com/webinfer/webinfer/wasm/jsutil"
)

// Collect runs shim/features.js's probe (globalThis.webinferFeatures) in
// this page or worker and decodes its report; Path is left to Choose.
func Collect(ctx context.Context) (Report, error) {
	var r Report
	mod, err := safejs.Global().Get("webinferFeatures")
	if err != nil || mod.IsUndefined() {
		return r, fmt.Errorf("shim/features.js is not loaded")
	}
	p, err := mod.Call("collect")
	if err != nil {
		return r, err
	}
	v, err := jsutil.Await(ctx, p)
	if err != nil {
		return r, err
	}
	b, err := jsutil.JSON(v)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}
