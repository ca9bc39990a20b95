// Command sizes prints what a user downloads from a folder: each script
// and WASM module's (.js, .wasm)
// size raw, gzip-compressed and brotli-compressed at the levels
// `webinfer serve` uses (internal/server/compress.go), as a Markdown
// table. `make dist` runs it on dist/webinfer.
package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/andybalholm/brotli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./scripts/sizes FOLDER")
		os.Exit(2)
	}
	dir := os.Args[1]
	entries, err := os.ReadDir(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var names []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".js" || ext == ".wasm") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	fmt.Println("| file | bytes | gzip | brotli |")
	fmt.Println("|---|---:|---:|---:|")
	var raw, gz, br int
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		g, b := gzipped(data), brotlied(data)
		raw, gz, br = raw+len(data), gz+g, br+b
		fmt.Printf("| %s | %d | %d | %d |\n", n, len(data), g, b)
	}
	fmt.Printf("| all | %d | %d | %d |\n", raw, gz, br)
}

func gzipped(data []byte) int {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
	w.Write(data)
	w.Close()
	return b.Len()
}

func brotlied(data []byte) int {
	var b bytes.Buffer
	w := brotli.NewWriterLevel(&b, 5)
	w.Write(data)
	w.Close()
	return b.Len()
}
