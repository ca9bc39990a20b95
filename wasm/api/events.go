package api

import (
	"errors"

	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/session"
)

// SessionEvent is a session's event on the wire, for a page that shows
// the whole session (the playground's panels: features, device, kernel
// checks, the chosen path), not only what the JS API's calls return. A
// load with Events set gets one "session" message per event, in order.
// Exactly one field is set.
type SessionEvent struct {
	Progress     *session.Progress     `json:"progress,omitempty"`
	Detected     *session.Detected     `json:"detected,omitempty"`
	DeviceOpened *session.DeviceOpened `json:"deviceOpened,omitempty"`
	Checked      *session.Checked      `json:"checked,omitempty"`
	Loaded       *session.Loaded       `json:"loaded,omitempty"`
	Chosen       *session.Chosen       `json:"chosen,omitempty"`
	Started      *session.Started      `json:"started,omitempty"`
	Token        *session.Token        `json:"token,omitempty"`
	Done         *DoneEvent            `json:"done,omitempty"`
	DeviceLost   *session.DeviceLost   `json:"deviceLost,omitempty"`
	Fallback     *session.Fallback     `json:"fallback,omitempty"`
	Error        *session.Error        `json:"error,omitempty"`
}

// DoneEvent is session.Done with its error as text.
type DoneEvent struct {
	Result engine.Result `json:"result"`
	Err    string        `json:"err,omitempty"`
}

// EncodeEvent is e's wire form.
func EncodeEvent(e session.Event) SessionEvent {
	var w SessionEvent
	switch e := e.(type) {
	case session.Progress:
		w.Progress = &e
	case session.Detected:
		w.Detected = &e
	case session.DeviceOpened:
		w.DeviceOpened = &e
	case session.Checked:
		w.Checked = &e
	case session.Loaded:
		w.Loaded = &e
	case session.Chosen:
		w.Chosen = &e
	case session.Started:
		w.Started = &e
	case session.Token:
		w.Token = &e
	case session.Done:
		d := &DoneEvent{Result: e.Result}
		if e.Err != nil {
			d.Err = e.Err.Error()
		}
		w.Done = d
	case session.DeviceLost:
		w.DeviceLost = &e
	case session.Fallback:
		w.Fallback = &e
	case session.Error:
		w.Error = &e
	}
	return w
}

// Event is the session event w carries; nil when it carries none (a
// newer engine's kind: the page ignores it).
func (w SessionEvent) Event() session.Event {
	switch {
	case w.Progress != nil:
		return *w.Progress
	case w.Detected != nil:
		return *w.Detected
	case w.DeviceOpened != nil:
		return *w.DeviceOpened
	case w.Checked != nil:
		return *w.Checked
	case w.Loaded != nil:
		return *w.Loaded
	case w.Chosen != nil:
		return *w.Chosen
	case w.Started != nil:
		return *w.Started
	case w.Token != nil:
		return *w.Token
	case w.Done != nil:
		d := session.Done{Result: w.Done.Result}
		if w.Done.Err != "" {
			d.Err = errors.New(w.Done.Err)
		}
		return d
	case w.DeviceLost != nil:
		return *w.DeviceLost
	case w.Fallback != nil:
		return *w.Fallback
	case w.Error != nil:
		return *w.Error
	}
	return nil
}
