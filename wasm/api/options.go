package api

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/sample"
)

// Style is how a caller spells the options: the OpenAI names (snake_case:
// the server's endpoints, chat.completions.create) or the JS API's
// generate (camelCase). An error names an option as its caller spelt it.
type Style int

const (
	OpenAI Style = iota // max_tokens, top_p, ...
	JS                  // maxTokens, topP, ...
)

// Limits bound what one request may ask for.
type Limits struct {
	MaxPrompt     int // bytes of a prompt (all messages together)
	MaxTokens     int // tokens one request may generate
	MaxStopString int // stop strings per request
}

// DefaultLimits are the limits of the JS API, and the server's unless
// told otherwise.
var DefaultLimits = Limits{MaxPrompt: 64 << 10, MaxTokens: 4096, MaxStopString: 8}

// WithDefaults is l with DefaultLimits' value for each field not set.
func (l Limits) WithDefaults() Limits {
	if l.MaxPrompt <= 0 {
		l.MaxPrompt = DefaultLimits.MaxPrompt
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = DefaultLimits.MaxTokens
	}
	if l.MaxStopString <= 0 {
		l.MaxStopString = DefaultLimits.MaxStopString
	}
	return l
}

// OptionError is a bad-option error: which option, and what it accepts.
type OptionError struct {
	Option  string // as the caller spelt it; "" for the request as a whole
	Message string
}

func (e *OptionError) Error() string {
	if e.Option == "" {
		return e.Message
	}
	return e.Option + ": " + e.Message
}

// DefaultMaxTokens is what a request generates when it does not say.
const DefaultMaxTokens = 256

// option is one option a generation takes: its two spellings and how its
// value is checked and applied.
type option struct {
	snake, camel string
	set          func(v any, req *engine.Request, lim Limits) string // "" or what it accepts
}

func (o option) name(s Style) string {
	if s == JS {
		return o.camel
	}
	return o.snake
}

// options are every option of a generation, in the order errors are
// looked for.
var options = []option{
	{"max_tokens", "maxTokens", func(v any, req *engine.Request, lim Limits) string {
		n, ok := integer(v)
		if !ok || n < 1 || n > int64(lim.MaxTokens) {
			return fmt.Sprintf("%s: want an integer from 1 to %d", show(v), lim.MaxTokens)
		}
		req.MaxTokens = int(n)
		return ""
	}},
	number("temperature", "temperature", 0, false, 2, "want a number from 0 to 2 (0 is greedy)", func(r *engine.Request, f float32) { r.Sample.Temperature = f }),
	number("top_p", "topP", 0, true, 1, "want a number above 0, at most 1 (1 is off)", func(r *engine.Request, f float32) { r.Sample.TopP = f }),
	{"top_k", "topK", func(v any, req *engine.Request, _ Limits) string {
		n, ok := integer(v)
		if !ok || n < 0 || n > sample.MaxCandidates {
			return fmt.Sprintf("%s: want an integer from 0 (off) to %d", show(v), sample.MaxCandidates)
		}
		req.Sample.TopK = int(n)
		return ""
	}},
	number("min_p", "minP", 0, false, 1, "want a number from 0 (off) to 1", func(r *engine.Request, f float32) { r.Sample.MinP = f }),
	number("repeat_penalty", "repeatPenalty", 0, true, 10, "want a number above 0, at most 10 (1 is off)", func(r *engine.Request, f float32) { r.Sample.RepeatPenalty = f }),
	number("frequency_penalty", "frequencyPenalty", -2, false, 2, "want a number from -2 to 2 (0 is off)", func(r *engine.Request, f float32) { r.Sample.FrequencyPenalty = f }),
	number("presence_penalty", "presencePenalty", -2, false, 2, "want a number from -2 to 2 (0 is off)", func(r *engine.Request, f float32) { r.Sample.PresencePenalty = f }),
	{"seed", "seed", func(v any, req *engine.Request, _ Limits) string {
		n, ok := integer(v)
		if !ok || n < 0 {
			return fmt.Sprintf("%s: want an integer from 0 to 2^53", show(v))
		}
		req.Sample.Seed = uint64(n)
		return ""
	}},
	{"stop", "stop", func(v any, req *engine.Request, lim Limits) string {
		const want = "want a string or a list of non-empty strings"
		switch s := v.(type) {
		case string:
			if s != "" {
				req.Stop = []string{s}
			}
		case []any:
			for _, e := range s {
				str, ok := e.(string)
				if !ok || str == "" {
					return show(v) + ": " + want
				}
				req.Stop = append(req.Stop, str)
			}
		default:
			return show(v) + ": " + want
		}
		if len(req.Stop) > lim.MaxStopString {
			return fmt.Sprintf("%d strings, at most %d", len(req.Stop), lim.MaxStopString)
		}
		return ""
	}},
}

// number is an option taking a number from lo (excluded when loOpen) to
// hi, set as a float32 by set; want says what it accepts.
func number(snake, camel string, lo float64, loOpen bool, hi float64, want string, set func(*engine.Request, float32)) option {
	return option{snake, camel, func(v any, req *engine.Request, _ Limits) string {
		f, ok := v.(float64)
		if !ok || f < lo || (loOpen && f == lo) || f > hi {
			return show(v) + ": " + want
		}
		set(req, float32(f))
		return ""
	}}
}

// integer is v as an integer, if it is a JSON number without a fraction
// that a float64 holds exactly.
func integer(v any) (int64, bool) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// show is v as the caller wrote it, for a message.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil || len(b) > 40 {
		return fmt.Sprintf("%T", v)
	}
	return string(b)
}

// Names are the options' names in style s, sorted.
func Names(s Style) []string {
	out := make([]string, len(options))
	for i, o := range options {
		out[i] = o.name(s)
	}
	sort.Strings(out)
	return out
}

// Request checks fields (a generation's options, decoded from JSON, by
// style's names; null is the default) and returns the engine.Request of
// prompt or msgs with them: the sampling defaults of sample.Defaults,
// DefaultMaxTokens. Fields that are no option are left to the caller
// (extra names those the caller takes itself; any other is an unknown
// option when strict). The error is an *OptionError.
func Request(prompt string, msgs []engine.Message, fields map[string]any, s Style, lim Limits, strict bool, extra ...string) (engine.Request, error) {
	lim = lim.WithDefaults()
	req := engine.Request{Prompt: prompt, Messages: msgs, Sample: sample.Defaults, MaxTokens: DefaultMaxTokens}
	if err := checkPrompt(prompt, msgs, s, lim); err != nil {
		return req, err
	}
	known := map[string]bool{}
	for _, e := range extra {
		known[e] = true
	}
	for _, o := range options {
		name := o.name(s)
		known[name] = true
		v, ok := fields[name]
		if !ok || v == nil {
			continue
		}
		if msg := o.set(v, &req, lim); msg != "" {
			return req, &OptionError{Option: name, Message: msg}
		}
	}
	if strict {
		var unknown []string
		for k := range fields {
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return req, &OptionError{Option: unknown[0], Message: "not an option; the options are " + strings.Join(Names(s), ", ")}
		}
	}
	return req, nil
}

// checkPrompt checks the prompt or the messages.
func checkPrompt(prompt string, msgs []engine.Message, s Style, lim Limits) error {
	size := len(prompt)
	for i, m := range msgs {
		size += len(m.Content)
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return &OptionError{Option: fmt.Sprintf("messages[%d].role", i), Message: fmt.Sprintf("%q: want system, user or assistant", m.Role)}
		}
	}
	name := "prompt"
	if msgs != nil {
		name = "messages"
	}
	if size == 0 {
		return &OptionError{Option: name, Message: "empty: want text to continue, or messages with content"}
	}
	if size > lim.MaxPrompt {
		return &OptionError{Option: name, Message: fmt.Sprintf("%d bytes, at most %d", size, lim.MaxPrompt)}
	}
	return nil
}
