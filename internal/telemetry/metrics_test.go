package telemetry_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/telemetry"
	"github.com/scopegate/scopegate/policy"
)

// scrape returns the metrics that m serves, parsed as Prometheus does.
func scrape(t *testing.T, m *telemetry.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// value returns the value of the sample of family name whose labels are
// labels ("k=v" each), and whether there is one.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	for _, m := range mfs[name].GetMetric() {
		var have []string
		for _, l := range m.GetLabel() {
			// An empty label value is no label, as Prometheus sees it.
			if l.GetValue() != "" {
				have = append(have, l.GetName()+"="+l.GetValue())
			}
		}
		sort.Strings(have)
		want := append([]string(nil), labels...)
		sort.Strings(want)
		if strings.Join(have, ",") != strings.Join(want, ",") {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestChecksAreCountedByDecisionReasonAndRoute(t *testing.T) {
	m := telemetry.NewMetrics()
	decisions := []authz.Decision{
		{Allow: true, Status: 200, Reason: authz.ReasonAllowed, Route: "orders-read"},
		{Allow: true, Status: 200, Reason: authz.ReasonAllowed, Route: "orders-read"},
		{Status: 403, Reason: authz.ReasonInsufficientScope, Route: "orders-read"},
		{Allow: true, WouldDeny: true, Status: 403, Reason: authz.ReasonInsufficientScope, Route: "beta"},
		{Status: 403, Reason: authz.ReasonNoRoute},
	}
	for i := range decisions {
		m.ObserveCheck(&decisions[i], 120*time.Microsecond)
	}
	mfs := scrape(t, m)
	tests := []struct {
		labels []string
		want   float64
	}{
		{[]string{"decision=allow", "reason=allowed", "route=orders-read"}, 2},
		{[]string{"decision=deny", "reason=insufficient_scope", "route=orders-read"}, 1},
		{[]string{"decision=would_deny", "reason=insufficient_scope", "route=beta"}, 1},
		{[]string{"decision=deny", "reason=no_route"}, 1},
	}
	for _, tt := range tests {
		if got, ok := value(mfs, "scopegate_checks_total", tt.labels...); !ok || got != tt.want {
			t.Errorf("scopegate_checks_total%v = %v (present %v), want %v", tt.labels, got, ok, tt.want)
		}
	}
	for decision, want := range map[string]float64{"allow": 2, "deny": 2, "would_deny": 1} {
		if got, _ := value(mfs, "scopegate_check_duration_seconds", "decision="+decision); got != want {
			t.Errorf("scopegate_check_duration_seconds{decision=%q} count %v, want %v", decision, got, want)
		}
	}
	h := mfs["scopegate_check_duration_seconds"].GetMetric()[0].GetHistogram()
	if lowest := h.GetBucket()[0]; lowest.GetUpperBound() != 50e-6 {
		t.Errorf("lowest bucket %v, want 50µs", lowest.GetUpperBound())
	}
	for _, family := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if mfs[family] == nil {
			t.Errorf("no %s: the runtime and process collectors are missing", family)
		}
	}
}

func TestObserveCheckDoesNotAllocate(t *testing.T) {
	m := telemetry.NewMetrics()
	d := &authz.Decision{Allow: true, Status: 200, Reason: authz.ReasonAllowed, Route: "orders-read"}
	m.ObserveCheck(d, time.Millisecond) // creates the series
	if n := testing.AllocsPerRun(1000, func() { m.ObserveCheck(d, time.Millisecond) }); n != 0 {
		t.Errorf("ObserveCheck allocates %v times per check, want 0", n)
	}
}

func TestPolicyReloadsAndTheVersionInUse(t *testing.T) {
	m := telemetry.NewMetrics()
	m.PolicyLoaded("aaaaaaaaaaaa")
	mfs := scrape(t, m)
	if v, _ := value(mfs, "scopegate_policy_info", "version=aaaaaaaaaaaa"); v != 1 {
		t.Errorf("policy_info of the first version = %v, want 1", v)
	}
	for _, result := range []string{"ok", "failed"} {
		if v, ok := value(mfs, "scopegate_policy_reloads_total", "result="+result); !ok || v != 0 {
			t.Errorf("reloads %s = %v (present %v) before any reload, want 0", result, v, ok)
		}
	}

	m.PolicyReloaded(nil, errors.New("policy.yaml:3:5: routes[0].publik: unknown field"))
	m.PolicyReloaded(&policy.Policy{Version: "bbbbbbbbbbbb"}, nil)
	mfs = scrape(t, m)
	if _, ok := value(mfs, "scopegate_policy_info", "version=aaaaaaaaaaaa"); ok {
		t.Error("the replaced version is still reported")
	}
	if v, _ := value(mfs, "scopegate_policy_info", "version=bbbbbbbbbbbb"); v != 1 {
		t.Errorf("policy_info of the new version = %v, want 1", v)
	}
	for result, want := range map[string]float64{"ok": 1, "failed": 1} {
		if v, _ := value(mfs, "scopegate_policy_reloads_total", "result="+result); v != want {
			t.Errorf("reloads %s = %v, want %v", result, v, want)
		}
	}
}

func TestCollectedValuesAreReadAtScrape(t *testing.T) {
	m := telemetry.NewMetrics()
	jwks := []authz.JWKSStats{{Issuer: "https://a.example", Fetches: 3, Failures: 1, Keys: 2}}
	in := authz.IntrospectionStats{L1Hits: 5, L1Misses: 2, L2Hits: 1, L2Misses: 1, RedisErrors: 4, Calls: 1, Failures: 1, ShortCircuits: 6, Throttled: 7}
	m.CollectJWKS(func() []authz.JWKSStats { return jwks })
	m.CollectIntrospection(func() authz.IntrospectionStats { return in })
	mfs := scrape(t, m)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"scopegate_jwks_fetches_total", []string{"issuer=https://a.example"}, 3},
		{"scopegate_jwks_fetch_failures_total", []string{"issuer=https://a.example"}, 1},
		{"scopegate_jwks_keys", []string{"issuer=https://a.example"}, 2},
		{"scopegate_introspection_requests_total", nil, 1},
		{"scopegate_introspection_failures_total", nil, 1},
		{"scopegate_introspection_short_circuits_total", nil, 6},
		{"scopegate_introspection_throttled_total", nil, 7},
		{"scopegate_introspection_cache_lookups_total", []string{"tier=memory", "result=hit"}, 5},
		{"scopegate_introspection_cache_lookups_total", []string{"tier=memory", "result=miss"}, 2},
		{"scopegate_introspection_cache_lookups_total", []string{"tier=redis", "result=hit"}, 1},
		{"scopegate_introspection_cache_lookups_total", []string{"tier=redis", "result=miss"}, 1},
		{"scopegate_introspection_cache_redis_errors_total", nil, 4},
	}
	for _, tt := range tests {
		if got, ok := value(mfs, tt.name, tt.labels...); !ok || got != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}

	expiry := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	m.CollectCertificateExpiry(func() time.Time { return expiry })
	if got, _ := value(scrape(t, m), "scopegate_tls_certificate_expiry_timestamp_seconds"); got != float64(expiry.Unix()) {
		t.Errorf("certificate expiry %v, want %v", got, expiry.Unix())
	}

	jwks[0].Fetches = 4
	if got, _ := value(scrape(t, m), "scopegate_jwks_fetches_total", "issuer=https://a.example"); got != 4 {
		t.Errorf("after one more fetch: %v, want 4", got)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestIntrospectionRequestsAreTimedFailedOnesToo(t *testing.T) {
	m := telemetry.NewMetrics()
	calls := 0
	rt := m.InstrumentIntrospection(roundTripper(func(*http.Request) (*http.Response, error) {
		calls++
		if calls == 1 {
			return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
		}
		return nil, errors.New("connection refused")
	}))
	for range 2 {
		req := httptest.NewRequest("POST", "https://idp.example/introspect", nil)
		if resp, err := rt.RoundTrip(req); err == nil {
			resp.Body.Close()
		}
	}
	if got, _ := value(scrape(t, m), "scopegate_introspection_request_duration_seconds"); got != 2 {
		t.Errorf("%v requests timed, want 2", got)
	}
}
