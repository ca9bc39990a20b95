package report

import (
	"slices"
	"sort"
	"time"
)

// Received is a page report and when the server received it.
type Received struct {
	Report *Report
	At     time.Time
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
func BuildCompat(reports []Received) Compat {
	rows := map[string]*CompatRow{}
	var keys []string
	for _, rec := range reports {
		p := rec.Report
		key := p.Engine.Name + " " + p.Engine.Version
		row, ok := rows[key]
		if !ok {
			row = &CompatRow{}
			rows[key] = row
			keys = append(keys, key)
		}
		n := row.Reports + 1
		if rec.At.Before(row.LastSeen) {
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
			Reports: n, LastSeen: rec.At,
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
