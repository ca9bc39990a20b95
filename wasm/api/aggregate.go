package api

import (
	"sort"
	"time"
)

// GenAI is the engine's telemetry over every request so far, named after
// the OpenTelemetry GenAI semantic conventions (seconds and tokens, as
// they define them): stats().genAI. The distributions are over the most
// recent requests (ttft, duration) and inter-token gaps (time per output
// token), windowSize of each.
type GenAI struct {
	Requests     int       `json:"gen_ai.server.request.count"`
	InputTokens  int64     `json:"gen_ai.client.token.usage.input"`
	OutputTokens int64     `json:"gen_ai.client.token.usage.output"`
	TTFT         Quantiles `json:"gen_ai.server.time_to_first_token"`
	TPOT         Quantiles `json:"gen_ai.server.time_per_output_token"`
	Duration     Quantiles `json:"gen_ai.server.request.duration"`
}

// Quantiles summarize a distribution, in seconds.
type Quantiles struct {
	Count int     `json:"count"` // samples in the window
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
}

// windowSize bounds each distribution's samples.
const windowSize = 4096

// aggregate gathers GenAI's samples. Not safe for concurrent use: the
// Host's lock guards it.
type aggregate struct {
	requests      int
	input, output int64
	ttft, tpot    window
	duration      window
}

// window keeps the last windowSize samples.
type window struct {
	s    []float64
	next int
}

func (w *window) add(v float64) {
	if len(w.s) < windowSize {
		w.s = append(w.s, v)
		return
	}
	w.s[w.next] = v
	w.next = (w.next + 1) % windowSize
}

func (w *window) quantiles() Quantiles {
	if len(w.s) == 0 {
		return Quantiles{}
	}
	s := append([]float64(nil), w.s...)
	sort.Float64s(s)
	at := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return Quantiles{Count: len(s), P50: at(0.5), P90: at(0.9), P99: at(0.99)}
}

// gap takes the time between two tokens of a request.
func (a *aggregate) gap(d time.Duration) { a.tpot.add(d.Seconds()) }

// ended takes a request that ended: its tokens, time to first token and
// duration (a request that made no token has no time to first token).
func (a *aggregate) ended(input, output int, ttft, duration time.Duration) {
	a.requests++
	a.input += int64(input)
	a.output += int64(output)
	if output > 0 {
		a.ttft.add(ttft.Seconds())
	}
	a.duration.add(duration.Seconds())
}

func (a *aggregate) genAI() GenAI {
	return GenAI{Requests: a.requests, InputTokens: a.input, OutputTokens: a.output,
		TTFT: a.ttft.quantiles(), TPOT: a.tpot.quantiles(), Duration: a.duration.quantiles()}
}
