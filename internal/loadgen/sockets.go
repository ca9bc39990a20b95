package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

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
	err := onSocket(ctx, url, func(c *websocket.Conn) error {
		_, err := streamRequest(ctx, c, id, i+1, tokens, prompt, rec)
		return err
	})
	if err != nil {
		return fmt.Errorf("loadgen: stream %d: %w", i, err)
	}
	return nil
}
