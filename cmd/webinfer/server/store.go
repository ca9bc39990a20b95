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

// Store keeps reports.
type Store interface {
	// Add stores rec and returns its id.
	Add(ctx context.Context, rec Record) (int64, error)
	// List returns the records f selects, oldest first.
	List(ctx context.Context, f Filter) ([]Record, error)
	// Count is the number of records held.
	Count(ctx context.Context) (int, error)
}

// MemoryStore keeps reports in memory, for tests and `--db :memory:`.
type MemoryStore struct {
	mu   sync.Mutex
	recs []Record
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

// CompatRow is one engine version's line in the compatibility matrix,
// from its latest page report.
type CompatRow struct {
	Engine    string    `json:"engine"`
	Version   string    `json:"version"`
	WebGPU    bool      `json:"webgpu"`
	Adapter   string    `json:"adapter"`
	Fallback  bool      `json:"fallback"`
	F16       bool      `json:"shader_f16"`
	Subgroups bool      `json:"subgroups"`
	SIMD      bool      `json:"wasm_simd"`
	Threads   bool      `json:"wasm_threads"`
	Backend   string    `json:"backend"`
	Precision string    `json:"precision"`
	ChecksOK  bool      `json:"checks_ok"`
	Errors    int       `json:"errors"`
	Reports   int       `json:"reports"`
	LastSeen  time.Time `json:"last_seen"`
}

// Compat is the matrix GET /api/compat returns.
type Compat struct {
	Rows []CompatRow `json:"rows"`
}

// BuildCompat makes the matrix from page reports: one row per engine and
// version, from the newest report of each, counting all of them.
func BuildCompat(recs []Record) Compat {
	rows := map[string]*CompatRow{}
	var keys []string
	for _, rec := range recs {
		if rec.Kind != "page" || rec.Page == nil {
			continue
		}
		p := rec.Page
		key := p.Engine.Name + " " + p.Engine.Version
		row, ok := rows[key]
		if !ok {
			row = &CompatRow{}
			rows[key] = row
			keys = append(keys, key)
		}
		n := row.Reports + 1
		if rec.Received.Before(row.LastSeen) {
			row.Reports = n
			continue
		}
		f := p.Features
		*row = CompatRow{
			Engine: p.Engine.Name, Version: p.Engine.Version,
			WebGPU:    f.WebGPU.Present && f.WebGPU.Adapter != nil,
			F16:       slices.Contains(f.WebGPU.Features, "shader-f16"),
			Subgroups: slices.Contains(f.WebGPU.Features, "subgroups"),
			SIMD:      f.Wasm.SIMD, Threads: f.Wasm.Threads,
			Backend: p.Backend, Precision: p.Precision,
			ChecksOK: len(p.Checks) > 0, Errors: len(p.Errors),
			Reports: n, LastSeen: rec.Received,
		}
		if a := f.WebGPU.Adapter; a != nil {
			row.Fallback = a.IsFallbackAdapter
			for _, s := range []string{a.Description, a.Architecture, a.Vendor} {
				if s != "" {
					row.Adapter = s
					break
				}
			}
		}
		for _, c := range p.Checks {
			row.ChecksOK = row.ChecksOK && c.OK
		}
	}
	sort.Strings(keys)
	out := Compat{Rows: []CompatRow{}}
	for _, k := range keys {
		out.Rows = append(out.Rows, *rows[k])
	}
	return out
}
