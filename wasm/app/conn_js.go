//go:build js && wasm

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/hack-pad/safejs"
	"github.com/webinfer/webinfer/wasm/api"
	"github.com/webinfer/webinfer/wasm/jsutil"
	"github.com/webinfer/webinfer/wasm/session"
)

// conn is the page's side of the engine's port (shim/webinfer.js's
// connectEngine, as globalThis.webinferConnect): requests go out as
// wasm/api In messages, each with its own id; the engine's Out messages
// come back through the JS callback, queue here without blocking it, and
// are dispatched in order by one goroutine: session events to onEvent,
// the rest to the request they answer.
type conn struct {
	port    safejs.Value
	onEvent func(session.Event)

	mu     sync.Mutex
	queue  []string      // messages not yet dispatched
	wake   chan struct{} // something was queued
	calls  map[int]func(api.Out)
	nextID int
	dead   error // the engine stopped: every call fails so
}

// connect starts the engine (in a Web Worker unless inWorker is false).
func connect(ctx context.Context, inWorker bool, onEvent func(session.Event)) (*conn, error) {
	c := &conn{onEvent: onEvent, wake: make(chan struct{}, 1), calls: map[int]func(api.Out){}}
	onMessage, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		if len(args) == 1 {
			if s, err := args[0].String(); err == nil {
				c.push(s)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	onFail, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		msg := "the engine stopped"
		if len(args) == 1 {
			if s, err := args[0].String(); err == nil {
				msg = s
			}
		}
		b, _ := json.Marshal(api.Out{Ev: api.EvError, Code: string(session.CodeInternal), Message: msg})
		c.push(string(b))
		return nil
	})
	if err != nil {
		return nil, err
	}
	opts, err := jsutil.ValueFromJSON(fmt.Appendf(nil, `{"worker":%t}`, inWorker))
	if err != nil {
		return nil, err
	}
	p, err := safejs.Global().Call("webinferConnect", onMessage, onFail, opts)
	if err != nil {
		return nil, fmt.Errorf("starting the engine: %w", err)
	}
	if c.port, err = jsutil.Await(ctx, p); err != nil {
		return nil, fmt.Errorf("starting the engine: %w", err)
	}
	go c.dispatch()
	return c, nil
}

func (c *conn) push(s string) {
	c.mu.Lock()
	c.queue = append(c.queue, s)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) dispatch() {
	for range c.wake {
		c.mu.Lock()
		msgs := c.queue
		c.queue = nil
		c.mu.Unlock()
		for _, s := range msgs {
			var o api.Out
			if json.Unmarshal([]byte(s), &o) != nil {
				continue
			}
			c.deliver(o)
		}
	}
}

// deliver hands o to the session's events or to the call it answers; an
// error for no call (the engine as a whole) ends every call.
func (c *conn) deliver(o api.Out) {
	if o.Ev == api.EvSession && o.Event != nil {
		if e := o.Event.Event(); e != nil {
			c.onEvent(e)
		}
		return
	}
	if o.Ev == api.EvProgress { // the download's, on the engine's side
		phase := session.Phase(o.Phase)
		if o.Phase == "fetch" {
			phase = session.PhaseFetch
		}
		c.onEvent(session.Progress{Phase: phase, Text: o.Text, Loaded: o.Loaded, Total: o.Total})
		return
	}
	c.mu.Lock()
	var handlers []func(api.Out)
	if h := c.calls[o.ID]; h != nil && o.ID != 0 {
		handlers = append(handlers, h)
	} else if o.Ev == api.EvError && o.ID == 0 && !o.Recoverable {
		c.dead = errors.New(o.Message)
		for _, h := range c.calls {
			handlers = append(handlers, h)
		}
	}
	c.mu.Unlock()
	for _, h := range handlers {
		h(o)
	}
}

// start sends in with a new id and returns it, and a wait for its end:
// the ready, done or reply message, or an error (the engine's, carrying
// its code, or ctx's).
func (c *conn) start(ctx context.Context, in api.In) (int, func() (api.Out, error)) {
	end := make(chan api.Out, 1)
	c.mu.Lock()
	c.nextID++
	in.ID = c.nextID
	dead := c.dead
	c.calls[in.ID] = func(o api.Out) {
		switch o.Ev {
		case api.EvReady, api.EvDone, api.EvReply, api.EvError:
			select {
			case end <- o:
			default:
			}
		}
	}
	c.mu.Unlock()
	wait := func() (api.Out, error) {
		defer func() {
			c.mu.Lock()
			delete(c.calls, in.ID)
			c.mu.Unlock()
		}()
		if dead != nil {
			return api.Out{}, dead
		}
		select {
		case o := <-end:
			if o.Ev == api.EvError {
				return o, &engineError{code: session.Code(o.Code), msg: o.Message}
			}
			return o, nil
		case <-ctx.Done():
			return api.Out{}, ctx.Err()
		}
	}
	if dead == nil {
		c.send(in)
	}
	return in.ID, wait
}

// call is start, then its wait.
func (c *conn) call(ctx context.Context, in api.In) (api.Out, error) {
	_, wait := c.start(ctx, in)
	return wait()
}

// send posts in as it is (an abort names the request it ends).
func (c *conn) send(in api.In) {
	b, err := json.Marshal(in)
	if err != nil {
		return
	}
	_, _ = c.port.Call("send", string(b))
}

// engineError is an error message of the engine's, with its code.
type engineError struct {
	code session.Code
	msg  string
}

func (e *engineError) Error() string { return e.msg }
