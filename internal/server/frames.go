package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
)

// The WebSocket protocol of /v1/stream (CONTRACTS.md section 5): JSON text
// frames, one object each.

// clientFrame is a frame from the client: generate, abort or resume.
type clientFrame struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Prompt string `json:"prompt"`
	From   *int   `json:"from"` // resume: the first token index wanted
	// Coalesce (generate, resume) lets the server put the tokens that are
	// waiting for a slow reader into one frame (tokenFrame.Tokens).
	Coalesce bool `json:"coalesce"`
	options
}

// tokenFrame, doneFrame and errorFrame are the server's frames.
type tokenFrame struct {
	Type  string `json:"type"` // "token"
	ID    string `json:"id"`
	Index int    `json:"index"`
	Token int32  `json:"token"`
	Text  string `json:"text"`
	// Tokens, in a frame for a request that asked to coalesce, lists the
	// frame's tokens from Index on (Token is the first) when it carries
	// more than one; Text is then all of theirs.
	Tokens []int32 `json:"tokens,omitempty"`
}

type doneFrame struct {
	Type   string     `json:"type"` // "done"
	ID     string     `json:"id"`
	Reason string     `json:"reason"` // "stop", "length" or "abort"
	Usage  frameUsage `json:"usage"`
}

type frameUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

type errorFrame struct {
	Type    string `json:"type"` // "error"
	ID      string `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// idPattern is what a request id may be: short, printable, no spaces.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// parseFrame reads and checks one client frame; the error says what is
// wrong with it (code bad-frame or bad-option) and carries the frame's id
// where it has one.
func parseFrame(data []byte, lim Limits) (clientFrame, *apiError) {
	var f clientFrame
	if int64(len(data)) > lim.MaxBody {
		return f, &apiError{status: http.StatusRequestEntityTooLarge, code: "too-large", message: fmt.Sprintf("frame of %d bytes, at most %d", len(data), lim.MaxBody)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return clientFrame{}, &apiError{status: http.StatusBadRequest, code: "bad-frame", message: "frame is not a JSON object of the protocol: " + err.Error()}
	}
	if dec.More() {
		return clientFrame{}, &apiError{status: http.StatusBadRequest, code: "bad-frame", message: "one JSON object a frame"}
	}
	if !idPattern.MatchString(f.ID) {
		id := f.ID
		f.ID = ""
		return f, &apiError{status: http.StatusBadRequest, code: "bad-frame", message: fmt.Sprintf("id %q: want 1 to 64 letters, digits, '.', '_', ':' or '-'", truncate(id, 80))}
	}
	switch f.Type {
	case "generate":
		if _, err := f.options.request(f.Prompt, nil, lim); err != nil {
			return f, genError(err)
		}
	case "abort":
	case "resume":
		if f.From == nil || *f.From < 0 {
			return f, &apiError{status: http.StatusBadRequest, code: "bad-frame", message: "resume: want \"from\", the first token index wanted (0 or more)"}
		}
	default:
		return f, &apiError{status: http.StatusBadRequest, code: "bad-frame", message: fmt.Sprintf("type %q: want generate, abort or resume", truncate(f.Type, 40))}
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
