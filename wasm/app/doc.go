// Command app is the page's WASM module: it renders the Vugu UI (package ui)
// and runs the engine in the page: detects features, chooses the code path,
// opens WebGPU through the shim, checks the kernels against the Go
// references, and (with ?autorun=1&report=URL) reports the run.
//
// Build: GOOS=js GOARCH=wasm go build -o dist/app.wasm ./wasm/app
// (make build). Natively it only says so.
package main
