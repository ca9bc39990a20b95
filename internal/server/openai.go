package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/webinfer/webinfer/wasm/api"
	"github.com/webinfer/webinfer/wasm/engine"
)

// The OpenAI-compatible endpoints: /v1/models, /v1/chat/completions and
// /v1/completions, with stream: true as server-sent events (the last
// chunk carries the usage, then "data: [DONE]").

var completionIDs atomic.Int64

// openAIRequest is the body of both completion endpoints.
type openAIRequest struct {
	options
	Model    string           `json:"model"`
	Messages []engine.Message `json:"messages"`
	Prompt   *string          `json:"prompt"`
	Stream   bool             `json:"stream"`
	N        *int             `json:"n"`
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	data := []map[string]any{}
	if s.cfg.Engine != nil {
		data = append(data, map[string]any{"id": s.cfg.ModelName, "object": "model", "created": s.started.Unix(), "owned_by": "webinfer"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// readRequest reads and checks a completion request's body.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request, chat bool) (openAIRequest, engine.Request, *apiError) {
	var body openAIRequest
	if s.cfg.Engine == nil {
		return body, engine.Request{}, &apiError{status: http.StatusServiceUnavailable, code: "no-model", message: "this server was started without a model"}
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return body, engine.Request{}, &apiError{status: http.StatusRequestEntityTooLarge, code: "too-large", message: fmt.Sprintf("body larger than %d bytes", s.cfg.Limits.MaxBody)}
		}
		return body, engine.Request{}, &apiError{status: http.StatusBadRequest, code: "bad-request", message: "reading body: " + err.Error()}
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return body, engine.Request{}, &apiError{status: http.StatusBadRequest, code: "bad-request", message: "body is not a JSON request: " + err.Error()}
	}
	if body.N != nil && *body.N != 1 {
		return body, engine.Request{}, badOption("n: %d: only 1 is supported", *body.N)
	}
	var req engine.Request
	var aerr error
	if chat {
		if len(body.Messages) == 0 {
			return body, req, badOption("messages: want at least one message")
		}
		req, aerr = body.options.request("", body.Messages, s.cfg.Limits)
	} else {
		if body.Prompt == nil {
			return body, req, badOption("prompt: want a string")
		}
		req, aerr = body.options.request(*body.Prompt, nil, s.cfg.Limits)
	}
	if aerr != nil {
		return body, req, genError(aerr)
	}
	return body, req, nil
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) { s.complete(w, r, true) }
func (s *Server) completions(w http.ResponseWriter, r *http.Request)     { s.complete(w, r, false) }

// complete answers a completion request, as one JSON object or streamed.
func (s *Server) complete(w http.ResponseWriter, r *http.Request, chat bool) {
	body, req, aerr := s.readRequest(w, r, chat)
	if aerr != nil {
		writeError(w, aerr.status, aerr.code, aerr.message)
		return
	}
	if key := clientKey(r); s.clients.acquire(key, s.cfg.Limits.MaxPerClient) {
		defer s.clients.release(key)
	} else {
		writeError(w, http.StatusTooManyRequests, "too-many", fmt.Sprintf("at most %d generations at once from one client", s.cfg.Limits.MaxPerClient))
		return
	}
	id := fmt.Sprintf("cmpl-%d", completionIDs.Add(1))
	object := "text_completion"
	if chat {
		id, object = "chat"+id, "chat.completion"
	}
	created := time.Now().Unix()
	choice := func(text string, delta bool, finish any) map[string]any {
		c := map[string]any{"index": 0, "finish_reason": finish}
		switch {
		case !chat:
			c["text"] = text
		case delta:
			d := map[string]any{}
			if text != "" {
				d["content"] = text
			}
			c["delta"] = d
		default:
			c["message"] = map[string]any{"role": "assistant", "content": text}
		}
		return c
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Limits.RequestTimeout)
	defer cancel()
	st := start(ctx, s.cfg.Engine, req)
	if !body.Stream {
		var text strings.Builder
		for {
			toks, ended, res, err := st.take(ctx)
			for _, t := range toks {
				text.WriteString(t.Text)
			}
			if !ended {
				continue
			}
			if err != nil {
				ae := genError(err)
				writeError(w, ae.status, ae.code, ae.message)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": object, "created": created, "model": s.cfg.ModelName,
				"choices": []any{choice(text.String(), false, res.Reason)}, "usage": api.UsageOf(res)})
			return
		}
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	chunk := func(c map[string]any, u *api.OpenAIUsage) error {
		out := map[string]any{"id": id, "object": object + ".chunk", "created": created, "model": s.cfg.ModelName, "choices": []any{c}}
		if !chat {
			out["object"] = object
		}
		if u != nil {
			out["usage"] = u
		}
		if _, err := io.WriteString(w, "data: "); err != nil {
			return err
		}
		if err := enc.Encode(out); err != nil { // Encode ends the line
			return err
		}
		_, err := io.WriteString(w, "\n")
		return err
	}
	if chat { // the first chunk names the role, as OpenAI's do
		c := choice("", true, nil)
		c["delta"] = map[string]any{"role": "assistant", "content": ""}
		if chunk(c, nil) != nil {
			return
		}
	}
	for {
		toks, ended, res, err := st.take(ctx)
		for _, t := range toks {
			if t.Text != "" && chunk(choice(t.Text, true, nil), nil) != nil {
				return // the client went away: its context ends the generation
			}
		}
		if ended {
			if err != nil {
				ae := genError(err)
				// Headers are sent: the error goes as an event of its own.
				fmt.Fprintf(w, "data: {\"error\":{\"code\":%q,\"message\":%q}}\n\n", ae.code, ae.message)
			} else if chunk(choice("", true, res.Reason), api.UsageOf(res)) == nil {
				io.WriteString(w, "data: [DONE]\n\n")
			}
			if flusher != nil {
				flusher.Flush()
			}
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}
