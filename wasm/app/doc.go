// Command app is the page's WASM module: it renders the Vugu UI (package
// ui) and only that. The engine runs in a Web Worker (shim/worker.js,
// dist/webinfer.wasm: the JS API's engine), started through
// shim/webinfer.js's connectEngine; the page loads the model there asking
// for every session event (features, device, kernel checks, the chosen
// path, tokens), applies them to its state, generates with the JS API's
// messages and (with ?autorun=1&report=URL) publishes the engine's report.
// ?worker=0 runs the engine on the page's thread instead.
//
// Build: GOOS=js GOARCH=wasm go build -o dist/app.wasm ./wasm/app
// (make build). Natively it only says so.
package main
