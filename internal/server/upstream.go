package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/webinfer/webinfer/wasm/engine"
)

// Upstream is a Generator that relays to an OpenAI-compatible endpoint
// (llama.cpp's server, vLLM, Ollama, another webinfer serve): a request
// becomes a streamed /v1/completions (or /v1/chat/completions with
// messages) and its server-sent events become tokens. Token ids are not
// part of that protocol: relayed tokens carry ID −1 and their text.
type Upstream struct {
	URL    string // the endpoint's base, e.g. http://10.0.0.5:8080 (…/v1/... appended)
	Model  string // the "model" field sent; "" sends none
	Client *http.Client
	// Timeout bounds the wait for the upstream's answer to start.
	Timeout time.Duration
}

// ErrUpstream wraps what the upstream did wrong (down, refused, broken
// stream): the contract's code "remote".
var ErrUpstream = errors.New("server: the upstream failed")

// Generate relays req and emits its text as it streams back.
func (u *Upstream) Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
	var res engine.Result
	body := map[string]any{"stream": true, "max_tokens": req.MaxTokens, "temperature": req.Sample.Temperature,
		"seed": req.Sample.Seed, "stream_options": map[string]any{"include_usage": true}}
	if req.Sample.TopP > 0 && req.Sample.TopP < 1 {
		body["top_p"] = req.Sample.TopP
	}
	if req.Sample.TopK > 0 {
		body["top_k"] = req.Sample.TopK
	}
	if req.Sample.MinP > 0 {
		body["min_p"] = req.Sample.MinP
	}
	if len(req.Stop) > 0 {
		body["stop"] = req.Stop
	}
	if u.Model != "" {
		body["model"] = u.Model
	}
	path := "/v1/completions"
	if len(req.Messages) > 0 {
		path, body["messages"] = "/v1/chat/completions", req.Messages
	} else {
		body["prompt"] = req.Prompt
	}
	b, _ := json.Marshal(body)
	client := u.Client
	if client == nil {
		client = http.DefaultClient
	}
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	hreq, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(u.URL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrUpstream, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := doWithin(client, hreq, timeout)
	if err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return res, fmt.Errorf("%w: %s: %v", ErrUpstream, u.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return res, fmt.Errorf("%w: %s answered %s: %s", ErrUpstream, u.URL, resp.Status, bytes.TrimSpace(msg))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var first, last time.Time
	n := 0 // pieces of text emitted
	var usage *engine.Result
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			if res.Reason == "" {
				res.Reason = "stop"
			}
			res.Tokens = n
			if usage != nil { // the upstream's count, when it gives one
				res.PromptTokens, res.Tokens = usage.PromptTokens, usage.Tokens
			}
			if !first.IsZero() {
				res.TTFTMillis = float64(first.Sub(start).Microseconds()) / 1000
				if n > 1 && last.After(first) {
					res.DecodeTokS = float64(n-1) / last.Sub(first).Seconds()
				}
			}
			return res, nil
		}
		var chunk struct {
			Choices []struct {
				Text  string `json:"text"`
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &chunk); err != nil {
			return res, fmt.Errorf("%w: %s sent a malformed event: %v", ErrUpstream, u.URL, err)
		}
		if chunk.Error != nil {
			return res, fmt.Errorf("%w: %s: %s: %s", ErrUpstream, u.URL, chunk.Error.Code, chunk.Error.Message)
		}
		if chunk.Usage != nil {
			usage = &engine.Result{PromptTokens: chunk.Usage.PromptTokens, Tokens: chunk.Usage.CompletionTokens}
		}
		for _, c := range chunk.Choices {
			text := c.Text + c.Delta.Content
			if c.FinishReason != nil && *c.FinishReason != "" {
				res.Reason = *c.FinishReason
			}
			if text == "" {
				continue
			}
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			last = now
			if err := emit(engine.Token{ID: -1, Text: text, Index: n, At: now.Sub(start)}); err != nil {
				return res, err
			}
			n++
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return res, fmt.Errorf("%w: %s: the stream broke: %v", ErrUpstream, u.URL, err)
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, fmt.Errorf("%w: %s: the stream ended without [DONE]", ErrUpstream, u.URL)
}

// doWithin sends req, giving up when no answer has begun within d (the
// body may then take as long as it streams).
func doWithin(c *http.Client, req *http.Request, d time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	timer := time.AfterFunc(d, cancel)
	resp, err := c.Do(req.WithContext(ctx))
	if !timer.Stop() && err != nil {
		return nil, fmt.Errorf("no answer within %v", d)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
