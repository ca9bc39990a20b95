package ui

// AdapterPanel shows the detected features, the adapter and the code path.
type AdapterPanel struct {
	State *State `vugu:"data"`
}
