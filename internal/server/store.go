package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/webinfer/webinfer/wasm/report"
)

// Record is one stored report: a page report (CONTRACTS.md section 4) or a
// benchmark result (section 6), kept as sent, with what the filters and the
// compatibility matrix need pulled out.
type Record struct {
	ID       int64           `json:"id"`
	Received time.Time       `json:"received"`
	Kind     string          `json:"kind"` // "page" or "bench"
	Engine   string          `json:"engine"`
	Measures []string        `json:"measures"`
	Page     *report.Report  `json:"-"` // decoded, for Kind "page"
	Body     json.RawMessage `json:"report"`
}

// JSON is the record as listed by GET /api/reports.
func (r Record) JSON() json.RawMessage {
	b, _ := json.Marshal(r)
	return b
}

// ParseReport validates a POSTed report and pulls out its fields. It refuses
// anything that is neither a page report nor a bench result, with a message
// naming what is missing.
func ParseReport(body []byte) (Record, error) {
	var probe struct {
		Suite   string          `json:"suite"`
		Engine  json.RawMessage `json:"engine"`
		Backend *string         `json:"backend"`
		Results []struct {
			Testbed struct {
				Engine string `json:"engine"`
			} `json:"testbed"`
			Measure string `json:"measure"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return Record{}, fmt.Errorf("report is not a JSON object: %v", err)
	}
	switch {
	case probe.Suite == "webinfer-bench":
		rec := Record{Kind: "bench", Body: body}
		for _, r := range probe.Results {
			if rec.Engine == "" {
				rec.Engine = r.Testbed.Engine
			}
			if r.Measure != "" && !slices.Contains(rec.Measures, r.Measure) {
				rec.Measures = append(rec.Measures, r.Measure)
			}
		}
		return rec, nil
	case probe.Suite != "":
		return Record{}, fmt.Errorf("unknown suite %q (want webinfer-bench)", probe.Suite)
	case len(probe.Engine) == 0 || probe.Backend == nil:
		return Record{}, errors.New("a page report needs engine and backend fields (a bench result needs suite \"webinfer-bench\")")
	}
	var page report.Report
	if err := json.Unmarshal(body, &page); err != nil {
		return Record{}, fmt.Errorf("page report: %v", err)
	}
	if page.Engine.Name == "" {
		return Record{}, errors.New("page report: engine.name is empty")
	}
	rec := Record{Kind: "page", Engine: page.Engine.Name, Page: &page, Body: body}
	m := page.Metrics
	for name, v := range map[string]float64{"load_ms": m.LoadMillis, "compile_ms": m.CompileMillis, "ttft_ms": m.TTFTMillis, "prefill_tok_s": m.PrefillTokS, "decode_tok_s": m.DecodeTokS} {
		if v != 0 {
			rec.Measures = append(rec.Measures, name)
		}
	}
	sort.Strings(rec.Measures)
	return rec, nil
}

// Filter selects records; zero fields match everything.
type Filter struct {
	Engine  string
	Measure string
	Since   time.Time
}

func (f Filter) match(r Record) bool {
	return (f.Engine == "" || f.Engine == r.Engine) &&
		(f.Measure == "" || slices.Contains(r.Measures, f.Measure)) &&
		(f.Since.IsZero() || !r.Received.Before(f.Since))
}

// Store keeps reports, and the requests of /v1/stream (so that a client
// can resume one after the server restarted: its tokens are regenerated,
// greedy or seeded, and sent from the index asked for).
type Store interface {
	// Add stores rec and returns its id.
	Add(ctx context.Context, rec Record) (int64, error)
	// List returns the records f selects, oldest first.
	List(ctx context.Context, f Filter) ([]Record, error)
	// Count is the number of records held.
	Count(ctx context.Context) (int, error)
	// PutRequest keeps a /v1/stream request's generate frame by its id.
	PutRequest(ctx context.Context, id string, frame []byte) error
	// GetRequest returns the frame kept for id, or ErrNoRequest.
	GetRequest(ctx context.Context, id string) ([]byte, error)
}

// ErrNoRequest is GetRequest's answer for an id it does not hold.
var ErrNoRequest = errors.New("server: no such request")

// MemoryStore keeps reports in memory, for tests and `--db :memory:`.
type MemoryStore struct {
	mu   sync.Mutex
	recs []Record
	reqs map[string][]byte
}

func (m *MemoryStore) PutRequest(_ context.Context, id string, frame []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reqs == nil {
		m.reqs = map[string][]byte{}
	}
	m.reqs[id] = append([]byte(nil), frame...)
	return nil
}

func (m *MemoryStore) GetRequest(_ context.Context, id string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.reqs[id]
	if !ok {
		return nil, ErrNoRequest
	}
	return f, nil
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

func (m *MemoryStore) Add(_ context.Context, rec Record) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec.ID = int64(len(m.recs) + 1)
	m.recs = append(m.recs, rec)
	return rec.ID, nil
}

func (m *MemoryStore) List(_ context.Context, f Filter) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, r := range m.recs {
		if f.match(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *MemoryStore) Count(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs), nil
}

// BuildCompat makes the compatibility matrix (report.BuildCompat) from
// the page reports among recs.
func BuildCompat(recs []Record) report.Compat {
	var seen []report.Received
	for _, rec := range recs {
		if rec.Kind == "page" && rec.Page != nil {
			seen = append(seen, report.Received{Report: rec.Page, At: rec.Received})
		}
	}
	return report.BuildCompat(seen)
}
