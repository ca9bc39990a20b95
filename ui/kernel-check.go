package ui

// KernelCheck shows the kernel self-checks.
type KernelCheck struct {
	State *State `vugu:"data"`
}
