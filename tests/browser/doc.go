// Package browser holds the end-to-end tests that run the built page and the
// engine's js/wasm Go tests in real headless browsers: Chromium (WebGPU on
// SwiftShader), Firefox ESR (WebGPU on lavapipe) and WebKitGTK (no WebGPU).
//
// They need the browsers (scripts/setup.sh installs them) and the built page
// (make build), so they only build with the "browser" tag:
//
//	make test-browser   (or: go test -tags browser ./tests/browser -v)
//
// Two harnesses: chromedp drives Chromium for DOM checks; a driverless one
// works in every engine: the page (or a Go test binary) runs, POSTs its
// report to the test server, and the test then ends the browser.
package browser
