package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Sockets runs n streams at once against a `webinfer serve` /v1/stream URL
// (ws://…), each on its own socket, as outside clients do: tokens tokens
// each of prompt, distinct seeds. It measures what Streams does, on the
// client's side of the socket: tokens per second of all streams together
// (first token to last) and the inter-token latency over every stream's
// gaps.
func Sockets(ctx context.Context, url string, n, tokens int, prompt string) (Result, error) {
	var mu sync.Mutex
	var gaps []float64
	var first, last time.Time
	var res Result
	var wg sync.WaitGroup
	errs := make([]error, n)
	run := runs.Add(1) // ids stay taken on the server a while after a stream ends
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = oneSocket(ctx, url, fmt.Sprintf("load-%d-%d", run, i), i, tokens, prompt, func(now time.Time, gap time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				if first.IsZero() || now.Before(first) {
					first = now
				}
				if now.After(last) {
					last = now
				}
				res.Tokens++
				if gap > 0 {
					gaps = append(gaps, float64(gap.Microseconds())/1000)
				}
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Result{}, err
		}
	}
	if res.Tokens < 2 || len(gaps) == 0 || !last.After(first) {
		return Result{}, fmt.Errorf("loadgen: %d sockets gave %d tokens", n, res.Tokens)
	}
	sort.Float64s(gaps)
	at := func(p float64) float64 { return gaps[min(len(gaps)-1, int(p*float64(len(gaps))))] }
	res.TokS = float64(res.Tokens-1) / last.Sub(first).Seconds()
	res.P50, res.P99 = at(0.5), at(0.99)
	return res, nil
}

// runs numbers the calls of Sockets.
var runs atomic.Int64

// oneSocket runs stream i (request id id) to its done frame, calling token for each token
// frame with its arrival time and the gap since the stream's previous one
// (0 for the first).
func oneSocket(ctx context.Context, url, id string, i, tokens int, prompt string, token func(time.Time, time.Duration)) error {
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 22)
	frame, _ := json.Marshal(map[string]any{"type": "generate", "id": id, "prompt": prompt,
		"max_tokens": tokens, "seed": i + 1})
	if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	var prev time.Time
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("loadgen: stream %d: %w", i, err)
		}
		var f struct {
			Type, Code, Message string
			Token               int32
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("loadgen: stream %d: %w", i, err)
		}
		switch f.Type {
		case "done":
			return c.Close(websocket.StatusNormalClosure, "")
		case "error":
			return fmt.Errorf("loadgen: stream %d: %s: %s", i, f.Code, f.Message)
		case "token":
			if f.Token < 0 {
				continue // text held back for a stop string, released at the end
			}
			now := time.Now()
			var gap time.Duration
			if !prev.IsZero() {
				gap = now.Sub(prev)
			}
			token(now, gap)
			prev = now
		}
	}
}
