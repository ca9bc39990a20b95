package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"

	"github.com/webinfer/webinfer/wasm/cpu"
	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/source"
	"github.com/webinfer/webinfer/wasm/synth"
	"github.com/webinfer/webinfer/wasm/tokenizer"
)

// stringList is a repeatable string flag (--stop A --stop B).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// loadModel loads a model from a path or an http(s) URL (package source).
func loadModel(ctx context.Context, src string) (*model.Model, func(), error) {
	m, _, closeFn, err := source.Load(ctx, src, nil)
	return m, closeFn, err
}

func loadTokenizer(ctx context.Context, src string) (*tokenizer.Tokenizer, error) {
	f, _, closeFn, err := source.Open(ctx, src, nil)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	t, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return t, nil
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func needModel(m string) error {
	if m == "" {
		return errors.New("--model is required")
	}
	return nil
}

func generate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("generate", stderr)
	modelPath := fl.String("model", "", "GGUF model: a path or an http(s) URL")
	prompt := fl.String("prompt", "", "the prompt")
	maxTokens := fl.Int("max-tokens", 128, "tokens to generate at most")
	def := sample.Defaults
	temp := fl.Float64("temperature", float64(def.Temperature), "sampling temperature; 0 is greedy")
	topK := fl.Int("top-k", def.TopK, "keep the K most likely tokens (0: off)")
	topP := fl.Float64("top-p", float64(def.TopP), "keep the most likely tokens up to this total probability (1: off)")
	minP := fl.Float64("min-p", float64(def.MinP), "drop tokens below this fraction of the top one's probability (0: off)")
	repeat := fl.Float64("repeat-penalty", 1.0, "penalty for repeating recent tokens (1: off)")
	seed := fl.Uint64("seed", 0, "random seed (same seed, same tokens)")
	threads := fl.Int("threads", 0, "CPU threads (0: all)")
	ctxSize := fl.Int("ctx", 0, fmt.Sprintf("context size in tokens (0: the model's, at most %d)", engine.DefaultContext))
	chat := fl.Bool("chat", false, "wrap the prompt in the model's chat template")
	asJSON := fl.Bool("json", false, "print one JSON object per token, then a summary")
	var stops stringList
	fl.Var(&stops, "stop", "stop string (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if err := needModel(*modelPath); err != nil {
		return err
	}
	if *threads > 0 {
		runtime.GOMAXPROCS(*threads)
	}
	m, closeFn, err := loadModel(ctx, *modelPath)
	if err != nil {
		return err
	}
	defer closeFn()
	req := engine.Request{
		Prompt: *prompt, MaxTokens: *maxTokens, Stop: stops, Chat: *chat, Ctx: *ctxSize,
		Sample: sample.Params{
			Temperature: float32(*temp), TopK: *topK, TopP: float32(*topP), MinP: float32(*minP),
			RepeatPenalty: float32(*repeat), Seed: *seed,
		},
	}
	enc := json.NewEncoder(stdout)
	if *asJSON {
		m.Profile = &model.StepProfile{} // the step_ms of the last line
	}
	res, err := engine.Generate(ctx, m, req, func(t engine.Token) error {
		if *asJSON {
			if t.ID < 0 { // text held back for a stop string, released at the end
				return enc.Encode(struct {
					Text string `json:"text"`
				}{t.Text})
			}
			return enc.Encode(struct {
				Token int32  `json:"token"`
				Text  string `json:"text"`
			}{t.ID, t.Text})
		}
		_, err := io.WriteString(stdout, t.Text)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		// Which CPU kernel ran each weight type, and why (their speeds as
		// timed at start-up): machines differ, so a run says what it used;
		// and where a decode step's time went.
		return enc.Encode(struct {
			Done bool `json:"done"`
			engine.Result
			Kernels []cpu.KernelChoice `json:"kernels"`
			Step    *model.StepTimes   `json:"step_ms,omitempty"`
		}{true, res, cpu.Kernels(), m.Profile.Times()})
	}
	fmt.Fprintln(stdout)
	return nil
}

func tokenize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("tokenize", stderr)
	modelPath := fl.String("model", "", "GGUF model")
	text := fl.String("text", "", "text to tokenize")
	bos := fl.Bool("bos", false, "add BOS where the model adds it")
	special := fl.Bool("special", false, "parse control tokens written in the text")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if err := needModel(*modelPath); err != nil {
		return err
	}
	t, err := loadTokenizer(ctx, *modelPath)
	if err != nil {
		return err
	}
	ids := t.Encode(*text, *bos, *special)
	if ids == nil {
		ids = []int32{}
	}
	return json.NewEncoder(stdout).Encode(ids)
}

func detokenize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("detokenize", stderr)
	modelPath := fl.String("model", "", "GGUF model")
	idsFlag := fl.String("ids", "", "comma-separated token ids")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if err := needModel(*modelPath); err != nil {
		return err
	}
	t, err := loadTokenizer(ctx, *modelPath)
	if err != nil {
		return err
	}
	var ids []int32
	for _, s := range strings.Split(*idsFlag, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n >= t.Size() {
			return fmt.Errorf("--ids: %q is not a token id of this model (0 to %d)", s, t.Size()-1)
		}
		ids = append(ids, int32(n))
	}
	fmt.Fprintln(stdout, t.Decode(ids))
	return nil
}

func logits(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("logits", stderr)
	modelPath := fl.String("model", "", "GGUF model")
	prompt := fl.String("prompt", "", "the prompt")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if err := needModel(*modelPath); err != nil {
		return err
	}
	m, closeFn, err := loadModel(ctx, *modelPath)
	if err != nil {
		return err
	}
	defer closeFn()
	ids := m.Tokenizer.Encode(*prompt, true, false)
	if len(ids) == 0 {
		return errors.New("the prompt is empty")
	}
	st := m.NewState(len(ids))
	out, err := m.Forward(st, ids)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]any{"tokens": ids, "logits": out})
}

func info(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("info", stderr)
	modelPath := fl.String("model", "", "GGUF model")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if err := needModel(*modelPath); err != nil {
		return err
	}
	f, _, closeFn, err := source.Open(ctx, *modelPath, nil)
	if err != nil {
		return err
	}
	defer closeFn()
	meta := map[string]any{}
	for _, kv := range f.Metadata {
		meta[kv.Key] = kv.Value.JSON(64)
	}
	type tensor struct {
		Name   string  `json:"name"`
		Type   string  `json:"type"`
		Dims   []int64 `json:"dims"`
		Offset int64   `json:"offset"`
		Bytes  int64   `json:"bytes"`
	}
	tensors := []tensor{}
	for _, t := range f.Tensors {
		tensors = append(tensors, tensor{t.Name, t.Type.String(), t.Dims, t.Offset, t.Size})
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{
		"version": f.Version, "alignment": f.Alignment, "data_offset": f.DataOffset,
		"metadata": meta, "tensors": tensors,
	})
}

// synthCmd writes a synthetic test model (see package synth).
func synthCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("synth", stderr)
	preset := fl.String("preset", "tiny", "shape: tiny, smol135, qwen2, llama3, llama1b")
	typ := fl.String("type", "Q8_0", "tensor type of the weights")
	seed := fl.Uint64("seed", 1, "weights' random seed")
	vocab := fl.String("vocab", "", "GGUF vocabulary file (default: the preset's, from llama.cpp's models/)")
	out := fl.String("out", "", "output path")
	if err := fl.Parse(args); err != nil {
		return err
	}
	s, ok := synth.Presets[*preset]
	if !ok {
		return fmt.Errorf("--preset: no preset %q", *preset)
	}
	t, ok := gguf.TypeByName(*typ)
	if !ok {
		return fmt.Errorf("--type: unknown tensor type %q", *typ)
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	if *vocab == "" {
		dir, err := synth.VocabDir()
		if err != nil {
			return err
		}
		*vocab = dir + "/" + s.VocabFile
	}
	s.Type, s.Seed, s.Name = t, *seed, *preset+"-"+*typ
	return synth.WriteFile(*out, s, *vocab)
}
