// Package headless says how this project launches headless browsers, so
// that the browser tests (tests/browser) and the browser benchmarks
// (webinfer bench) start them the same way (../shared/BROWSERS.md).
package headless

import (
	"os"
	"os/exec"
	"path/filepath"
)

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

// FirefoxPrefs turn WebGPU on (lavapipe) and quiet first-run chores.
const FirefoxPrefs = `user_pref("dom.webgpu.enabled", true);
user_pref("gfx.webgpu.ignore-blocklist", true);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("browser.safebrowsing.update.enabled", false);
`

// Firefox is the command that opens url in headless Firefox ESR with a
// fresh profile in profileDir (FirefoxPrefs written into it). Firefox
// starts child processes: end the command's whole process group.
func Firefox(profileDir, url string) (*exec.Cmd, error) {
	if err := os.WriteFile(filepath.Join(profileDir, "user.js"), []byte(FirefoxPrefs), 0o644); err != nil {
		return nil, err
	}
	return exec.Command("firefox-esr", "--headless", "--no-remote", "--profile", profileDir, url), nil
}
