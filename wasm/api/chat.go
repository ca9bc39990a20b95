package api

import (
	"encoding/json"
	"fmt"

	"github.com/webinfer/webinfer/wasm/engine"
)

// OpenAI's chat completion shapes, as chat.completions.create returns
// them: chunks when streaming (the first names the role, the last carries
// finish_reason and usage), one completion otherwise.

// ChatChunk is one "chat.completion.chunk".
type ChatChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []ChunkChoice `json:"choices"`
	Usage   *OpenAIUsage  `json:"usage,omitempty"`
}

// ChunkChoice is a chunk's only choice.
type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// Delta is what a chunk adds to the message.
type Delta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

// ChatCompletion is one "chat.completion" (stream: false).
type ChatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []Choice     `json:"choices"`
	Usage   *OpenAIUsage `json:"usage"`
}

// Choice is a completion's only choice.
type Choice struct {
	Index        int            `json:"index"`
	Message      engine.Message `json:"message"`
	FinishReason string         `json:"finish_reason"`
}

// OpenAIUsage is OpenAI's token usage.
type OpenAIUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// UsageOf is r's usage.
func UsageOf(r engine.Result) *OpenAIUsage {
	return &OpenAIUsage{PromptTokens: r.PromptTokens, CompletionTokens: r.Tokens, TotalTokens: r.PromptTokens + r.Tokens}
}

// Chat is one chat completion's identity, which each of its chunks
// repeats.
type Chat struct {
	ID      string
	Created int64
	Model   string
}

// Chunk is the chunk adding content (role: the first chunk's "assistant").
func (c Chat) Chunk(role, content string) *ChatChunk {
	return &ChatChunk{ID: c.ID, Object: "chat.completion.chunk", Created: c.Created, Model: c.Model,
		Choices: []ChunkChoice{{Delta: Delta{Role: role, Content: content}}}}
}

// Last is the final chunk: why it ended, and the usage.
func (c Chat) Last(r engine.Result) *ChatChunk {
	ch := c.Chunk("", "")
	reason := r.Reason
	ch.Choices[0].FinishReason = &reason
	ch.Usage = UsageOf(r)
	return ch
}

// Completion is the whole completion of text.
func (c Chat) Completion(text string, r engine.Result) *ChatCompletion {
	return &ChatCompletion{ID: c.ID, Object: "chat.completion", Created: c.Created, Model: c.Model,
		Choices: []Choice{{Message: engine.Message{Role: "assistant", Content: text}, FinishReason: r.Reason}},
		Usage:   UsageOf(r)}
}

// ChatFields are the fields of a chat completion request that are no
// generation option (Request takes the others).
var ChatFields = []string{"messages", "stream", "model", "n", "stream_options", "user"}

// ChatRequest checks an OpenAI chat completion request (decoded JSON)
// and returns its engine.Request and whether it streams. The error is an
// *OptionError.
func ChatRequest(body map[string]any, lim Limits, strict bool) (engine.Request, bool, error) {
	var msgs []engine.Message
	raw, err := json.Marshal(body["messages"])
	if err == nil {
		err = json.Unmarshal(raw, &msgs)
	}
	if err != nil || len(msgs) == 0 {
		return engine.Request{}, false, &OptionError{Option: "messages", Message: "want a list of at least one {role, content}"}
	}
	if n, ok := body["n"]; ok && n != nil {
		if k, ok := integer(n); !ok || k != 1 {
			return engine.Request{}, false, &OptionError{Option: "n", Message: fmt.Sprintf("%s: only 1 is supported", show(n))}
		}
	}
	stream := false
	if v, ok := body["stream"]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			return engine.Request{}, false, &OptionError{Option: "stream", Message: fmt.Sprintf("%s: want true or false", show(v))}
		}
		stream = b
	}
	req, err := Request("", msgs, body, OpenAI, lim, strict, ChatFields...)
	return req, stream, err
}
