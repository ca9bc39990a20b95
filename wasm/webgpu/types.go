package webgpu

import "unsafe"

// BufferUsage says how a buffer may be used (flags understood by the shim).
type BufferUsage uint32

const (
	UsageStorage BufferUsage = 1 << iota // bound as var<storage>
	UsageUniform                         // bound as var<uniform>
	UsageCopySrc                         // read back, or copied from
	UsageCopyDst                         // written from Go, or copied to
)

// Buffer is a GPU buffer's handle and its size in bytes.
type Buffer struct {
	id   uint32
	Size int64
}

// Binding is a buffer or a range of one (Size 0: the whole buffer).
type Binding struct {
	Buffer       Buffer
	Offset, Size int64
}

// Whole binds all of b.
func Whole(b Buffer) Binding { return Binding{Buffer: b} }

// Pipeline is a compiled compute pipeline's handle.
type Pipeline uint32

// BindGroup is a bind group's handle (group 0 of one pipeline).
type BindGroup uint32

// AdapterInfo is what the adapter says about itself. Browsers may leave the
// strings empty (Firefox does here).
type AdapterInfo struct {
	Vendor            string `json:"vendor"`
	Architecture      string `json:"architecture"`
	Device            string `json:"device"`
	Description       string `json:"description"`
	IsFallbackAdapter bool   `json:"isFallbackAdapter"`
	SubgroupMinSize   int    `json:"subgroupMinSize,omitempty"`
	SubgroupMaxSize   int    `json:"subgroupMaxSize,omitempty"`
}

// Info describes the adapter and the device the engine obtained: the
// features and limits here are the device's, which the shim raised to the
// adapter's maximum for the limits the engine cares about.
type Info struct {
	Adapter              AdapterInfo        `json:"adapter"`
	Features             []string           `json:"features"`
	AdapterFeatures      []string           `json:"adapterFeatures"`
	Limits               map[string]float64 `json:"limits"`
	WGSLLanguageFeatures []string           `json:"wgslLanguageFeatures"`
}

// HasFeature reports whether the device was created with feature f.
func (i Info) HasFeature(f string) bool {
	for _, g := range i.Features {
		if g == f {
			return true
		}
	}
	return false
}

// Limit returns a device limit, or 0 when unknown.
func (i Info) Limit(name string) int64 { return int64(i.Limits[name]) }

// Stats counts the shim's work since the device was opened.
type Stats struct {
	Submits           int   `json:"submits"`
	Dispatches        int   `json:"dispatches"`
	Copies            int   `json:"copies"`
	Reads             int   `json:"reads"`
	Writes            int   `json:"writes"`
	PipelinesCompiled int   `json:"pipelinesCompiled"`
	BufferBytes       int64 `json:"bufferBytes"` // in the buffers made and not yet destroyed
}

// Options tune Open.
type Options struct {
	// PowerPreference is "high-performance" (default) or "low-power".
	PowerPreference string `json:"powerPreference,omitempty"`
	// ForceFallbackAdapter asks for the browser's software adapter.
	ForceFallbackAdapter bool `json:"forceFallbackAdapter,omitempty"`
	// DisableFeatures lists features not to enable even where present, to
	// test the paths without them (e.g. "shader-f16", "subgroups").
	DisableFeatures []string `json:"disableFeatures,omitempty"`
}

// Float32Bytes views a []float32 as its little-endian bytes, without copying.
func Float32Bytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), len(f)*4)
}

// BytesToFloat32 copies little-endian bytes into a new []float32.
func BytesToFloat32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	copy(Float32Bytes(out), b)
	return out
}
