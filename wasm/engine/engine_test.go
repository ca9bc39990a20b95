package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/synth"
)

func tinyModel(t *testing.T) *model.Model {
	path, err := synth.Cached("tiny", gguf.TypeQ8_0, 1)
	if errors.Is(err, synth.ErrNoVocabularies) {
		t.Skip(err)
	}
	require.NoError(t, err)
	f, fh, err := gguf.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { fh.Close() })
	m, err := model.Load(f, fh)
	require.NoError(t, err)
	return m
}

func TestGenerateGreedyIsDeterministicAndStreams(t *testing.T) {
	m := tinyModel(t)
	run := func(req Request) ([]Token, Result) {
		var toks []Token
		res, err := Generate(context.Background(), m, req, func(tk Token) error {
			toks = append(toks, tk)
			return nil
		})
		require.NoError(t, err)
		return toks, res
	}
	a, res := run(Request{Prompt: "Hello world", MaxTokens: 12})
	b, _ := run(Request{Prompt: "Hello world", MaxTokens: 12})
	assert.Equal(t, a, b)
	assert.Equal(t, "length", res.Reason)
	assert.Equal(t, 12, res.Tokens)
	assert.Equal(t, 3, res.PromptTokens, "BOS + 2 tokens")
	assert.Greater(t, res.DecodeTokS, 0.0)

	// Seeded sampling: same seed, same tokens; another seed, others.
	p := sample.Params{Temperature: 1.5, Seed: 42}
	c, _ := run(Request{Prompt: "Hello world", MaxTokens: 12, Sample: p})
	d, _ := run(Request{Prompt: "Hello world", MaxTokens: 12, Sample: p})
	p.Seed = 43
	e, _ := run(Request{Prompt: "Hello world", MaxTokens: 12, Sample: p})
	assert.Equal(t, c, d)
	assert.NotEqual(t, c, e)

	// A stop string taken from the greedy output ends it there.
	var text strings.Builder
	for _, tk := range a {
		text.WriteString(tk.Text)
	}
	full := text.String()
	require.Greater(t, len(full), 6)
	stop := full[3:6]
	got, res := run(Request{Prompt: "Hello world", MaxTokens: 12, Stop: []string{stop}})
	var out strings.Builder
	for _, tk := range got {
		out.WriteString(tk.Text)
	}
	assert.Equal(t, "stop", res.Reason)
	assert.Equal(t, full[:strings.Index(full, stop)], out.String())
}

func TestGenerateErrors(t *testing.T) {
	m := tinyModel(t)
	_, err := Generate(context.Background(), m, Request{Prompt: strings.Repeat("word ", 100), Ctx: 16}, func(Token) error { return nil })
	assert.ErrorIs(t, err, ErrPromptTooLong)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Generate(ctx, m, Request{Prompt: "hi", MaxTokens: 5}, func(Token) error { return nil })
	assert.ErrorIs(t, err, context.Canceled)
	boom := errors.New("client went away")
	_, err = Generate(context.Background(), m, Request{Prompt: "hi", MaxTokens: 5}, func(Token) error { return boom })
	assert.ErrorIs(t, err, boom)
}

func TestStopper(t *testing.T) {
	s := newStopper([]string{"\n\n", "END"})
	out, hit := s.push("Hello E")
	assert.Equal(t, "Hello ", out)
	assert.False(t, hit)
	out, hit = s.push("N")
	assert.Equal(t, "", out)
	assert.False(t, hit)
	out, hit = s.push("Dgame")
	assert.Equal(t, "", out)
	assert.True(t, hit)

	s = newStopper([]string{"END"})
	out, _ = s.push("EN")
	assert.Equal(t, "", out)
	out, hit = s.push("ough")
	assert.Equal(t, "ENough", out)
	assert.False(t, hit)
	out, _ = s.push("E")
	assert.Equal(t, "", out)
	assert.Equal(t, "E", s.flush())

	s = newStopper(nil)
	out, hit = s.push("anything")
	assert.Equal(t, "anything", out)
	assert.False(t, hit)
}

func TestChatTemplates(t *testing.T) {
	msgs := []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}}
	assert.Equal(t, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", Render("", msgs))
	assert.Equal(t, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
		Render("{% ... <|start_header_id|> ... %}", msgs))
	assert.Equal(t, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]", Render("{{ '[INST] ' }}", msgs))
	assert.Equal(t, "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n", Render("<|user|>", msgs))
}

// argmaxDecoder is the CPU path behind the GreedyBackend and Decoder
// interfaces, for the logic of Generate's pipelined branch (the real one,
// wasm/gpumodel, is tested in browsers and under Dawn).
type argmaxDecoder struct {
	cpuBackend
	fed int
}

func argmaxOf(x []float32) int32 {
	b := 0
	for i := range x {
		if x[i] > x[b] {
			b = i
		}
	}
	return int32(b)
}

func (d *argmaxDecoder) ForwardArgmax(ctx context.Context, tokens []int32) (int32, error) {
	logits, err := d.Forward(ctx, tokens)
	return argmaxOf(logits), err
}

func (d *argmaxDecoder) Decode(ctx context.Context, tokens []int32, n int, p sample.Params, recent []int32, yield func(int32) bool) error {
	recent = append([]int32(nil), recent...)
	for i := 0; i < n; i++ {
		logits, err := d.Forward(ctx, tokens)
		if err != nil {
			return err
		}
		id := sample.Pick(logits, recent, p, sample.Uniform(p.Seed, uint32(i)))
		recent = append(recent, id)
		d.fed += len(tokens)
		if !yield(id) {
			return nil
		}
		tokens = []int32{id}
	}
	return nil
}

func TestGenerateThroughDecoder(t *testing.T) {
	m := tinyModel(t)
	collect := func(req Request) ([]Token, Result) {
		var toks []Token
		res, err := Generate(context.Background(), m, req, func(tk Token) error { toks = append(toks, tk); return nil })
		require.NoError(t, err)
		return toks, res
	}
	want, wantRes := collect(Request{Prompt: "Hello world", MaxTokens: 10})
	d := &argmaxDecoder{cpuBackend: cpuBackend{m: m}}
	got, res := collect(Request{Prompt: "Hello world", MaxTokens: 10, Backend: d})
	assert.Equal(t, want, got)
	assert.Equal(t, wantRes.Reason, res.Reason)
	assert.Equal(t, 10, res.Tokens)
	assert.Equal(t, 3+9, d.fed, "the prompt, then every token but the last")

	// A stop string ends it through the decoder too.
	stop := want[2].Text
	require.NotEmpty(t, stop)
	got, res = collect(Request{Prompt: "Hello world", MaxTokens: 10, Backend: d, Stop: []string{stop}})
	assert.Equal(t, "stop", res.Reason)
	assert.Len(t, got, 3)

	// Sampling goes through the decoder too, with the prompt as the
	// penalties' window, and gives the CPU sampler's tokens.
	p := sample.Params{Temperature: 1.5, TopK: 20, RepeatPenalty: 1.3, Seed: 5}
	want, _ = collect(Request{Prompt: "Hello world", MaxTokens: 10, Sample: p})
	got, _ = collect(Request{Prompt: "Hello world", MaxTokens: 10, Sample: p, Backend: d})
	assert.Equal(t, want, got)

	// A decoder that refuses the parameters: Generate samples on the CPU.
	got, _ = collect(Request{Prompt: "Hello world", MaxTokens: 10, Sample: p, Backend: refusingDecoder{d}})
	assert.Equal(t, want, got)
}

// refusingDecoder refuses every sampling parameter but greedy, as the GPU
// refuses a repeat window it cannot hold.
type refusingDecoder struct{ *argmaxDecoder }

func (d refusingDecoder) Decode(ctx context.Context, tokens []int32, n int, p sample.Params, recent []int32, yield func(int32) bool) error {
	if !p.Greedy() {
		return fmt.Errorf("test: %w", sample.ErrBackend)
	}
	return d.argmaxDecoder.Decode(ctx, tokens, n, p, recent, yield)
}
