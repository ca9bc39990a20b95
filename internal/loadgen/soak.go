package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// SoakConfig is the load of a soak run against a `webinfer serve`.
type SoakConfig struct {
	URL      string        // the server's /v1/stream (ws://…)
	Streams  int           // sockets streaming at once
	Duration time.Duration // how long streams start new requests
	Requests int           // at most this many requests a stream (0: no bound but Duration)
	Tokens   int           // max_tokens of every request
	Prompt   string
}

// SoakResult is what a soak run measured and checked.
type SoakResult struct {
	Streams  int     `json:"streams"`
	Seconds  float64 `json:"seconds"`  // the loaded phase, first request sent to last done
	Requests int     `json:"requests"` // requests completed under load
	Tokens   int     `json:"tokens"`   // tokens received under load
	TokS     float64 `json:"tok_s"`    // tokens of all streams per second
	P50      float64 `json:"itl_p50_ms"`
	P99      float64 `json:"itl_p99_ms"`
	// Mismatches counts the requests whose token ids differ from the same
	// request's solo run; FirstMismatch says where the first one did.
	Mismatches    int    `json:"mismatches"`
	FirstMismatch string `json:"first_mismatch,omitempty"`
}

// Soak loads a server as many clients would, and checks that load changes
// no stream's tokens. First it runs every stream's request alone (stream i
// asks for cfg.Tokens tokens of cfg.Prompt with seed i+1), one after
// another, and keeps their token ids. Then cfg.Streams sockets stream at
// once, each sending its request again and again (a new request id each
// time) until cfg.Duration has passed or it has sent cfg.Requests, and
// every answer is compared with its solo run. A socket or server error
// ends the run with that error; differing tokens are counted, not fatal.
func Soak(ctx context.Context, cfg SoakConfig) (SoakResult, error) {
	if cfg.Streams < 1 || cfg.Tokens < 1 || (cfg.Duration <= 0 && cfg.Requests <= 0) {
		return SoakResult{}, fmt.Errorf("loadgen: soak: want at least one stream, one token, and a duration or a request count")
	}
	run := runs.Add(1)
	solo := make([][]int32, cfg.Streams)
	for i := range solo {
		err := onSocket(ctx, cfg.URL, func(c *websocket.Conn) error {
			ids, err := streamRequest(ctx, c, fmt.Sprintf("soak-%d-solo-%d", run, i), i+1, cfg.Tokens, cfg.Prompt, nil)
			solo[i] = ids
			return err
		})
		if err != nil {
			return SoakResult{}, fmt.Errorf("loadgen: soak: the solo run of stream %d: %w", i, err)
		}
	}

	var rec recorder
	var mu sync.Mutex
	res := SoakResult{Streams: cfg.Streams}
	var wg sync.WaitGroup
	errs := make([]error, cfg.Streams)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	for i := 0; i < cfg.Streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = onSocket(ctx, cfg.URL, func(c *websocket.Conn) error {
				for k := 0; cfg.Requests <= 0 || k < cfg.Requests; k++ {
					if cfg.Duration > 0 && time.Now().After(deadline) {
						return nil
					}
					id := fmt.Sprintf("soak-%d-%d-%d", run, i, k)
					ids, err := streamRequest(ctx, c, id, i+1, cfg.Tokens, cfg.Prompt, &rec)
					if err != nil {
						return err
					}
					mu.Lock()
					res.Requests++
					if !slices.Equal(ids, solo[i]) {
						res.Mismatches++
						if res.FirstMismatch == "" {
							res.FirstMismatch = fmt.Sprintf("request %s: %d tokens %v, alone %d tokens %v", id, len(ids), ids, len(solo[i]), solo[i])
						}
					}
					mu.Unlock()
				}
				return nil
			})
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	for i, err := range errs {
		if err != nil {
			return res, fmt.Errorf("loadgen: soak: stream %d: %w", i, err)
		}
	}
	m, err := rec.result(fmt.Sprintf("a soak of %d streams", cfg.Streams))
	if err != nil {
		return res, err
	}
	res.Tokens, res.TokS, res.P50, res.P99 = m.Tokens, m.TokS, m.P50, m.P99
	return res, nil
}

// onSocket opens a socket to url, runs use on it and closes it.
func onSocket(ctx context.Context, url string, use func(*websocket.Conn) error) error {
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 22)
	if err := use(c); err != nil {
		return err
	}
	return c.Close(websocket.StatusNormalClosure, "")
}

// streamRequest sends one generate frame on c (request id, seed, up to
// tokens tokens of prompt) and reads its frames to the done frame: the
// token ids, in order. With rec, each token's arrival is recorded there.
func streamRequest(ctx context.Context, c *websocket.Conn, id string, seed, tokens int, prompt string, rec *recorder) ([]int32, error) {
	frame, _ := json.Marshal(map[string]any{"type": "generate", "id": id, "prompt": prompt, "max_tokens": tokens, "seed": seed})
	if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
		return nil, err
	}
	var ids []int32
	var prev time.Time
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return ids, err
		}
		var f struct {
			Type, ID, Code, Message string
			Index                   int
			Token                   int32
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return ids, fmt.Errorf("request %s: a frame that is not JSON: %w", id, err)
		}
		if f.ID != id {
			return ids, fmt.Errorf("request %s: a frame of request %q on its socket", id, f.ID)
		}
		switch f.Type {
		case "done":
			return ids, nil
		case "error":
			return ids, fmt.Errorf("request %s: %s: %s", id, f.Code, f.Message)
		case "token":
			if f.Token < 0 {
				continue // text held back for a stop string, released at the end
			}
			ids = append(ids, f.Token)
			if rec != nil {
				prev = rec.token(prev)
			}
		}
	}
}
