//go:build !js

package api

// yieldToJS is the browser's (yield_js.go); natively goroutines run on
// their own threads and nothing waits for the generation to idle.
func yieldToJS() {}
