// Command kjv makes the embedded default model's data and turns trained
// weights into GGUF files (see assets/models/README.md):
//
//	go run ./scripts/kjv prepare --out .kjv
//	    extracts the King James Bible from Debian's bible-kjv (public
//	    domain), trains a byte-level BPE vocabulary on it, and writes
//	    vocab.gguf, train.bin and val.bin (uint16 token ids) and meta.json.
//	go run ./scripts/kjv export --weights W --vocab .kjv/vocab.gguf --type Q8_0 --out assets/models/kjv-q8_0.gguf
//	    writes trained weights (scripts/train_kjv.py's weights.bin) as a
//	    llama GGUF model with our writer.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/quant"
	"github.com/webinfer/webinfer/wasm/tokenizer"
)

const (
	vocabSize = 4096
	special   = "<|endoftext|>"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kjv prepare|export [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "prepare":
		err = prepare(os.Args[2:])
	case "export":
		err = export(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kjv:", err)
		os.Exit(1)
	}
}

// chapters reads the whole Bible with Debian's `bible` program: one chapter
// a string, verses (without their numbers) one a line.
func chapters() ([]string, error) {
	out, err := exec.Command("bible", "-l100000", "Gen1:1-Rev22:21").Output()
	if err != nil {
		return nil, fmt.Errorf("bible (Debian package bible-kjv): %w", err)
	}
	var chs []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			chs = append(chs, strings.Join(cur, "\n")+"\n")
			cur = nil
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
		case strings.HasPrefix(line, " ") && len(trimmed) > 0 && unicode.IsDigit(rune(trimmed[0])):
			i := strings.IndexByte(trimmed, ' ')
			cur = append(cur, strings.TrimSpace(trimmed[i+1:]))
		default: // a chapter heading such as "Genesis 1"
			flush()
		}
	}
	flush()
	if len(chs) != 1189 {
		return nil, fmt.Errorf("expected the 1189 chapters of the KJV, got %d", len(chs))
	}
	return chs, nil
}

// isVal puts every 20th chapter in the held-out set.
func isVal(i int) bool { return i%20 == 10 }

func prepare(args []string) error {
	fs := flag.NewFlagSet("prepare", flag.ContinueOnError)
	out := fs.String("out", ".kjv", "output folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	chs, err := chapters()
	if err != nil {
		return err
	}
	var trainText []string
	for i, c := range chs {
		if !isVal(i) {
			trainText = append(trainText, c)
		}
	}
	tokens, merges, err := tokenizer.TrainBPE(trainText, vocabSize, []string{special})
	if err != nil {
		return err
	}
	types := make([]int32, len(tokens))
	for i := range types {
		types[i] = 1
	}
	eot := int32(len(tokens) - 1)
	types[eot] = 3
	w := gguf.NewWriter()
	setVocab(w, tokens, types, merges, eot)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	vocabPath := filepath.Join(*out, "vocab.gguf")
	if err := writeGGUF(vocabPath, w); err != nil {
		return err
	}
	// Tokenize with the real tokenizer, as the engine will.
	f, fh, err := gguf.Open(vocabPath)
	if err != nil {
		return err
	}
	fh.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return err
	}
	var train, val []uint16
	for i, c := range chs {
		ids := tok.Encode(c, true, false) // BOS first: each chapter is a document
		dst := &train
		if isVal(i) {
			dst = &val
		}
		for _, id := range ids {
			*dst = append(*dst, uint16(id))
		}
	}
	for name, ids := range map[string][]uint16{"train.bin": train, "val.bin": val} {
		var b bytes.Buffer
		_ = binary.Write(&b, binary.LittleEndian, ids)
		if err := os.WriteFile(filepath.Join(*out, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	// Unigram baseline: held-out perplexity of token frequencies from train.
	freq := make([]float64, vocabSize)
	for _, id := range train {
		freq[id]++
	}
	var nll float64
	for _, id := range val {
		p := (freq[id] + 1) / (float64(len(train)) + vocabSize) // add-one smoothing
		nll -= math.Log(p)
	}
	meta := map[string]any{
		"vocab": len(tokens), "merges": len(merges), "bos": eot, "eos": eot,
		"chapters": len(chs), "train_tokens": len(train), "val_tokens": len(val),
		"unigram_val_ppl": math.Exp(nll / float64(len(val))),
	}
	b, _ := json.MarshalIndent(meta, "", "  ")
	fmt.Println(string(b))
	return os.WriteFile(filepath.Join(*out, "meta.json"), b, 0o644)
}

func setVocab(w *gguf.Writer, tokens []string, types []int32, merges []string, eot int32) {
	w.Set("tokenizer.ggml.model", gguf.String("gpt2"))
	w.Set("tokenizer.ggml.pre", gguf.String("gpt-2"))
	w.Set("tokenizer.ggml.tokens", gguf.Strings(tokens))
	w.Set("tokenizer.ggml.token_type", gguf.Int32s(types))
	w.Set("tokenizer.ggml.merges", gguf.Strings(merges))
	w.Set("tokenizer.ggml.bos_token_id", gguf.Uint32(uint32(eot)))
	w.Set("tokenizer.ggml.eos_token_id", gguf.Uint32(uint32(eot)))
	w.Set("tokenizer.ggml.add_bos_token", gguf.Bool(true))
	w.Set("tokenizer.ggml.add_eos_token", gguf.Bool(false))
}

func writeGGUF(path string, w *gguf.Writer) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// weightsFile is what scripts/train_kjv.py writes: an 8-byte little-endian
// header length, a JSON header, then the tensors as float32.
type weightsFile struct {
	Config struct {
		Vocab, Embd, Blocks, Heads, KVHeads, FF, Ctx int
		RopeBase, Eps                                float64
		Steps                                        int
	} `json:"config"`
	Tensors []struct {
		Name   string  `json:"name"`
		Shape  []int64 `json:"shape"` // PyTorch order: (out, in)
		Offset int64   `json:"offset"`
	} `json:"tensors"`
}

func export(args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	weights := fs.String("weights", "", "weights.bin from scripts/train_kjv.py")
	vocab := fs.String("vocab", ".kjv/vocab.gguf", "vocab.gguf from prepare")
	typ := fs.String("type", "Q8_0", "type of the 2-D weights")
	out := fs.String("out", "", "output GGUF")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, ok := gguf.TypeByName(*typ)
	if !ok {
		return fmt.Errorf("unknown type %q", *typ)
	}
	raw, err := os.ReadFile(*weights)
	if err != nil {
		return err
	}
	if len(raw) < 8 {
		return errors.New("weights file too short")
	}
	hl := binary.LittleEndian.Uint64(raw)
	var wf weightsFile
	if err := json.Unmarshal(raw[8:8+hl], &wf); err != nil {
		return err
	}
	data := raw[8+hl:]
	vf, fh, err := gguf.Open(*vocab)
	if err != nil {
		return err
	}
	fh.Close()

	c := wf.Config
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	w.Set("general.name", gguf.String("webinfer-kjv"))
	w.Set("general.license", gguf.String("MIT (weights); training text: King James Version, public domain"))
	w.Set("general.description", gguf.String("A small Llama trained by webinfer on the King James Bible (Debian bible-kjv)."))
	w.Set("llama.context_length", gguf.Uint32(uint32(c.Ctx)))
	w.Set("llama.embedding_length", gguf.Uint32(uint32(c.Embd)))
	w.Set("llama.block_count", gguf.Uint32(uint32(c.Blocks)))
	w.Set("llama.feed_forward_length", gguf.Uint32(uint32(c.FF)))
	w.Set("llama.attention.head_count", gguf.Uint32(uint32(c.Heads)))
	w.Set("llama.attention.head_count_kv", gguf.Uint32(uint32(c.KVHeads)))
	w.Set("llama.attention.layer_norm_rms_epsilon", gguf.Float32(float32(c.Eps)))
	w.Set("llama.rope.freq_base", gguf.Float32(float32(c.RopeBase)))
	w.Set("llama.rope.dimension_count", gguf.Uint32(uint32(c.Embd/c.Heads)))
	w.Set("llama.vocab_size", gguf.Uint32(uint32(c.Vocab)))
	for _, kv := range vf.Metadata {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			w.Set(kv.Key, kv.Value)
		}
	}
	for _, ti := range wf.Tensors {
		n := int64(1)
		for _, d := range ti.Shape {
			n *= d
		}
		x := make([]float32, n)
		if err := binary.Read(bytes.NewReader(data[ti.Offset:ti.Offset+4*n]), binary.LittleEndian, x); err != nil {
			return fmt.Errorf("%s: %w", ti.Name, err)
		}
		dims := make([]int64, len(ti.Shape))
		for i := range ti.Shape {
			dims[i] = ti.Shape[len(ti.Shape)-1-i] // ggml order: innermost first
		}
		tt := gguf.TypeF32
		if len(dims) == 2 {
			tt = t
		}
		b, err := quant.Quantize(tt, x)
		if err != nil {
			return fmt.Errorf("%s: %w", ti.Name, err)
		}
		if err := w.AddTensor(ti.Name, tt, dims, b); err != nil {
			return err
		}
	}
	return writeGGUF(*out, w)
}
