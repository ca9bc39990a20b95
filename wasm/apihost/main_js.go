//go:build js && wasm

package main

import (
	"fmt"
	"os"
	"syscall/js"

	"github.com/webinfer/webinfer/wasm/api"
	"github.com/webinfer/webinfer/wasm/features"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "webinfer engine: start it through shim/host.js (no port name given)")
		os.Exit(2)
	}
	port := js.Global().Get(os.Args[1])
	if port.Type() != js.TypeObject {
		fmt.Fprintf(os.Stderr, "webinfer engine: globalThis.%s is not set\n", os.Args[1])
		os.Exit(2)
	}
	post := port.Get("post")
	h := api.NewHost(api.HostConfig{
		Post:   func(msg []byte) { post.Invoke(string(msg)) },
		Detect: features.Collect,
	})
	// Receive never blocks (it starts goroutines), as a JS callback must.
	receive := js.FuncOf(func(this js.Value, args []js.Value) any {
		if len(args) == 1 && args[0].Type() == js.TypeString {
			h.Receive([]byte(args[0].String()))
		}
		return nil
	})
	port.Set("receive", receive)
	port.Call("ready")
	select {} // serve until the worker (or page) goes away
}
