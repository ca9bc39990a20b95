package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/sample"
)

// Generator runs generation requests (wasm/scheduler's Scheduler: many at
// once, batched), calling emit for each token in order from its own
// goroutine.
type Generator interface {
	Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error)
}

// Limits bound what one client may ask for.
type Limits struct {
	MaxBody       int64 // bytes of an HTTP request body or a WebSocket frame
	MaxPrompt     int   // bytes of a prompt (all messages together)
	MaxTokens     int   // tokens one request may generate
	MaxPerClient  int   // requests running at once on one WebSocket
	MaxStopString int   // stop strings per request
}

// DefaultLimits are the limits when Config.Limits is zero.
var DefaultLimits = Limits{MaxBody: 1 << 20, MaxPrompt: 64 << 10, MaxTokens: 4096, MaxPerClient: 16, MaxStopString: 8}

// withDefaults is l with DefaultLimits' value for each field not set.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxBody <= 0 {
		l.MaxBody = d.MaxBody
	}
	if l.MaxPrompt <= 0 {
		l.MaxPrompt = d.MaxPrompt
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = d.MaxTokens
	}
	if l.MaxPerClient <= 0 {
		l.MaxPerClient = d.MaxPerClient
	}
	if l.MaxStopString <= 0 {
		l.MaxStopString = d.MaxStopString
	}
	return l
}

// apiError is an error with the contract's code and its HTTP status.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

func badOption(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "bad-option", message: fmt.Sprintf(format, args...)}
}

// options are the sampling and length settings a client may send, by
// their OpenAI names (the WebSocket frame uses the same).
type options struct {
	MaxTokens   *int     `json:"max_tokens"`
	Temperature *float64 `json:"temperature"`
	TopP        *float64 `json:"top_p"`
	TopK        *int     `json:"top_k"`
	MinP        *float64 `json:"min_p"`
	Seed        *uint64  `json:"seed"`
	Stop        any      `json:"stop"` // a string or a list of strings
}

// request turns a prompt (or messages) and options into an engine.Request,
// or says which option is wrong and what it accepts.
func (o options) request(prompt string, msgs []engine.Message, lim Limits) (engine.Request, error) {
	req := engine.Request{Prompt: prompt, Messages: msgs, Sample: sample.Defaults, MaxTokens: 256}
	size := len(prompt)
	for _, m := range msgs {
		size += len(m.Content)
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return req, badOption("messages: role %q: want system, user or assistant", m.Role)
		}
	}
	if size == 0 {
		return req, badOption("prompt: empty (send a prompt, or messages with content)")
	}
	if size > lim.MaxPrompt {
		return req, badOption("prompt: %d bytes, at most %d", size, lim.MaxPrompt)
	}
	if o.MaxTokens != nil {
		if *o.MaxTokens < 1 || *o.MaxTokens > lim.MaxTokens {
			return req, badOption("max_tokens: %d: want 1 to %d", *o.MaxTokens, lim.MaxTokens)
		}
		req.MaxTokens = *o.MaxTokens
	}
	if o.Temperature != nil {
		if *o.Temperature < 0 || *o.Temperature > 2 {
			return req, badOption("temperature: %g: want 0 to 2 (0 is greedy)", *o.Temperature)
		}
		req.Sample.Temperature = float32(*o.Temperature)
	}
	if o.TopP != nil {
		if *o.TopP <= 0 || *o.TopP > 1 {
			return req, badOption("top_p: %g: want more than 0, at most 1", *o.TopP)
		}
		req.Sample.TopP = float32(*o.TopP)
	}
	if o.TopK != nil {
		if *o.TopK < 0 || *o.TopK > sample.MaxCandidates {
			return req, badOption("top_k: %d: want 0 (off) to %d", *o.TopK, sample.MaxCandidates)
		}
		req.Sample.TopK = *o.TopK
	}
	if o.MinP != nil {
		if *o.MinP < 0 || *o.MinP > 1 {
			return req, badOption("min_p: %g: want 0 to 1", *o.MinP)
		}
		req.Sample.MinP = float32(*o.MinP)
	}
	if o.Seed != nil {
		req.Sample.Seed = *o.Seed
	}
	switch s := o.Stop.(type) {
	case nil:
	case string:
		req.Stop = []string{s}
	case []any:
		for _, v := range s {
			str, ok := v.(string)
			if !ok {
				return req, badOption("stop: want a string or a list of strings")
			}
			req.Stop = append(req.Stop, str)
		}
	default:
		return req, badOption("stop: want a string or a list of strings")
	}
	if len(req.Stop) > lim.MaxStopString {
		return req, badOption("stop: %d strings, at most %d", len(req.Stop), lim.MaxStopString)
	}
	return req, nil
}

// genError is the contract's code and status of a generation's error.
func genError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, ErrUpstream):
		return &apiError{status: http.StatusBadGateway, code: "remote", message: err.Error()}
	case errors.Is(err, engine.ErrPromptTooLong):
		return &apiError{status: http.StatusBadRequest, code: "context-full", message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusRequestTimeout, code: "aborted", message: err.Error()}
	}
	return &apiError{status: http.StatusServiceUnavailable, code: "internal", message: err.Error()}
}

// stream is one request's tokens on their way from the generator's
// goroutine to the client's: push never blocks (a slow client never
// stalls the batch); the writer takes whatever has come since it last
// looked, so a slow reader gets its tokens in fewer writes.
type stream struct {
	mu    sync.Mutex
	ready chan struct{} // signalled when there is something to take
	toks  []engine.Token
	ended bool
	res   engine.Result
	err   error
}

func newStream() *stream { return &stream{ready: make(chan struct{}, 1)} }

func (s *stream) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// push adds a token (the generator's emit).
func (s *stream) push(t engine.Token) error {
	s.mu.Lock()
	s.toks = append(s.toks, t)
	s.mu.Unlock()
	s.signal()
	return nil
}

// end records how the generation ended.
func (s *stream) end(res engine.Result, err error) {
	s.mu.Lock()
	s.ended, s.res, s.err = true, res, err
	s.mu.Unlock()
	s.signal()
}

// take waits for tokens or the end and returns what has come.
func (s *stream) take(ctx context.Context) (toks []engine.Token, ended bool, res engine.Result, err error) {
	for {
		s.mu.Lock()
		toks, s.toks = s.toks, nil
		ended, res, err = s.ended, s.res, s.err
		s.mu.Unlock()
		if len(toks) > 0 || ended {
			return toks, ended, res, err
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, true, res, ctx.Err()
		}
	}
}

// start runs req on g in the background, its tokens into a stream.
func start(ctx context.Context, g Generator, req engine.Request) *stream {
	st := newStream()
	go func() {
		res, err := g.Generate(ctx, req, st.push)
		st.end(res, err)
	}()
	return st
}
