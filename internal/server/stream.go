package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/webinfer/webinfer/wasm/engine"
)

// /v1/stream: many requests share one socket; every request is kept (its
// token frames and its end) while it runs and for keepDone after, by id,
// so that a client that reconnects sends resume with the index it wants
// next and gets the rest, nothing lost or repeated. A request goes on when
// its socket drops (bounded by its max_tokens) so that it can be resumed;
// abort ends it.

// keepDone is how long a finished request stays resumable.
const keepDone = 5 * time.Minute

// live is one request of /v1/stream: what it has produced so far.
type live struct {
	id      string
	cancel  context.CancelFunc
	mu      sync.Mutex
	toks    []tokenFrame
	end     any           // the doneFrame or errorFrame, once it ended
	changed chan struct{} // closed and replaced at every change
	ended   time.Time
}

func newLive(id string, cancel context.CancelFunc) *live {
	return &live{id: id, cancel: cancel, changed: make(chan struct{})}
}

func (l *live) update(f func()) {
	l.mu.Lock()
	f()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// registry holds the requests of every socket, by id.
type registry struct {
	mu   sync.Mutex
	reqs map[string]*live
}

// add registers a new request, or says the id is taken by one that runs
// or ended recently.
func (g *registry) add(l *live) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	for id, r := range g.reqs { // forget requests that ended long ago
		r.mu.Lock()
		old := r.end != nil && now.Sub(r.ended) > keepDone
		r.mu.Unlock()
		if old {
			delete(g.reqs, id)
		}
	}
	if _, taken := g.reqs[l.id]; taken {
		return false
	}
	g.reqs[l.id] = l
	return true
}

func (g *registry) get(id string) *live {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reqs[id]
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.Origins})
	if err != nil {
		return // Accept has answered the client
	}
	defer conn.CloseNow()
	// Frames over MaxBody get a coded error (parseFrame) and the socket
	// stays; frames over four times that are not read at all: the
	// library closes the socket with status 1009 (message too big).
	conn.SetReadLimit(4 * s.cfg.Limits.MaxBody)
	ctx := r.Context()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	send := func(v any) error {
		b, _ := json.Marshal(v)
		wctx, c := context.WithTimeout(ctx, 30*time.Second)
		defer c()
		return conn.Write(wctx, websocket.MessageText, b)
	}
	var mu sync.Mutex
	running := 0 // this socket's forwarders
	lastActive := time.Now()
	active := func() { mu.Lock(); lastActive = time.Now(); mu.Unlock() }
	forward := func(l *live, from int, coalesce bool) {
		mu.Lock()
		running++
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { mu.Lock(); running--; lastActive = time.Now(); mu.Unlock() }()
			s.forward(ctx, l, from, coalesce, send)
		}()
	}
	// Close the socket once it has been idle (no frame from the client,
	// nothing streaming to it) for IdleTimeout.
	idle := s.cfg.Limits.IdleTimeout
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(max(idle/4, time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			mu.Lock()
			quiet := running == 0 && time.Since(lastActive) > idle
			mu.Unlock()
			if quiet {
				conn.Close(websocket.StatusNormalClosure, fmt.Sprintf("idle for %v", idle))
				cancel()
				return
			}
		}
	}()
	for {
		typ, data, err := conn.Read(ctx)
		active()
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) || ctx.Err() != nil {
				return
			}
			return
		}
		if typ != websocket.MessageText {
			_ = send(errorFrame{Type: "error", Code: "bad-frame", Message: "frames are JSON text"})
			continue
		}
		f, aerr := parseFrame(data, s.cfg.Limits)
		if aerr != nil {
			_ = send(errorFrame{Type: "error", ID: f.ID, Code: aerr.code, Message: aerr.message})
			continue
		}
		switch f.Type {
		case "generate":
			if s.cfg.Engine == nil {
				_ = send(errorFrame{Type: "error", ID: f.ID, Code: "no-model", Message: "this server was started without a model"})
				continue
			}
			mu.Lock()
			full := running >= s.cfg.Limits.MaxPerClient
			mu.Unlock()
			if full {
				_ = send(errorFrame{Type: "error", ID: f.ID, Code: "too-many", Message: fmt.Sprintf("at most %d requests at once on one socket", s.cfg.Limits.MaxPerClient)})
				continue
			}
			l, ok := s.begin(f)
			if !ok {
				_ = send(errorFrame{Type: "error", ID: f.ID, Code: "bad-frame", Message: fmt.Sprintf("id %q is in use: resume it, or pick another", f.ID)})
				continue
			}
			// Kept before the first token, so that it can be resumed
			// after a crash.
			if err := s.cfg.Store.PutRequest(ctx, f.ID, data); err != nil {
				l.cancel()
				_ = send(errorFrame{Type: "error", ID: f.ID, Code: "store", Message: err.Error()})
				continue
			}
			forward(l, 0, f.Coalesce)
		case "abort":
			if l := s.streams.get(f.ID); l != nil {
				l.cancel()
			} else {
				_ = send(errorFrame{Type: "error", ID: f.ID, Code: "not-found", Message: fmt.Sprintf("no request %q", f.ID)})
			}
		case "resume":
			l := s.streams.get(f.ID)
			if l == nil && s.cfg.Engine != nil {
				l = s.restore(ctx, f.ID)
			}
			if l == nil {
				_ = send(errorFrame{Type: "error", ID: f.ID, Code: "not-found", Message: fmt.Sprintf("no request %q to resume", f.ID)})
				continue
			}
			forward(l, *f.From, f.Coalesce)
		}
	}
}

// begin registers the request of generate frame f and starts it; false
// when its id is taken. The request outlives its socket (see above), not
// the server.
func (s *Server) begin(f clientFrame) (*live, bool) {
	req, _ := f.options.request(f.Prompt, nil, s.cfg.Limits) // parseFrame checked it
	ctx, cancel := context.WithTimeout(s.base, s.cfg.Limits.RequestTimeout)
	l := newLive(f.ID, cancel)
	if !s.streams.add(l) {
		cancel()
		return nil, false
	}
	go s.run(ctx, l, req)
	return l, true
}

// restore starts again a request of an earlier run of the server, from
// the frame the store kept: the same settings give the same tokens
// (greedy, or seeded). Nil when the store has none.
func (s *Server) restore(ctx context.Context, id string) *live {
	data, err := s.cfg.Store.GetRequest(ctx, id)
	if err != nil {
		if !errors.Is(err, ErrNoRequest) {
			s.cfg.Logf("webinfer: resume %s: %v", id, err)
		}
		return nil
	}
	f, aerr := parseFrame(data, s.cfg.Limits)
	if aerr != nil || f.Type != "generate" {
		s.cfg.Logf("webinfer: resume %s: the stored frame is not a generate frame", id)
		return nil
	}
	l, ok := s.begin(f)
	if !ok { // another socket restored it first
		return s.streams.get(id)
	}
	return l
}

// run generates req into l.
func (s *Server) run(ctx context.Context, l *live, req engine.Request) {
	defer l.cancel()
	res, err := s.cfg.Engine.Generate(ctx, req, func(t engine.Token) error {
		if t.Text == "" && t.ID < 0 {
			return nil
		}
		l.update(func() {
			l.toks = append(l.toks, tokenFrame{Type: "token", ID: l.id, Index: len(l.toks), Token: t.ID, Text: t.Text})
		})
		return nil
	})
	done := doneFrame{Type: "done", ID: l.id, Reason: res.Reason, Usage: frameUsage{PromptTokens: res.PromptTokens, CompletionTokens: res.Tokens}}
	var end any = done
	if err != nil {
		ae := genError(err)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			ae = &apiError{code: "timeout", message: fmt.Sprintf("the request ran past its limit of %v", s.cfg.Limits.RequestTimeout)}
		}
		if ae.code == "aborted" {
			done.Reason = "abort"
			end = done
		} else {
			end = errorFrame{Type: "error", ID: l.id, Code: ae.code, Message: ae.message}
		}
	}
	l.update(func() { l.end, l.ended = end, time.Now() })
}

// forward sends l's token frames from index from, as they come, then its
// end, with send; it stops when ctx ends (the socket closed). With
// coalesce, the tokens that wait for the client (a slow reader, or a
// resume from far back) go out together, up to maxCoalesce a frame.
func (s *Server) forward(ctx context.Context, l *live, from int, coalesce bool, send func(any) error) {
	next := from
	for {
		l.mu.Lock()
		var pending []tokenFrame
		if next < len(l.toks) {
			pending = append(pending, l.toks[next:]...)
		}
		end, changed := l.end, l.changed
		l.mu.Unlock()
		if len(pending) == 0 && end != nil {
			_ = send(end)
			return
		}
		if len(pending) > 0 {
			for len(pending) > 0 {
				n := 1
				if coalesce {
					n = min(len(pending), maxCoalesce)
				}
				if send(joinTokens(pending[:n])) != nil {
					return
				}
				next += n
				pending = pending[n:]
			}
			continue // more may have come while sending
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// maxCoalesce bounds the tokens of one coalesced frame.
const maxCoalesce = 256

// joinTokens is one frame for consecutive token frames ts.
func joinTokens(ts []tokenFrame) tokenFrame {
	if len(ts) == 1 {
		return ts[0]
	}
	f := ts[0]
	f.Tokens = make([]int32, len(ts))
	var text strings.Builder
	for i, t := range ts {
		f.Tokens[i] = t.Token
		text.WriteString(t.Text)
	}
	f.Text = text.String()
	return f
}
