//go:build !(js && wasm)

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "gpubench runs as WASM: GOOS=js GOARCH=wasm go build -o dist/gpubench.wasm ./tests/bench/gpubench, then node scripts/node-gpu.mjs dist/gpubench.wasm MODEL")
	os.Exit(2)
}
