package server

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
)

// What protects the server from other origins and other clients: CORS
// for the pages of allowed origins only, a token to write reports, and
// per-client limits on concurrent generations.

// allowedOrigin says whether a request's Origin (scheme://host[:port]) is
// one of cfg.Origins' host patterns (path.Match, as the WebSocket's
// OriginPatterns) or the server's own host.
func (s *Server) allowedOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range s.cfg.Origins {
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(u.Host)); ok {
			return true
		}
	}
	return false
}

// cors answers the CORS side of /v1 and /api requests: an allowed origin
// gets Access-Control-Allow-Origin (and may fetch across origins under its
// own COEP); a preflight is answered here. It reports whether the request
// was answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if !s.allowedOrigin(r, origin) {
		if r.Method == http.MethodOptions {
			writeError(w, http.StatusForbidden, "origin", "origin "+origin+" is not allowed (serve --origin)")
			return true
		}
		return false // no CORS headers: the browser keeps the answer from the page
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// authorized says whether r may write reports: always without a
// ReportToken, else with "Authorization: Bearer <token>".
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.ReportToken == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.ReportToken)) == 1
}

// IsLoopback says whether addr (host:port) listens on loopback only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// clients counts each client's generations running over HTTP.
type clients struct {
	mu      sync.Mutex
	running map[string]int
}

// acquire takes one of key's max places, or says there is none.
func (c *clients) acquire(key string, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running == nil {
		c.running = map[string]int{}
	}
	if c.running[key] >= max {
		return false
	}
	c.running[key]++
	return true
}

func (c *clients) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[key]--; c.running[key] <= 0 {
		delete(c.running, key)
	}
}

// clientKey is who a request comes from: its remote address's host.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
