package report

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEngineFromUA(t *testing.T) {
	cases := []struct {
		name, ua, engine, version string
	}{
		{"chromium headless", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.8078.108 Safari/537.36", "chromium", "156.0.8078.108"},
		{"firefox esr", "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0", "firefox", "153.0"},
		{"webkitgtk minibrowser", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15", "webkit", "18.0"},
		{"node", "Node.js/20.20.2", "node", "20.20.2"},
		{"empty", "", "unknown", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := EngineFromUA(tc.ua)
			assert.Equal(t, tc.engine, e.Name)
			assert.Equal(t, tc.version, e.Version)
		})
	}
}
