package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
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
	var rec recorder
	var wg sync.WaitGroup
	errs := make([]error, n)
	run := runs.Add(1) // ids stay taken on the server a while after a stream ends
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = oneSocket(ctx, url, fmt.Sprintf("load-%d-%d", run, i), i, tokens, prompt, &rec)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Result{}, err
		}
	}
	return rec.result(fmt.Sprintf("%d sockets", n))
}

// runs numbers the calls of Sockets.
var runs atomic.Int64

// oneSocket runs stream i (request id id) to its done frame, recording
// each token frame's arrival in rec.
func oneSocket(ctx context.Context, url, id string, i, tokens int, prompt string, rec *recorder) error {
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
			prev = rec.token(prev)
		}
	}
}
