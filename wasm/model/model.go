package model

import (
	"errors"
	"fmt"
	"io"

	"github.com/webinfer/webinfer/wasm/cpu"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/quant"
	"github.com/webinfer/webinfer/wasm/tokenizer"
)

// Layer holds one transformer block's weights.
type Layer struct {
	AttnNorm   []float32  // (Embd)
	Wq         cpu.Weight // (Heads·HeadDim, Embd)
	Wk, Wv     cpu.Weight // (KVDim, Embd)
	Wo         cpu.Weight // (Embd, Heads·HeadDim)
	Bq, Bk, Bv []float32  // qwen2 biases, nil otherwise
	FFNNorm    []float32  // (Embd)
	Wgate, Wup cpu.Weight // (FF, Embd)
	Wdown      cpu.Weight // (Embd, FF)
}

// Model is a loaded model: configuration, weights and tokenizer.
type Model struct {
	Config
	Tokenizer  *tokenizer.Tokenizer
	TokEmbd    cpu.Weight // (Vocab, Embd): row t is token t's embedding
	OutputNorm []float32  // (Embd)
	Output     cpu.Weight // (Vocab, Embd); the embedding when tied
	RopeFreqs  []float32  // (RopeDims/2) frequency divisors, or nil
	Layers     []Layer
	// ChatTemplate is tokenizer.chat_template (Jinja source), or "".
	ChatTemplate string
	// ExactActivations makes every product use f32 activations (see
	// cpu.Activations.Exact): the reference for the WebGPU backend, which
	// keeps activations in f32. Off, products follow llama.cpp.
	ExactActivations bool
	// Profile, when set, accumulates the phases of the CPU decode passes
	// (StepProfile): the report's CPU step_ms.
	Profile *StepProfile
}

// ErrBadModel marks problems with the model file itself.
var ErrBadModel = errors.New("model: bad model")

// Load reads the model described by f from r (the file the header came from).
// Errors name the offending tensor or key.
func Load(f *gguf.File, r io.ReaderAt) (*Model, error) {
	return load(f, loader{f: f, r: r})
}

// LoadFromMemory is Load for a whole file held in memory (data): tensors
// are slices of data, not copies, which halves the memory a large model
// needs in a browser or under Node.
func LoadFromMemory(f *gguf.File, data []byte) (*Model, error) {
	return load(f, loader{f: f, mem: data})
}

// LoadLazy is Load that leaves the 2-D weights where they are in r (their
// Data nil, cpu.Weight.Src and Off set): the GPU upload reads them a piece
// at a time, so a model headed for the GPU never lies whole in memory.
// Materialize reads them in for the CPU path.
func LoadLazy(f *gguf.File, r io.ReaderAt) (*Model, error) {
	return load(f, loader{f: f, r: r, lazy: true})
}

// Lazy says whether some weights are still in the file (LoadLazy).
func (m *Model) Lazy() bool {
	lazy := false
	m.eachWeight(func(w *cpu.Weight) error {
		lazy = lazy || !w.Resident()
		return nil
	})
	return lazy
}

// Materialize reads every weight LoadLazy left in the file into memory,
// for the CPU path: in a browser whose CPU pool runs the weight's type,
// straight into the pool's memory (cpu.MaterializeOutside), else into
// Go's. The token embedding stays in Go's: each step reads a row of it.
func (m *Model) Materialize() error {
	return m.eachWeight(func(w *cpu.Weight) error {
		if w.Resident() {
			return nil
		}
		if w != &m.TokEmbd {
			if ok, err := cpu.MaterializeOutside(w); err != nil || ok {
				return err
			}
		}
		data, err := w.ReadRows(0, w.Rows)
		if err != nil {
			return err
		}
		w.SetData(data)
		return nil
	})
}

// eachWeight calls f on every 2-D weight (the tied output once, with the
// embedding).
func (m *Model) eachWeight(f func(*cpu.Weight) error) error {
	ws := []*cpu.Weight{&m.TokEmbd}
	if !m.TiedOutput {
		ws = append(ws, &m.Output)
	}
	for i := range m.Layers {
		ly := &m.Layers[i]
		ws = append(ws, &ly.Wq, &ly.Wk, &ly.Wv, &ly.Wo, &ly.Wgate, &ly.Wup, &ly.Wdown)
	}
	for _, w := range ws {
		if err := f(w); err != nil {
			return err
		}
	}
	if m.TiedOutput {
		m.Output = m.TokEmbd
	}
	return nil
}

func load(f *gguf.File, l loader) (*Model, error) {
	cfg, err := ConfigFromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadModel, err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadModel, err)
	}
	m := &Model{Config: cfg, Tokenizer: tok}
	// Time the CPU kernels now (a few milliseconds, once per process), not
	// inside the first product, where it would count as time to first token.
	cpu.Kernels()
	if v, ok := f.Get("tokenizer.chat_template"); ok {
		m.ChatTemplate, _ = v.Str()
	}

	if m.TokEmbd, err = l.weight("token_embd.weight", cfg.Embd, -1); err != nil {
		return nil, err
	}
	m.Vocab = m.TokEmbd.Rows
	if m.Vocab != tok.Size() {
		return nil, fmt.Errorf("%w: token_embd.weight has %d rows for %d tokens", ErrBadModel, m.Vocab, tok.Size())
	}
	if m.OutputNorm, err = l.vector("output_norm.weight", cfg.Embd); err != nil {
		return nil, err
	}
	if _, ok := f.Tensor("output.weight"); ok {
		if m.Output, err = l.weight("output.weight", cfg.Embd, m.Vocab); err != nil {
			return nil, err
		}
	} else {
		m.Output, m.TiedOutput = m.TokEmbd, true
	}
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		if m.RopeFreqs, err = l.vector("rope_freqs.weight", cfg.RopeDims/2); err != nil {
			return nil, err
		}
	}
	qDim := cfg.Heads * cfg.HeadDim
	for i := 0; i < cfg.Blocks; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		var ly Layer
		steps := []func() error{
			func() (e error) { ly.AttnNorm, e = l.vector(p+"attn_norm.weight", cfg.Embd); return },
			func() (e error) { ly.Wq, e = l.weight(p+"attn_q.weight", cfg.Embd, qDim); return },
			func() (e error) { ly.Wk, e = l.weight(p+"attn_k.weight", cfg.Embd, cfg.KVDim()); return },
			func() (e error) { ly.Wv, e = l.weight(p+"attn_v.weight", cfg.Embd, cfg.KVDim()); return },
			func() (e error) { ly.Wo, e = l.weight(p+"attn_output.weight", qDim, cfg.Embd); return },
			func() (e error) { ly.FFNNorm, e = l.vector(p+"ffn_norm.weight", cfg.Embd); return },
			func() (e error) { ly.Wgate, e = l.weight(p+"ffn_gate.weight", cfg.Embd, cfg.FF); return },
			func() (e error) { ly.Wup, e = l.weight(p+"ffn_up.weight", cfg.Embd, cfg.FF); return },
			func() (e error) { ly.Wdown, e = l.weight(p+"ffn_down.weight", cfg.FF, cfg.Embd); return },
		}
		if cfg.QKVBias {
			steps = append(steps,
				func() (e error) { ly.Bq, e = l.vector(p+"attn_q.bias", qDim); return },
				func() (e error) { ly.Bk, e = l.vector(p+"attn_k.bias", cfg.KVDim()); return },
				func() (e error) { ly.Bv, e = l.vector(p+"attn_v.bias", cfg.KVDim()); return },
			)
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return nil, err
			}
		}
		m.Layers = append(m.Layers, ly)
	}
	return m, nil
}

type loader struct {
	f    *gguf.File
	r    io.ReaderAt
	mem  []byte // the whole file, when it is in memory
	lazy bool   // 2-D weights stay in r (LoadLazy)
}

func (l loader) tensor(name string) (gguf.TensorInfo, []byte, error) {
	ti, ok := l.f.Tensor(name)
	if !ok {
		return ti, nil, fmt.Errorf("%w: missing tensor %s", ErrBadModel, name)
	}
	if !quant.IsSupported(ti.Type) {
		return ti, nil, fmt.Errorf("%w: unsupported tensor type %s for %s", ErrBadModel, ti.Type, name)
	}
	if l.mem != nil {
		off := l.f.DataOffset + ti.Offset
		if off+ti.Size > int64(len(l.mem)) {
			return ti, nil, fmt.Errorf("%w: tensor %s data ends past the end of the file", ErrBadModel, name)
		}
		return ti, l.mem[off : off+ti.Size : off+ti.Size], nil
	}
	data, err := l.f.ReadTensor(l.r, ti)
	if err != nil {
		return ti, nil, err
	}
	return ti, data, nil
}

// weight loads a 2-D weight with cols columns and rows rows (-1: any).
func (l loader) weight(name string, cols, rows int) (cpu.Weight, error) {
	if l.lazy {
		return l.lazyWeight(name, cols, rows)
	}
	ti, data, err := l.tensor(name)
	if err != nil {
		return cpu.Weight{}, err
	}
	if len(ti.Dims) != 2 || ti.Dims[0] != int64(cols) || (rows >= 0 && ti.Dims[1] != int64(rows)) {
		return cpu.Weight{}, fmt.Errorf("%w: %s has shape %v, want [%d %d]", ErrBadModel, name, ti.Dims, cols, rows)
	}
	w, err := cpu.NewWeight(name, ti.Type, int(ti.Dims[1]), cols, data)
	if err != nil {
		return cpu.Weight{}, fmt.Errorf("%w: %v", ErrBadModel, err)
	}
	return w, nil
}

// lazyWeight checks a 2-D weight's shape and type and records where its
// bytes are, reading none.
func (l loader) lazyWeight(name string, cols, rows int) (cpu.Weight, error) {
	ti, ok := l.f.Tensor(name)
	if !ok {
		return cpu.Weight{}, fmt.Errorf("%w: missing tensor %s", ErrBadModel, name)
	}
	if !quant.IsSupported(ti.Type) {
		return cpu.Weight{}, fmt.Errorf("%w: unsupported tensor type %s for %s", ErrBadModel, ti.Type, name)
	}
	if len(ti.Dims) != 2 || ti.Dims[0] != int64(cols) || (rows >= 0 && ti.Dims[1] != int64(rows)) {
		return cpu.Weight{}, fmt.Errorf("%w: %s has shape %v, want [%d %d]", ErrBadModel, name, ti.Dims, cols, rows)
	}
	if cols%ti.Type.BlockSize() != 0 || ti.Size != ti.Dims[1]*ti.Type.RowBytes(int64(cols)) {
		return cpu.Weight{}, fmt.Errorf("%w: %s: %d bytes for shape %v", ErrBadModel, name, ti.Size, ti.Dims)
	}
	return cpu.Weight{Name: name, Type: ti.Type, Rows: int(ti.Dims[1]), Cols: cols, Src: l.r, Off: l.f.DataOffset + ti.Offset}, nil
}

// vector loads a 1-D tensor of n elements as float32.
func (l loader) vector(name string, n int) ([]float32, error) {
	ti, data, err := l.tensor(name)
	if err != nil {
		return nil, err
	}
	if len(ti.Dims) != 1 || ti.Dims[0] != int64(n) {
		return nil, fmt.Errorf("%w: %s has shape %v, want [%d]", ErrBadModel, name, ti.Dims, n)
	}
	out := make([]float32, n)
	if err := quant.Dequantize(ti.Type, data, out); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadModel, name, err)
	}
	return out, nil
}
