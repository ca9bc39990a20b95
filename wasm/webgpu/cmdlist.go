package webgpu

// Opcodes of the command list; keep in step with shim/gpu.js.
const (
	opDispatch = 1 // pipeline, bindGroup, x, y, z
	opCopy     = 2 // src, srcOff lo, hi, dst, dstOff lo, hi, size lo, hi
)

// CommandList records one step's GPU work as a flat []uint32, which the shim
// replays into one command encoder and one submit. Consecutive dispatches
// share one compute pass. Reset and reuse it every step: recording allocates
// nothing once the slice has grown.
type CommandList struct {
	words []uint32
	count int
}

// Dispatch records a compute dispatch of x*y*z workgroups.
func (c *CommandList) Dispatch(p Pipeline, bg BindGroup, x, y, z uint32) {
	c.words = append(c.words, opDispatch, uint32(p), uint32(bg), x, y, z)
	c.count++
}

// Copy records a buffer-to-buffer copy of size bytes (multiples of 4).
func (c *CommandList) Copy(src Buffer, srcOffset int64, dst Buffer, dstOffset int64, size int64) {
	c.words = append(c.words, opCopy, src.id)
	c.words = appendU64(c.words, uint64(srcOffset))
	c.words = append(c.words, dst.id)
	c.words = appendU64(c.words, uint64(dstOffset))
	c.words = appendU64(c.words, uint64(size))
	c.count++
}

// Reset empties the list, keeping its storage.
func (c *CommandList) Reset() {
	c.words = c.words[:0]
	c.count = 0
}

// Len is the number of commands recorded.
func (c *CommandList) Len() int { return c.count }

// Words is the encoded list, as the shim reads it.
func (c *CommandList) Words() []uint32 { return c.words }

func appendU64(w []uint32, v uint64) []uint32 {
	return append(w, uint32(v), uint32(v>>32))
}
