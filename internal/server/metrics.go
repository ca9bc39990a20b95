package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/webinfer/webinfer/wasm/engine"
)

// metrics are the server's Prometheus metrics: its own (webinfer_*) and
// generation's, named after the OpenTelemetry GenAI semantic conventions
// (gen_ai.server.time_to_first_token → gen_ai_server_time_to_first_token_seconds,
// and so on), one registry per Server.
type metrics struct {
	reg            *prometheus.Registry
	requests       prometheus.Counter
	failures       prometheus.Counter
	running        prometheus.Gauge
	ttft           prometheus.Histogram
	perToken       prometheus.Histogram
	tokenUsage     *prometheus.HistogramVec
	requestSeconds prometheus.Histogram
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	latency := prometheus.ExponentialBuckets(0.001, 2, 16) // 1 ms … 33 s
	m.requests = prometheus.NewCounter(prometheus.CounterOpts{Name: "webinfer_http_requests_total", Help: "HTTP requests served."})
	m.failures = prometheus.NewCounter(prometheus.CounterOpts{Name: "webinfer_http_errors_total", Help: "HTTP requests answered with a 4xx or 5xx status."})
	m.running = prometheus.NewGauge(prometheus.GaugeOpts{Name: "webinfer_generations_running", Help: "Generation requests running now."})
	m.ttft = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gen_ai_server_time_to_first_token_seconds",
		Help: "Time to generate the first token of a request (gen_ai.server.time_to_first_token).", Buckets: latency})
	m.perToken = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gen_ai_server_time_per_output_token_seconds",
		Help: "Time per output token after the first (gen_ai.server.time_per_output_token).", Buckets: latency})
	m.requestSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gen_ai_server_request_duration_seconds",
		Help: "Duration of a generation request (gen_ai.server.request.duration).", Buckets: latency})
	m.tokenUsage = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gen_ai_client_token_usage",
		Help: "Tokens per request, by type: input or output (gen_ai.client.token.usage).", Buckets: prometheus.ExponentialBuckets(1, 4, 9)},
		[]string{"gen_ai_token_type"})
	m.reg.MustRegister(m.requests, m.failures, m.running, m.ttft, m.perToken, m.requestSeconds, m.tokenUsage,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "webinfer_uptime_seconds", Help: "Seconds since the server started."},
			func() float64 { return time.Since(s.started).Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "webinfer_reports_stored", Help: "Reports held by the store."},
			func() float64 {
				n, err := s.cfg.Store.Count(context.Background())
				if err != nil {
					return -1
				}
				return float64(n)
			}),
		collectors.NewGoCollector())
	return m
}

// handler serves the registry in Prometheus' text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// generation records a finished generation.
func (m *metrics) generation(res engine.Result, took time.Duration) {
	m.requestSeconds.Observe(took.Seconds())
	m.tokenUsage.WithLabelValues("input").Observe(float64(res.PromptTokens))
	m.tokenUsage.WithLabelValues("output").Observe(float64(res.Tokens))
	if res.Tokens > 0 {
		m.ttft.Observe(res.TTFTMillis / 1000)
	}
	if res.DecodeTokS > 0 {
		m.perToken.Observe(1 / res.DecodeTokS)
	}
}

// meteredGenerator counts running generations and records each one.
type meteredGenerator struct {
	g Generator
	m *metrics
}

func (g meteredGenerator) Generate(ctx context.Context, req engine.Request, emit func(engine.Token) error) (engine.Result, error) {
	g.m.running.Inc()
	defer g.m.running.Dec()
	t0 := time.Now()
	res, err := g.g.Generate(ctx, req, emit)
	if err == nil {
		g.m.generation(res, time.Since(t0))
	}
	return res, err
}
