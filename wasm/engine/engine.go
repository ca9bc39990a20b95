// Package engine runs generation: prompt → tokens → prefill → a loop of
// sampling and decode steps, streaming each token's text as it is produced,
// stopping at the end-of-generation token, a stop string or the token limit.
// The same loop serves the CLI, the server and (later) the browser.
//
// In: a loaded model and a Request. Out: a callback per token, and a Result
// with the stop reason, token counts and timings.
package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/sample"
)

// Request is one generation.
type Request struct {
	Prompt    string
	MaxTokens int // ≤ 0: until the context is full
	Sample    sample.Params
	Stop      []string // stop strings: generation ends before any of them
	Chat      bool     // wrap Prompt in the model's chat template
	Ctx       int      // context size (prompt + output); 0: ContextSize's default
	// Backend runs the forward passes; nil is the CPU path (model.Forward).
	Backend Backend
}

// Backend runs a model's forward passes for one sequence at a time.
// Reset starts a new sequence of up to ctx positions; Forward feeds tokens
// and returns the last one's logits.
type Backend interface {
	Reset(ctx int) error
	Forward(ctx context.Context, tokens []int32) ([]float32, error)
}

// GreedyBackend is implemented by backends that can take the argmax
// themselves (on the GPU): a greedy step then reads back a token id, not
// the logits. Generate uses it when sampling is plain greedy.
type GreedyBackend interface {
	ForwardArgmax(ctx context.Context, tokens []int32) (int32, error)
}

// Decoder is implemented by backends that sample and pipeline decoding
// themselves (the GPU's): Decode feeds tokens, then calls yield with up
// to n token ids in order, picked as sample.Pick picks from their logits
// (recent: the tokens the penalties see before the first pick; the k-th
// pick draws sample.Uniform(p.Seed, k), as a new sample.Sampler does),
// queuing each next step before the current token has been read back;
// yield returning false stops it, and the step queued ahead is undone.
// Generate prefers it to everything else.
type Decoder interface {
	Decode(ctx context.Context, tokens []int32, n int, p sample.Params, recent []int32, yield func(int32) bool) error
}

// CPUBackend returns the CPU path as a Backend.
func CPUBackend(m *model.Model) Backend { return &cpuBackend{m: m} }

// cpuBackend is model.Forward on a fresh KV cache per sequence.
type cpuBackend struct {
	m  *model.Model
	st *model.State
}

func (b *cpuBackend) Reset(n int) error {
	b.st = b.m.NewState(n)
	return nil
}

func (b *cpuBackend) Forward(_ context.Context, tokens []int32) ([]float32, error) {
	return b.m.Forward(b.st, tokens)
}

// Token is one generated token and the text it completed (UTF-8 safe: a
// token that ends inside a character has empty Text; the next carries it).
type Token struct {
	ID   int32
	Text string
}

// Result describes a finished generation.
type Result struct {
	Reason       string  `json:"reason"` // "stop" or "length"
	PromptTokens int     `json:"prompt_tokens"`
	Tokens       int     `json:"tokens"`
	TTFTMillis   float64 `json:"ttft_ms"`
	PrefillTokS  float64 `json:"prefill_tok_s"`
	DecodeTokS   float64 `json:"decode_tok_s"`
}

// DefaultContext is the most positions a sequence gets when nobody asks
// for more: the model's trained context if smaller.
const DefaultContext = 4096

// ContextSize is the context a request of n positions gets on m: n, or
// when n ≤ 0 min(m's trained context, DefaultContext).
func ContextSize(m *model.Model, n int) int {
	if n > 0 {
		return n
	}
	return min(m.CtxTrain, DefaultContext)
}

// ErrPromptTooLong is returned when the prompt alone fills the context.
var ErrPromptTooLong = errors.New("engine: the prompt is longer than the context")

// Generate runs req on m, calling emit for every generated token in order.
// An error from emit, or ctx ending, stops generation and is returned.
func Generate(ctx context.Context, m *model.Model, req Request, emit func(Token) error) (Result, error) {
	var res Result
	prompt := req.Prompt
	parseSpecial := false
	if req.Chat {
		prompt = ApplyChatTemplate(m, []Message{{Role: "user", Content: req.Prompt}})
		parseSpecial = true
	}
	ids := m.Tokenizer.Encode(prompt, true, parseSpecial)
	if len(ids) == 0 {
		return res, fmt.Errorf("the prompt is empty")
	}
	n := ContextSize(m, req.Ctx)
	if len(ids) >= n {
		return res, fmt.Errorf("%w: %d tokens, context %d", ErrPromptTooLong, len(ids), n)
	}
	res.PromptTokens = len(ids)
	limit := n - len(ids)
	if req.MaxTokens > 0 {
		limit = min(limit, req.MaxTokens)
	}

	be := req.Backend
	if be == nil {
		be = &cpuBackend{m: m}
	}
	if err := be.Reset(n); err != nil {
		return res, err
	}
	s := sample.New(req.Sample)
	for _, id := range ids {
		s.Accept(id)
	}
	// next feeds tokens and picks the following token: on the backend when
	// it can and sampling is plain greedy, else from the logits.
	p := req.Sample
	gb, canGreedy := be.(GreedyBackend)
	greedy := canGreedy && p.Temperature <= 0 && (p.RepeatPenalty == 0 || p.RepeatPenalty == 1) && p.FrequencyPenalty == 0 && p.PresencePenalty == 0
	next := func(tokens []int32) (int32, error) {
		if greedy {
			return gb.ForwardArgmax(ctx, tokens)
		}
		logits, err := be.Forward(ctx, tokens)
		if err != nil {
			return 0, err
		}
		return s.Sample(logits), nil
	}
	start := time.Now()
	dec := m.Tokenizer.NewDecoder()
	stop := newStopper(req.Stop)
	res.Reason = "length"
	var decodeStart time.Time
	// handle takes one generated token: it reports whether to go on, and
	// sets err when generation must end with an error.
	var err error
	handle := func(id int32) bool {
		if err = ctx.Err(); err != nil {
			return false
		}
		s.Accept(id)
		if res.Tokens == 0 {
			res.PrefillTokS = float64(len(ids)) / time.Since(start).Seconds()
			res.TTFTMillis = float64(time.Since(start).Microseconds()) / 1000
			decodeStart = time.Now()
		}
		if m.Tokenizer.IsEOG(id) {
			res.Reason = "stop"
			return false
		}
		res.Tokens++
		text, hit := stop.push(dec.Next(id))
		if err = emit(Token{ID: id, Text: text}); err != nil {
			return false
		}
		if hit {
			res.Reason = "stop"
			return false
		}
		return res.Tokens < limit
	}
	// stepwise feeds a token, picks the next, one step at a time.
	stepwise := func() error {
		id, nerr := next(ids)
		for nerr == nil && handle(id) {
			id, nerr = next([]int32{id})
		}
		return nerr
	}
	if d, ok := be.(Decoder); ok {
		// Sampled on the backend and pipelined: EOS and stop strings are
		// seen one step late, and the step queued ahead is undone.
		recent := append([]int32(nil), s.Recent()...)
		derr := d.Decode(ctx, ids, limit, p, recent, handle)
		if errors.Is(derr, sample.ErrBackend) {
			// Refused before anything ran: sample on the CPU.
			derr = stepwise()
		}
		if derr != nil {
			return res, derr
		}
	} else if serr := stepwise(); serr != nil {
		return res, serr
	}
	if err != nil {
		return res, err
	}
	if res.Reason == "length" {
		// Text held back as a possible stop-string prefix is output after all.
		if tail := stop.flush() + dec.Flush(); tail != "" {
			if err := emit(Token{ID: -1, Text: tail}); err != nil {
				return res, err
			}
		}
	}
	if res.Tokens > 1 {
		res.DecodeTokS = float64(res.Tokens-1) / time.Since(decodeStart).Seconds()
	}
	return res, nil
}

// stopper holds back text that may be the start of a stop string, and
// reports when one appears (the stop string itself is never emitted).
type stopper struct {
	stops []string
	held  string
}

func newStopper(stops []string) *stopper {
	var s []string
	for _, x := range stops {
		if x != "" {
			s = append(s, x)
		}
	}
	return &stopper{stops: s}
}

// push adds text and returns what can be emitted now, and whether a stop
// string was found (then the text before it is returned).
func (s *stopper) push(text string) (string, bool) {
	if len(s.stops) == 0 {
		return text, false
	}
	buf := s.held + text
	for _, st := range s.stops {
		if i := strings.Index(buf, st); i >= 0 {
			s.held = ""
			return buf[:i], true
		}
	}
	// Hold back the longest suffix that is a prefix of some stop string.
	keep := 0
	for _, st := range s.stops {
		for k := min(len(st)-1, len(buf)); k > keep; k-- {
			if strings.HasSuffix(buf, st[:k]) {
				keep = k
				break
			}
		}
	}
	s.held = buf[len(buf)-keep:]
	return buf[:len(buf)-keep], false
}

func (s *stopper) flush() string {
	h := s.held
	s.held = ""
	return h
}
