// Package telemetry is what scopegate tells its operators: Prometheus
// metrics and the audit log of decisions. It is wiring-level glue: it reads
// the domain's decisions and counters and knows nothing of Envoy.
//
// Every label value comes from configuration or from a fixed set: route
// names from the policy, issuers from the config, reason codes and
// decisions from authz. None comes from a request, so the number of series
// stays bounded whatever the traffic.
package telemetry

import (
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/buildinfo"
	"github.com/scopegate/scopegate/policy"
)

// durationBuckets are the buckets of the latency histograms, in seconds:
// from 50µs, a check answered from a cache, to 1s, an identity provider
// at its worst.
var durationBuckets = []float64{
	50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1,
}

// Metrics are scopegate's Prometheus metrics, on a registry of their own
// that also holds the Go runtime and process collectors. It is safe for
// concurrent use.
type Metrics struct {
	reg           *prometheus.Registry
	checks        *prometheus.CounterVec
	checkDuration *prometheus.HistogramVec
	introspection prometheus.Histogram
	reloads       *prometheus.CounterVec
	policy        *prometheus.GaugeVec

	// series holds the children of checks and checkDuration by decision,
	// reason and route, so that a check finds its counters with one map
	// read and no allocation. It is copied on write: new keys are rare
	// (their number is bounded by the policy) and reads are every check.
	series atomic.Pointer[map[seriesKey]checkSeries]

	mu      sync.Mutex // serializes writers of series and version
	version string     // the policy version policy is set for
}

type seriesKey struct {
	decision string
	reason   authz.Reason
	route    string
}

type checkSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics returns scopegate's metrics, registered.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopegate_checks_total",
			Help: "Checks decided, by decision (allow, deny, would_deny), reason code and route name (empty when no route matched).",
		}, []string{"decision", "reason", "route"}),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scopegate_check_duration_seconds",
			Help:    "Time to decide a check, from the request to the decision, by decision.",
			Buckets: durationBuckets,
		}, []string{"decision"}),
		introspection: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scopegate_introspection_request_duration_seconds",
			Help:    "Time of the requests to the introspection endpoint, failed ones included.",
			Buckets: durationBuckets,
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopegate_policy_reloads_total",
			Help: "Policy reloads, by result: ok, or failed (the last good policy kept serving).",
		}, []string{"result"}),
		policy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scopegate_policy_info",
			Help: "The policy in use: 1 for its version (the first 12 hex digits of the SHA-256 of its file).",
		}, []string{"version"}),
	}
	m.series.Store(&map[seriesKey]checkSeries{})
	// Both results exist from the start, so that rate() sees the first
	// failure.
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	m.reg.MustRegister(
		m.checks, m.checkDuration, m.introspection, m.reloads, m.policy,
		buildInfoGauge(buildinfo.Read()),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// buildInfoGauge is scopegate_build_info: 1, labelled with the build b,
// so that a dashboard can tell which build each instance runs.
func buildInfoGauge(b buildinfo.Info) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "scopegate_build_info",
		Help:        "The build of scopegate that runs: 1, labelled with its version, commit and Go release.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "go_version": b.GoVersion},
	})
	g.Set(1)
	return g
}

// CollectAuditDropped adds to the metrics the count of audit lines that
// dropped returns, such as a buffered Audit's Dropped, read at each
// scrape.
func (m *Metrics) CollectAuditDropped(dropped func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "scopegate_audit_dropped_lines_total",
		Help: "Audit lines dropped, not written, because the audit output did not take them in time or failed; the checks went on.",
	}, func() float64 { return float64(dropped()) }))
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Decision names d as the metrics and the audit log do: allow, deny, or
// would_deny for a deny that dry run let through.
func Decision(d *authz.Decision) string {
	switch {
	case d.WouldDeny:
		return "would_deny"
	case d.Allow:
		return "allow"
	}
	return "deny"
}

// ObserveCheck counts the check that ended in d and took took.
func (m *Metrics) ObserveCheck(d *authz.Decision, took time.Duration) {
	key := seriesKey{Decision(d), d.Reason, d.Route}
	s, ok := (*m.series.Load())[key]
	if !ok {
		s = m.addSeries(key)
	}
	s.count.Inc()
	s.duration.Observe(took.Seconds())
}

// addSeries creates the children of key and publishes them in a new copy
// of the series map.
func (m *Metrics) addSeries(key seriesKey) checkSeries {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.series.Load()
	if s, ok := old[key]; ok {
		return s
	}
	s := checkSeries{
		count:    m.checks.WithLabelValues(key.decision, string(key.reason), key.route),
		duration: m.checkDuration.WithLabelValues(key.decision),
	}
	next := maps.Clone(old)
	next[key] = s
	m.series.Store(&next)
	return s
}

// PolicyLoaded records version as the version of the policy in use.
func (m *Metrics) PolicyLoaded(version string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policy.WithLabelValues(version).Set(1)
	if m.version != version {
		m.policy.DeleteLabelValues(m.version)
		m.version = version
	}
}

// PolicyReloaded counts a reload of the policy: p is the new policy, or
// err says why the file could not be loaded. Its signature is that of
// policy.Watcher.OnChange.
func (m *Metrics) PolicyReloaded(p *policy.Policy, err error) {
	if err != nil {
		m.reloads.WithLabelValues("failed").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
	m.PolicyLoaded(p.Version)
}

// InstrumentIntrospection returns next, timing each request it sends, for
// the client of the introspection endpoint. A nil next means
// http.DefaultTransport.
func (m *Metrics) InstrumentIntrospection(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return timedTransport{next: next, h: m.introspection}
}

type timedTransport struct {
	next http.RoundTripper
	h    prometheus.Observer
}

func (t timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	t.h.Observe(time.Since(start).Seconds())
	return resp, err
}
