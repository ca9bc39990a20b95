// Package tokenizer turns text into token ids and back, exactly as
// llama.cpp does for the same GGUF vocabulary.
//
// In: a GGUF file's tokenizer.ggml.* metadata. Out: a Tokenizer with Encode
// (text → ids), Piece (id → bytes), Decode (ids → text) and a streaming
// Decoder that never emits half a UTF-8 character.
//
// Two vocabulary types: SentencePiece-style ("llama": scores, byte fallback
// with <0xXX> tokens, ▁ for spaces) and byte-level BPE ("gpt2": merges,
// GPT-2's byte-to-unicode map, and the pre-tokenizer named by
// tokenizer.ggml.pre). Special and user-defined tokens follow llama.cpp's
// rules (llama-vocab.cpp), and the package is tested against llama.cpp's
// own test vocabularies and their expected outputs.
package tokenizer

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/webinfer/webinfer/wasm/gguf"
)

// Kind is the vocabulary type (tokenizer.ggml.model).
type Kind int

const (
	SPM Kind = iota // "llama": SentencePiece
	BPE             // "gpt2": byte-level BPE
)

// Token types (tokenizer.ggml.token_type), as llama.cpp numbers them.
const (
	typeNormal      = 1
	typeUnknown     = 2
	typeControl     = 3
	typeUserDefined = 4
	typeUnused      = 5
	typeByte        = 6
)

// Tokenizer is a vocabulary and the rules for using it. It is read-only
// after FromGGUF and safe for concurrent use.
type Tokenizer struct {
	Kind           Kind
	Pre            string // tokenizer.ggml.pre ("" for SPM)
	tokens         []string
	scores         []float32
	types          []int32
	toID           map[string]int32
	ranks          map[string]int // BPE merges: "left right" → rank
	BOS, EOS, UNK  int32          // -1 when absent
	EOT, EOM       int32          // end-of-turn / end-of-message, -1 when absent
	AddBOS, AddEOS bool
	addSpacePrefix bool
	ignoreMerges   bool
	split          splitter
	specials       []int32 // special and user-defined tokens, longest text first
	byteToken      [256]int32
	eog            map[int32]bool // tokens that end generation
}

// ErrUnsupported is returned for vocabularies this package cannot run.
var ErrUnsupported = errors.New("tokenizer: unsupported tokenizer")

// FromGGUF builds the tokenizer described by a GGUF file's metadata.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	str := func(key string) string {
		v, _ := f.Get(key)
		s, _ := v.Str()
		return s
	}
	t := &Tokenizer{BOS: -1, EOS: -1, UNK: -1, EOT: -1, EOM: -1, eog: map[int32]bool{}}
	model := str("tokenizer.ggml.model")
	switch model {
	case "llama":
		t.Kind = SPM
		t.addSpacePrefix = true
		t.AddBOS = true
	case "gpt2":
		t.Kind = BPE
		t.Pre = str("tokenizer.ggml.pre")
		if t.Pre == "" {
			t.Pre = "default"
		}
		p, ok := preTokenizers[t.Pre]
		if !ok {
			return nil, fmt.Errorf("%w: pre-tokenizer %q", ErrUnsupported, t.Pre)
		}
		t.split, t.ignoreMerges = p.split, p.ignoreMerges
		t.AddBOS = p.ignoreMerges // llama.cpp turns add_bos on for the Llama 3 family
	case "":
		return nil, fmt.Errorf("tokenizer: the model has no tokenizer.ggml.model")
	default:
		return nil, fmt.Errorf("%w: model %q (want llama or gpt2)", ErrUnsupported, model)
	}

	tv, ok := f.Get("tokenizer.ggml.tokens")
	if !ok {
		return nil, errors.New("tokenizer: the model has no tokenizer.ggml.tokens")
	}
	if t.tokens, ok = tv.Strings(); !ok || len(t.tokens) == 0 {
		return nil, errors.New("tokenizer: tokenizer.ggml.tokens is not a non-empty array of strings")
	}
	n := len(t.tokens)
	if sv, ok := f.Get("tokenizer.ggml.scores"); ok {
		if t.scores, ok = sv.Float32s(); !ok || len(t.scores) != n {
			return nil, fmt.Errorf("tokenizer: tokenizer.ggml.scores has %d entries for %d tokens", sv.Len(), n)
		}
	}
	t.types = make([]int32, n)
	for i := range t.types {
		t.types[i] = typeNormal
	}
	if tyv, ok := f.Get("tokenizer.ggml.token_type"); ok {
		ints, ok := tyv.Ints()
		if !ok || len(ints) != n {
			return nil, fmt.Errorf("tokenizer: tokenizer.ggml.token_type has %d entries for %d tokens", tyv.Len(), n)
		}
		for i, v := range ints {
			t.types[i] = int32(v)
		}
	}
	t.toID = make(map[string]int32, n)
	for i, s := range t.tokens {
		if _, dup := t.toID[s]; !dup {
			t.toID[s] = int32(i)
		}
	}

	if t.Kind == BPE {
		mv, ok := f.Get("tokenizer.ggml.merges")
		if !ok {
			return nil, errors.New("tokenizer: a gpt2 tokenizer needs tokenizer.ggml.merges")
		}
		merges, ok := mv.Strings()
		if !ok {
			return nil, errors.New("tokenizer: tokenizer.ggml.merges is not an array of strings")
		}
		t.ranks = make(map[string]int, len(merges))
		for i, m := range merges {
			if !strings.Contains(m[min(1, len(m)):], " ") {
				return nil, fmt.Errorf("tokenizer: merge %d (%q) has no space", i, m)
			}
			if _, dup := t.ranks[m]; !dup {
				t.ranks[m] = i
			}
		}
	}

	id := func(key string, dst *int32) error {
		v, ok := f.Get(key)
		if !ok {
			return nil
		}
		x, ok := v.Int()
		if !ok || x < 0 || x >= int64(n) {
			return fmt.Errorf("tokenizer: %s = %v is not a token id", key, v)
		}
		*dst = int32(x)
		return nil
	}
	for _, kv := range []struct {
		key string
		dst *int32
	}{
		{"tokenizer.ggml.bos_token_id", &t.BOS}, {"tokenizer.ggml.eos_token_id", &t.EOS},
		{"tokenizer.ggml.unknown_token_id", &t.UNK}, {"tokenizer.ggml.eot_token_id", &t.EOT},
		{"tokenizer.ggml.eom_token_id", &t.EOM},
	} {
		if err := id(kv.key, kv.dst); err != nil {
			return nil, err
		}
	}
	if t.Kind == SPM {
		// SentencePiece's fixed ids, when the metadata does not say.
		for _, d := range []struct {
			dst *int32
			v   int32
		}{{&t.UNK, 0}, {&t.BOS, 1}, {&t.EOS, 2}} {
			if *d.dst < 0 && int(d.v) < n {
				*d.dst = d.v
			}
		}
	}
	boolKey := func(key string, dst *bool) {
		if v, ok := f.Get(key); ok {
			if b, ok := v.Bool(); ok {
				*dst = b
			}
		}
	}
	boolKey("tokenizer.ggml.add_bos_token", &t.AddBOS)
	boolKey("tokenizer.ggml.add_eos_token", &t.AddEOS)
	boolKey("tokenizer.ggml.add_space_prefix", &t.addSpacePrefix)

	// Byte tokens: <0xXX> in SPM, GPT-2's byte characters in BPE.
	for b := 0; b < 256; b++ {
		t.byteToken[b] = -1
		key := fmt.Sprintf("<0x%02X>", b)
		if t.Kind == BPE {
			key = string(byteToRune[b])
		}
		if id, ok := t.toID[key]; ok {
			t.byteToken[b] = id
		}
	}

	for i, ty := range t.types {
		if ty == typeControl || ty == typeUserDefined || ty == typeUnknown {
			t.specials = append(t.specials, int32(i))
		}
	}
	sort.SliceStable(t.specials, func(a, b int) bool {
		return len(t.tokens[t.specials[a]]) > len(t.tokens[t.specials[b]])
	})

	t.eog[t.EOS] = true
	t.eog[t.EOT] = true
	t.eog[t.EOM] = true
	delete(t.eog, -1)
	for i, s := range t.tokens {
		// llama.cpp also ends generation on these control tokens by name.
		switch s {
		case "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "<|end_of_text|>":
			if t.types[i] == typeControl || t.types[i] == typeUserDefined {
				t.eog[int32(i)] = true
			}
		}
	}
	return t, nil
}

// Size is the number of tokens in the vocabulary.
func (t *Tokenizer) Size() int { return len(t.tokens) }

// Text is a token's text as stored in the vocabulary.
func (t *Tokenizer) Text(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// IsEOG reports whether id ends generation (EOS, EOT, EOM and the like).
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// IsControl reports whether id is a control token (BOS, EOS, chat markers).
func (t *Tokenizer) IsControl(id int32) bool {
	return id >= 0 && int(id) < len(t.types) && t.types[id] == typeControl
}
