package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/webinfer/webinfer/wasm/api"
	"github.com/webinfer/webinfer/wasm/engine"
)

// Generator runs generation requests (wasm/scheduler's Scheduler: many at
// once, batched), calling emit for each token in order from its own
// goroutine.
type Generator interface {
	Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error)
}

// Limits bound what one client may ask for: a request's prompt, tokens and
// stop strings (api.Limits, as the JS API's), and the server's own.
type Limits struct {
	api.Limits
	MaxBody      int64 // bytes of an HTTP request body or a WebSocket frame
	MaxPerClient int   // requests running at once on one WebSocket
	// IdleTimeout closes a WebSocket that has sent no frame for this long
	// while none of its requests is streaming.
	IdleTimeout time.Duration
	// RequestTimeout ends a request that has run this long (code timeout).
	RequestTimeout time.Duration
}

// DefaultLimits are the limits when Config.Limits is zero.
var DefaultLimits = Limits{Limits: api.DefaultLimits, MaxBody: 1 << 20, MaxPerClient: 16,
	IdleTimeout: 5 * time.Minute, RequestTimeout: 10 * time.Minute}

// withDefaults is l with DefaultLimits' value for each field not set.
func (l Limits) withDefaults() Limits {
	l.Limits = l.Limits.WithDefaults()
	if l.MaxBody <= 0 {
		l.MaxBody = DefaultLimits.MaxBody
	}
	if l.MaxPerClient <= 0 {
		l.MaxPerClient = DefaultLimits.MaxPerClient
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultLimits.IdleTimeout
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = DefaultLimits.RequestTimeout
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
// their OpenAI names (the WebSocket frame uses the same); wasm/api checks
// them, as it does for the JS API.
type options struct {
	MaxTokens        *int     `json:"max_tokens"`
	Temperature      *float64 `json:"temperature"`
	TopP             *float64 `json:"top_p"`
	TopK             *int     `json:"top_k"`
	MinP             *float64 `json:"min_p"`
	RepeatPenalty    *float64 `json:"repeat_penalty"`
	FrequencyPenalty *float64 `json:"frequency_penalty"`
	PresencePenalty  *float64 `json:"presence_penalty"`
	Seed             *uint64  `json:"seed"`
	Stop             any      `json:"stop"` // a string or a list of strings
}

// request turns a prompt (or messages) and options into an engine.Request,
// or says which option is wrong and what it accepts.
func (o options) request(prompt string, msgs []engine.Message, lim Limits) (engine.Request, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return engine.Request{}, badOption("options: %v", err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		return engine.Request{}, badOption("options: %v", err)
	}
	req, err := api.Request(prompt, msgs, fields, api.OpenAI, lim.Limits, false)
	if err != nil {
		return req, badOption("%v", err)
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
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusRequestTimeout, code: "timeout", message: "the request ran past its time limit (--request-timeout)"}
	case errors.Is(err, context.Canceled):
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
