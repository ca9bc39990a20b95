package ui

// Page is the root component.
type Page struct {
	State *State `vugu:"data"`
}
