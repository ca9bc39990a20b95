// Package headless says how this project launches headless browsers, so
// that the browser tests (tests/browser) and the browser benchmarks
// (webinfer bench) start them the same way (../shared/BROWSERS.md).
package headless

import "os/exec"

// ChromiumFlags turn on WebGPU (SwiftShader) and keep Chromium off the
// closed network, which it would otherwise flood with refused connections.
var ChromiumFlags = []string{
	"--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps", "--no-default-browser-check", "--disable-gpu-sandbox",
}

// Chromium is the command that opens url in headless Chromium with a
// fresh profile in userDataDir.
func Chromium(userDataDir, url string) *exec.Cmd {
	args := append(append([]string{}, ChromiumFlags...), "--user-data-dir="+userDataDir, url)
	return exec.Command("chromium", args...)
}
