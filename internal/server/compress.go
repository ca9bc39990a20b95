package server

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
)

// Static files are sent brotli- or gzip-compressed when the client accepts
// it (the page's WASM module: 16 MB raw, about a quarter of that gzipped).
// Each file is compressed once per version (path, size, modification
// time) and kept in memory: compressing 16 MB costs about a second.

// compressible are the extensions worth compressing (models are not:
// quantized weights barely shrink).
var compressible = map[string]bool{".wasm": true, ".js": true, ".mjs": true, ".html": true, ".css": true, ".json": true, ".ts": true, ".svg": true}

// compressedFile is one version of a file, compressed both ways.
type compressedFile struct {
	size     int64
	modTime  time.Time
	br, gzip []byte
}

// compressor keeps compressed files by path.
type compressor struct {
	mu    sync.Mutex
	files map[string]*compressedFile
}

// encoding picks the encoding to send for an Accept-Encoding header: br,
// then gzip; "" for none.
func encoding(accept string) string {
	has := func(name string) bool {
		for _, part := range strings.Split(accept, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(coding), name) && !strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") {
				return true
			}
		}
		return false
	}
	switch {
	case has("br"):
		return "br"
	case has("gzip"):
		return "gzip"
	}
	return ""
}

// get returns the compressed bytes of file in enc ("br" or "gzip"),
// compressing it the first time this version of it is asked for in enc.
func (c *compressor) get(file string, st os.FileInfo, enc string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock() // one compression at a time: they are CPU-bound
	f := c.files[file]
	if f == nil || f.size != st.Size() || !f.modTime.Equal(st.ModTime()) {
		f = &compressedFile{size: st.Size(), modTime: st.ModTime()}
		if c.files == nil {
			c.files = map[string]*compressedFile{}
		}
		c.files[file] = f
	}
	out := &f.gzip
	if enc == "br" {
		out = &f.br
	}
	if *out != nil {
		return *out, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	var w io.WriteCloser
	if enc == "br" {
		w = brotli.NewWriterLevel(&b, 5)
	} else {
		w, _ = gzip.NewWriterLevel(&b, gzip.DefaultCompression)
	}
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	*out = b.Bytes()
	return *out, nil
}

// serveFile sends file, compressed when the client accepts it and the
// file's type is worth it; else as http.ServeFile does (ranges included).
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, file string, st os.FileInfo) {
	w.Header().Add("Vary", "Accept-Encoding")
	enc := encoding(r.Header.Get("Accept-Encoding"))
	if enc == "" || !compressible[path.Ext(file)] || r.Header.Get("Range") != "" {
		http.ServeFile(w, r, file)
		return
	}
	body, err := s.gz.get(file, st, enc)
	if err != nil {
		http.ServeFile(w, r, file)
		return
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", contentType(file))
	}
	w.Header().Set("Content-Encoding", enc)
	// The compressed body's own validator: the raw file's, marked.
	w.Header().Set("ETag", fmt.Sprintf(`"%s-%d-%d"`, enc, st.Size(), st.ModTime().UnixNano()))
	http.ServeContent(w, r, "", st.ModTime(), bytes.NewReader(body))
}

// contentType names file's type by its extension.
func contentType(file string) string {
	switch path.Ext(file) {
	case ".wasm":
		return "application/wasm"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".json":
		return "application/json"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}
