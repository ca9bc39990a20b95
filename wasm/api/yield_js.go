//go:build js

package api

import (
	"syscall/js"
	"time"
)

// yieldToJS lets the JS event loop in (the page's messages: an abort)
// and returns at its next turn. Through a MessageChannel, not a timer: a
// browser clamps nested timers to 4 ms, which a sleep would pay on every
// token of the CPU path.
func yieldToJS() {
	if yieldPort.IsUndefined() {
		time.Sleep(time.Millisecond)
		return
	}
	yieldPort.Call("postMessage", nil)
	<-yielded
}

var (
	yieldPort js.Value // a MessageChannel's port2; its port1 signals yielded
	yielded   = make(chan struct{}, 1)
)

func init() {
	mc := js.Global().Get("MessageChannel")
	if mc.Type() != js.TypeFunction {
		return
	}
	ch := mc.New()
	ch.Get("port1").Set("onmessage", js.FuncOf(func(js.Value, []js.Value) any {
		select {
		case yielded <- struct{}{}:
		default:
		}
		return nil
	}))
	yieldPort = ch.Get("port2")
}
