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
	"github.com/webinfer/webinfer/wasm/synth/synthtest"
)

func tinyModel(t *testing.T) *model.Model {
	return synthtest.Model(t, "tiny", gguf.TypeQ8_0, 1)
}

func TestGenerateGreedyIsDeterministicAndStreams(t *testing.T) {
	m := tinyModel(t)
	run := func(req Request) ([]Token, Result) {
		var toks []Token
		res, err := Generate(context.Background(), m, req, func(tk Token) error {
			tk.At = 0 // timings differ from run to run
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

// cpuDecoder is the CPU path behind the Decoder interface, for the logic
// of Generate's pipelined branch and Pipeline (the real one,
// wasm/gpumodel, is tested in browsers, under Dawn and on the H200). It
// runs each queued step at once; Unqueue steps its cache back.
type cpuDecoder struct {
	cpuBackend
	p      sample.Params
	recent []int32
	draws  uint32
	last   int32
	fed    int // tokens fed
	undone int // steps undone
	refuse bool
}

func (d *cpuDecoder) SetSampling(_ context.Context, seq int, p sample.Params, recent []int32) error {
	if d.refuse && !p.Greedy() {
		return fmt.Errorf("test: %w", sample.ErrBackend)
	}
	d.p, d.recent, d.draws = p.Normalized(), append([]int32(nil), recent...), p.FirstDraw
	return nil
}

func (d *cpuDecoder) Queue(ctx context.Context, tokens []int32) (Pick, error) {
	logits, err := d.Forward(ctx, tokens)
	if err != nil {
		return nil, err
	}
	d.fed += len(tokens)
	id := sample.Pick(logits, d.recent, d.p, sample.Uniform(d.p.Seed, d.draws))
	d.draws++
	d.recent = append(d.recent, id)
	d.last = id
	return func(context.Context) (int32, error) { return id, nil }, nil
}

func (d *cpuDecoder) QueueFromPick(ctx context.Context) (Pick, bool, error) {
	p, err := d.Queue(ctx, []int32{d.last})
	return p, err == nil, err
}

func (d *cpuDecoder) Unqueue() {
	d.st.Pos--
	d.undone++
}

func TestGenerateThroughDecoder(t *testing.T) {
	m := tinyModel(t)
	collect := func(req Request) ([]Token, Result) {
		var toks []Token
		res, err := Generate(context.Background(), m, req, func(tk Token) error { toks = append(toks, tk); return nil })
		require.NoError(t, err)
		return toks, res
	}
	ids := func(ts []Token) []int32 {
		var out []int32
		for _, t := range ts {
			out = append(out, t.ID)
		}
		return out
	}
	want, wantRes := collect(Request{Prompt: "Hello world", MaxTokens: 10})
	d := &cpuDecoder{cpuBackend: cpuBackend{m: m}}
	got, res := collect(Request{Prompt: "Hello world", MaxTokens: 10, Backend: d})
	assert.Equal(t, ids(want), ids(got))
	assert.Equal(t, wantRes.Reason, res.Reason)
	assert.Equal(t, 10, res.Tokens)
	assert.Equal(t, 3+9, d.fed, "the prompt, then every token but the last (no step is queued past the limit)")
	assert.Equal(t, 0, d.undone)

	// A stop string ends it through the decoder too, one step late.
	stop := want[2].Text
	require.NotEmpty(t, stop)
	d.undone = 0
	got, res = collect(Request{Prompt: "Hello world", MaxTokens: 10, Backend: d, Stop: []string{stop}})
	assert.Equal(t, "stop", res.Reason)
	assert.Len(t, got, 3)
	assert.Equal(t, 1, d.undone, "the step queued ahead of the stop is undone")

	// Sampling goes through the decoder too, with the prompt as the
	// penalties' window, and gives the CPU sampler's tokens.
	p := sample.Params{Temperature: 1.5, TopK: 20, RepeatPenalty: 1.3, Seed: 5}
	want, _ = collect(Request{Prompt: "Hello world", MaxTokens: 10, Sample: p})
	got, _ = collect(Request{Prompt: "Hello world", MaxTokens: 10, Sample: p, Backend: d})
	assert.Equal(t, ids(want), ids(got))

	// A decoder that refuses the parameters: Generate samples on the CPU.
	fed := d.fed
	d.refuse = true
	got, _ = collect(Request{Prompt: "Hello world", MaxTokens: 10, Sample: p, Backend: d})
	assert.Equal(t, ids(want), ids(got))
	assert.Equal(t, fed, d.fed, "nothing queued on a decoder that refused")
}

func TestSequenceRules(t *testing.T) {
	m := tinyModel(t)
	seq, err := NewSequence(m, Request{Prompt: "Hello world", MaxTokens: 3})
	require.NoError(t, err)
	assert.Equal(t, 3, len(seq.Prompt()))
	assert.Equal(t, seq.Prompt(), seq.Recent(), "the prompt is what the penalties see first")
	var n int
	for i := 0; !seq.Done(); i++ {
		tok, ok := seq.Accept(int32(10 + i))
		require.True(t, ok)
		assert.Equal(t, i, tok.Index)
		n++
	}
	assert.Equal(t, 3, n, "the limit ends it")
	_, ok := seq.Accept(11)
	assert.False(t, ok, "nothing after the end")
	_, _, res := seq.Finish()
	assert.Equal(t, "length", res.Reason)
	assert.Equal(t, 3, res.Tokens)

	seq, err = NewSequence(m, Request{Prompt: "Hello world"})
	require.NoError(t, err)
	eog := m.Tokenizer.EOS
	_, ok = seq.Accept(eog)
	assert.False(t, ok, "the end-of-generation token is not emitted")
	assert.True(t, seq.Done())
	_, _, res = seq.Finish()
	assert.Equal(t, "stop", res.Reason)
	assert.Equal(t, 0, res.Tokens)
}

// TestRunBatch: sequences generated together in one batch each get the
// tokens they get alone, greedy and seeded, whatever their lengths.
func TestRunBatch(t *testing.T) {
	m := tinyModel(t)
	reqs := []Request{
		{Prompt: "Hello world", MaxTokens: 9},
		{Prompt: "In the beginning was", MaxTokens: 5, Sample: sample.Params{Temperature: 1.2, TopK: 30, Seed: 7}},
		{Prompt: "One", MaxTokens: 12, Sample: sample.Params{Temperature: 0.9, RepeatPenalty: 1.2, Seed: 3}},
	}
	var alone [][]int32
	for _, r := range reqs {
		var ids []int32
		_, err := Generate(context.Background(), m, r, func(tk Token) error {
			if tk.ID >= 0 {
				ids = append(ids, tk.ID)
			}
			return nil
		})
		require.NoError(t, err)
		alone = append(alone, ids)
	}
	var seqs []*Sequence
	for _, r := range reqs {
		s, err := NewSequence(m, r)
		require.NoError(t, err)
		seqs = append(seqs, s)
	}
	got := make([][]int32, len(reqs))
	res, err := RunBatch(context.Background(), CPUBatch(m, len(reqs), 64), seqs, func(i int, tk Token) error {
		if tk.ID >= 0 {
			got[i] = append(got[i], tk.ID)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, alone, got)
	for i, r := range res {
		assert.Equal(t, len(alone[i]), r.Tokens)
	}
}

// TestCPUBatchFreeKV checks that a CPU batcher's caches go back when its
// owner is done with it (engine.KVFreer: in the browser they are the CPU
// pool's memory), and that a freed batcher refuses work with an error
// rather than crashing.
func TestCPUBatchFreeKV(t *testing.T) {
	m := tinyModel(t)
	b := CPUBatch(m, 2, 64)
	ctx := context.Background()
	require.NoError(t, b.Prefill(ctx, 0, []int32{1, 2, 3}))
	b.ResetSeq(0) // the old cache is freed, a new one made
	require.NoError(t, b.Prefill(ctx, 0, []int32{1, 2}))
	f, ok := b.(KVFreer)
	require.True(t, ok)
	f.FreeKV()
	assert.Zero(t, b.(KVHolder).KVBytes())
	assert.ErrorContains(t, b.Prefill(ctx, 1, []int32{1}), "freed")
	_, err := b.StepBatch(ctx, []int{0}, []int32{1})
	assert.ErrorContains(t, err, "freed")
}
