// Package jsutil holds the few helpers every JS-facing package needs: awaiting
// a JS Promise from Go without blocking the browser's event loop, and turning
// thrown JS exceptions into Go errors (through github.com/hack-pad/safejs)
// rather than panics.
//
// Everything here is built only for js/wasm; natively the package is empty so
// that `go test ./...` and `go vet ./...` still cover its importers.
package jsutil
