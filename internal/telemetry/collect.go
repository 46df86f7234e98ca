package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopegate/scopegate/authz"
)

// CollectJWKS adds to the metrics the key-fetching counters that stats
// returns, such as a JWTVerifier's JWKSStats, read at each scrape.
func (m *Metrics) CollectJWKS(stats func() []authz.JWKSStats) {
	m.reg.MustRegister(jwksCollector(stats))
}

// CollectIntrospection adds to the metrics the counters that stats
// returns, such as an Introspector's Stats, read at each scrape.
func (m *Metrics) CollectIntrospection(stats func() authz.IntrospectionStats) {
	m.reg.MustRegister(introspectionCollector(stats))
}

// CollectCertificateExpiry adds to the metrics when the certificate that
// notAfter returns, the one the listeners serve, expires: an alert on it
// catches a rotation that did not happen.
func (m *Metrics) CollectCertificateExpiry(notAfter func() time.Time) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "scopegate_tls_certificate_expiry_timestamp_seconds",
		Help: "When the certificate of the ext_authz listeners expires, in seconds since the Unix epoch.",
	}, func() float64 { return float64(notAfter().Unix()) }))
}

var (
	jwksFetches = prometheus.NewDesc("scopegate_jwks_fetches_total",
		"Fetches of an issuer's JWKS, discovery included, by issuer.", []string{"issuer"}, nil)
	jwksFailures = prometheus.NewDesc("scopegate_jwks_fetch_failures_total",
		"Fetches of an issuer's JWKS that failed, by issuer; the keys fetched before stay in use.", []string{"issuer"}, nil)
	jwksKeys = prometheus.NewDesc("scopegate_jwks_keys",
		"Keys in the issuer's JWKS in use, by issuer.", []string{"issuer"}, nil)
)

type jwksCollector func() []authz.JWKSStats

func (c jwksCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jwksFetches
	ch <- jwksFailures
	ch <- jwksKeys
}

func (c jwksCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c() {
		ch <- prometheus.MustNewConstMetric(jwksFetches, prometheus.CounterValue, float64(s.Fetches), s.Issuer)
		ch <- prometheus.MustNewConstMetric(jwksFailures, prometheus.CounterValue, float64(s.Failures), s.Issuer)
		ch <- prometheus.MustNewConstMetric(jwksKeys, prometheus.GaugeValue, float64(s.Keys), s.Issuer)
	}
}

var (
	introspectionRequests = prometheus.NewDesc("scopegate_introspection_requests_total",
		"Requests sent to the introspection endpoint.", nil, nil)
	introspectionFailures = prometheus.NewDesc("scopegate_introspection_failures_total",
		"Requests to the introspection endpoint that got no usable answer.", nil, nil)
	introspectionShortCircuits = prometheus.NewDesc("scopegate_introspection_short_circuits_total",
		"Checks denied at once, without a request, because the circuit breaker was open.", nil, nil)
	introspectionThrottled = prometheus.NewDesc("scopegate_introspection_throttled_total",
		"Checks denied at once, without a request, because max_concurrent or max_rate would be exceeded.", nil, nil)
	cacheLookups = prometheus.NewDesc("scopegate_introspection_cache_lookups_total",
		"Lookups in the introspection cache, by tier (memory, redis) and result (hit, miss).", []string{"tier", "result"}, nil)
	redisErrors = prometheus.NewDesc("scopegate_introspection_cache_redis_errors_total",
		"Redis calls of the introspection cache that failed or timed out; checks went on without Redis.", nil, nil)
)

type introspectionCollector func() authz.IntrospectionStats

func (c introspectionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{introspectionRequests, introspectionFailures, introspectionShortCircuits, introspectionThrottled, cacheLookups, redisErrors} {
		ch <- d
	}
}

func (c introspectionCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(introspectionRequests, s.Calls)
	counter(introspectionFailures, s.Failures)
	counter(introspectionShortCircuits, s.ShortCircuits)
	counter(introspectionThrottled, s.Throttled)
	counter(cacheLookups, s.L1Hits, "memory", "hit")
	counter(cacheLookups, s.L1Misses, "memory", "miss")
	counter(cacheLookups, s.L2Hits, "redis", "hit")
	counter(cacheLookups, s.L2Misses, "redis", "miss")
	counter(redisErrors, s.RedisErrors)
}
