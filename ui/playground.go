package ui

import "github.com/vugu/vugu"

// Playground is the prompt box, the Generate and Stop buttons and the
// streamed output.
type Playground struct {
	State *State `vugu:"data"`
}

// Generate starts a generation with the current prompt (in a goroutine:
// Vugu holds the lock inside event handlers, and generation is slow).
func (c *Playground) Generate(e vugu.DOMEvent) {
	if c.State.OnGenerate != nil && !c.State.Generating {
		c.State.Generating = true
		go c.State.OnGenerate(c.State.Prompt)
	}
}

// Stop asks the running generation to stop.
func (c *Playground) Stop(e vugu.DOMEvent) {
	if c.State.OnStop != nil {
		c.State.OnStop()
	}
}
