package engine

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/sample"
	"github.com/webinfer/webinfer/wasm/tokenizer"
)

// Request is one generation.
type Request struct {
	Prompt    string
	MaxTokens int // ≤ 0: until the context is full
	Sample    sample.Params
	Stop      []string // stop strings: generation ends before any of them
	Chat      bool     // wrap Prompt in the model's chat template
	// Messages, when set, are a chat rendered with the model's template
	// (Prompt and Chat are then unused).
	Messages []Message
	Ctx      int // context size (prompt + output); 0: ContextSize's default
	// Backend runs the forward passes of Generate; nil is the CPU path
	// (model.Forward). RunBatch takes its backend apart.
	Backend Backend
}

// Token is one generated token and the text it completed (UTF-8 safe: a
// token that ends inside a character has empty Text; the next carries it).
// ID is -1 for text released at the end (held back as a possible start of
// a stop string, or an incomplete character). Index counts the generated
// tokens from 0; At is the time since the request began.
type Token struct {
	ID    int32
	Text  string
	Index int
	At    time.Duration
}

// Result describes a finished generation.
type Result struct {
	Reason       string  `json:"reason"` // "stop" or "length"
	PromptTokens int     `json:"prompt_tokens"`
	Tokens       int     `json:"tokens"`
	TTFTMillis   float64 `json:"ttft_ms"`
	PrefillTokS  float64 `json:"prefill_tok_s"`
	DecodeTokS   float64 `json:"decode_tok_s"`
	ITLMillis    ITL     `json:"itl_ms"`
}

// ITL is the distribution of the gaps between consecutive tokens, in
// milliseconds.
type ITL struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
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

// Sequence owns one request's token stream: its prompt tokens, the
// per-token rules (accept a token; end at the end-of-generation token, a
// stop string or the limit; hold back text that may begin a stop string;
// decode UTF-8 safely), the recent tokens its penalties see, its sampler
// (for backends that return logits), and the timing of every token.
// Generate drives one; RunBatch (and the scheduler) drive several. A
// backend that picks tokens itself (the GPU) keeps a copy of the recent
// tokens on the device, seeded from Recent when its sampling is set.
//
// A Sequence is not safe for concurrent use.
type Sequence struct {
	tok     *tokenizer.Tokenizer
	prompt  []int32
	params  sample.Params
	sampler *sample.Sampler
	ctx     int
	limit   int
	stop    *stopper
	dec     *tokenizer.Decoder
	res     Result
	done    bool
	start   time.Time
	stamps  []time.Time // one per pick
	gen     []int32     // the tokens accepted, the end-of-generation token aside
}

// NewSequence tokenizes req's prompt for m (through the chat template
// with req.Chat) and checks that it fits req's context.
func NewSequence(m *model.Model, req Request) (*Sequence, error) {
	prompt := req.Prompt
	parseSpecial := false
	msgs := req.Messages
	if len(msgs) == 0 && req.Chat {
		msgs = []Message{{Role: "user", Content: req.Prompt}}
	}
	if len(msgs) > 0 {
		var err error
		if prompt, err = ApplyChatTemplate(m, msgs); err != nil {
			return nil, err
		}
		parseSpecial = true
	}
	ids := m.Tokenizer.Encode(prompt, true, parseSpecial)
	if len(ids) == 0 {
		return nil, errors.New("engine: the prompt is empty")
	}
	n := ContextSize(m, req.Ctx)
	if len(ids) >= n {
		return nil, fmt.Errorf("%w: %d tokens, context %d", ErrPromptTooLong, len(ids), n)
	}
	limit := n - len(ids)
	if req.MaxTokens > 0 {
		limit = min(limit, req.MaxTokens)
	}
	s := &Sequence{
		tok: m.Tokenizer, prompt: ids, params: req.Sample.Normalized(), sampler: sample.New(req.Sample),
		ctx: n, limit: limit, stop: newStopper(req.Stop), dec: m.Tokenizer.NewDecoder(),
		res: Result{Reason: "length", PromptTokens: len(ids)}, start: time.Now(),
	}
	for _, id := range ids {
		s.sampler.Accept(id)
	}
	return s, nil
}

// Prompt is the prompt's token ids (BOS included where the model adds it).
func (s *Sequence) Prompt() []int32 { return s.prompt }

// Params is the sequence's sampling settings (normalized).
func (s *Sequence) Params() sample.Params { return s.params }

// Ctx is the positions the sequence may fill (prompt and output).
func (s *Sequence) Ctx() int { return s.ctx }

// Limit is the most tokens the sequence generates.
func (s *Sequence) Limit() int { return s.limit }

// Feed is what a backend is fed to carry the sequence on: the prompt,
// then the tokens generated so far (none until Resume is needed).
func (s *Sequence) Feed() []int32 {
	if len(s.gen) == 0 {
		return s.prompt
	}
	return append(append(make([]int32, 0, len(s.prompt)+len(s.gen)), s.prompt...), s.gen...)
}

// Remaining is the most tokens still to generate.
func (s *Sequence) Remaining() int { return s.limit - s.res.Tokens }

// Resume readies the sequence to be carried on by another backend after
// its own failed mid-stream (a lost GPU device): the picks go on from the
// draw counter they reached, on the device (Params().FirstDraw) or here,
// so a backend giving the same logits gives the tokens the run would have
// given. Run then feeds it Feed.
func (s *Sequence) Resume() {
	k := uint32(len(s.stamps))
	recent := s.sampler.Recent()
	s.params.FirstDraw = k
	s.sampler = sample.New(s.params)
	for _, id := range recent {
		s.sampler.Accept(id)
	}
}

// Recent is the tokens the penalties see before the next pick (the last
// RepeatLastN of the prompt and the tokens accepted), oldest first.
func (s *Sequence) Recent() []int32 { return s.sampler.Recent() }

// Sample picks the next token from its logits on the CPU, with the
// sequence's settings, recent tokens and draw counter. It does not
// Accept it.
func (s *Sequence) Sample(logits []float32) int32 { return s.sampler.Sample(logits) }

// Done says whether the stream has ended (end of generation, a stop
// string, or the limit).
func (s *Sequence) Done() bool { return s.done }

// Accept takes the next generated token. It returns the token to emit
// and true, or false when there is nothing to emit (the end-of-generation
// token, or a sequence already done). Done says afterwards whether the
// stream ended with it.
func (s *Sequence) Accept(id int32) (Token, bool) {
	if s.done {
		return Token{}, false
	}
	now := time.Now()
	s.sampler.Accept(id)
	if len(s.stamps) == 0 {
		ttft := now.Sub(s.start)
		s.res.PrefillTokS = float64(len(s.prompt)) / ttft.Seconds()
		s.res.TTFTMillis = float64(ttft.Microseconds()) / 1000
	}
	s.stamps = append(s.stamps, now)
	if s.tok.IsEOG(id) {
		s.res.Reason, s.done = "stop", true
		return Token{}, false
	}
	t := Token{ID: id, Index: s.res.Tokens, At: now.Sub(s.start)}
	s.res.Tokens++
	s.gen = append(s.gen, id)
	var hit bool
	t.Text, hit = s.stop.push(s.dec.Next(id))
	if hit {
		s.res.Reason, s.done = "stop", true
	} else if s.res.Tokens >= s.limit {
		s.done = true
	}
	return t, true
}

// Result is the Result so far, without ending the stream (a failed
// backend's caller may Resume it on another).
func (s *Sequence) Result() Result { return s.res }

// Finish ends the stream: it returns the text still held back (a
// possible start of a stop string, an incomplete character) as a token of
// ID -1 when the stream ended by its limit and there is any, and the
// Result with its timings.
func (s *Sequence) Finish() (Token, bool, Result) {
	s.done = true
	var tail Token
	ok := false
	if s.res.Reason == "length" {
		if text := s.stop.flush() + s.dec.Flush(); text != "" {
			tail, ok = Token{ID: -1, Text: text, Index: s.res.Tokens, At: time.Since(s.start)}, true
		}
	}
	if n := len(s.stamps); n > 1 {
		s.res.DecodeTokS = float64(n-1) / s.stamps[n-1].Sub(s.stamps[0]).Seconds()
		s.res.ITLMillis = percentiles(s.stamps)
	}
	return tail, ok, s.res
}

// percentiles of the gaps between consecutive stamps, in milliseconds.
func percentiles(stamps []time.Time) ITL {
	gaps := make([]float64, 0, len(stamps)-1)
	for i := 1; i < len(stamps); i++ {
		gaps = append(gaps, float64(stamps[i].Sub(stamps[i-1]).Microseconds())/1000)
	}
	sort.Float64s(gaps)
	at := func(p float64) float64 { return gaps[min(len(gaps)-1, int(p*float64(len(gaps))))] }
	return ITL{P50: at(0.5), P90: at(0.9), P99: at(0.99)}
}
