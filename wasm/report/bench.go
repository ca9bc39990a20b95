package report

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Bench is the benchmark JSON of CONTRACTS.md section 6.
type Bench struct {
	Suite   string        `json:"suite"` // "webinfer-bench"
	Version int           `json:"version"`
	Commit  string        `json:"commit"`
	Started string        `json:"started"` // RFC 3339
	Results []BenchResult `json:"results"`
	Peers   []BenchResult `json:"peers"`
}

// Testbed says where a result was measured.
type Testbed struct {
	Engine        string `json:"engine"` // "native", "chromium", ..., or a peer's name
	EngineVersion string `json:"engine_version"`
	Adapter       string `json:"adapter"`
	Fallback      bool   `json:"fallback"`
	OS            string `json:"os"`
	CPUCores      int    `json:"cpu_cores"`
	Threads       int    `json:"threads,omitempty"`
	SIMD          string `json:"simd,omitempty"`
}

// BenchModel names the model measured.
type BenchModel struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

// BenchResult is one measure of one case on one testbed.
type BenchResult struct {
	Testbed        Testbed    `json:"testbed"`
	Model          BenchModel `json:"model"`
	Backend        string     `json:"backend"`
	Case           string     `json:"case"`
	Measure        string     `json:"measure"`
	Unit           string     `json:"unit"`
	HigherIsBetter bool       `json:"higher_is_better"`
	Samples        []float64  `json:"samples"`
	Median         float64    `json:"median"`
	CI95           [2]float64 `json:"ci95"`
}

// Summarize sets Median and CI95 from Samples: the 95% interval of the
// median by a seeded bootstrap (2000 resamples), so reruns of the same
// samples give the same interval.
func (r *BenchResult) Summarize() {
	r.Median = median(r.Samples)
	if len(r.Samples) < 2 {
		r.CI95 = [2]float64{r.Median, r.Median}
		return
	}
	rng := rand.New(rand.NewPCG(1, 2))
	meds := make([]float64, 2000)
	buf := make([]float64, len(r.Samples))
	for i := range meds {
		for j := range buf {
			buf[j] = r.Samples[rng.IntN(len(r.Samples))]
		}
		meds[i] = median(buf)
	}
	sort.Float64s(meds)
	r.CI95 = [2]float64{meds[int(0.025*float64(len(meds)))], meds[int(math.Min(0.975*float64(len(meds)), float64(len(meds)-1)))]}
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
