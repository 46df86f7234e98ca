package authz

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/scopegate/scopegate/policy"
)

// Introspection configures RFC 7662 token introspection, which checks the
// tokens scopegate cannot verify itself: opaque tokens, and the JWTs of
// issuers marked introspect_jwts.
type Introspection struct {
	// Endpoint is the provider's introspection endpoint. When it is empty,
	// DiscoverIntrospection fills it from the introspection_endpoint of
	// Issuer's discovery document.
	Endpoint string `yaml:"endpoint"`
	// Issuer is the provider whose OpenID Connect discovery document names
	// the endpoint, when Endpoint is empty.
	Issuer string `yaml:"issuer"`
	// AllowInsecureHTTP lets Endpoint, or Issuer and the endpoint it
	// names, be plain http to any host, not only to a loopback one: for a
	// provider reached over a network that protects the traffic itself,
	// such as a service mesh with mutual TLS. Elsewhere the token and the
	// client secret would cross the network in the clear.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
	// Audiences, when set, must intersect an introspected token's aud, as
	// an issuer's audiences must a JWT's: a token minted for another API
	// must not pass here.
	Audiences []string `yaml:"audiences"`
	// Issuers, when set, must name an introspected token's iss exactly,
	// and a token without iss is refused. An endpoint vouches for every
	// token its provider knows, which may be more than the issuers trusted
	// here: another realm, tenant or authorization server of the same
	// provider.
	Issuers []string `yaml:"issuers"`
	// ClientIDClaims are the members of an answer that hold the token's
	// client id, the first one present deciding; empty means client_id,
	// then azp. sub is a client id only when named.
	ClientIDClaims []string `yaml:"client_id_claims"`
	// RequireBinding refuses the introspected tokens that are not bound to
	// what it names (mtls, dpop or any), as an issuer's require_binding
	// does for its JWTs.
	RequireBinding policy.Binding `yaml:"require_binding"`
	// AuthMethod is how scopegate authenticates to the endpoint:
	// "client_secret_basic" (the default) or "client_secret_post".
	AuthMethod string `yaml:"auth_method"`
	ClientID   string `yaml:"client_id"`
	// The client secret is read from a file or from an environment
	// variable, never from the configuration itself.
	ClientSecretFile string `yaml:"client_secret_file"`
	ClientSecretEnv  string `yaml:"client_secret_env"`
	// Timeout bounds one introspection request; default
	// DefaultIntrospectionTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// MaxConcurrent bounds the requests to the endpoint under way at once;
	// zero means DefaultIntrospectionMaxConcurrent. MaxRate bounds the
	// requests per second, in bursts of at most MaxRate; zero means
	// DefaultIntrospectionMaxRate. Any bearer string that is not cached
	// costs a request, so without them anyone could make the provider
	// answer as fast as they can send garbage. A check past either bound
	// is refused at once as unavailable (503); checks answered from the
	// cache are not bounded.
	MaxConcurrent int `yaml:"max_concurrent"`
	MaxRate       int `yaml:"max_rate"`
	// ReservedRate is the part of MaxRate kept for the peers (source
	// addresses) that presented a valid token in the last 10 minutes, or
	// twice max_ttl if longer; zero means half of MaxRate. Every other
	// peer shares the rest, and each may spend at most MaxRatePerPeer a
	// second of it; zero means a tenth of MaxRate, at least 1. So a flood
	// of random bearer strings neither locks out the clients that hold
	// valid tokens nor, from a few addresses, a client that arrives with a
	// new one.
	ReservedRate   int `yaml:"reserved_rate"`
	MaxRatePerPeer int `yaml:"max_rate_per_peer"`
	// TokenFormat, when set, is the form of the provider's opaque tokens:
	// any other token, except the JWTs of issuers marked introspect_jwts,
	// is refused as malformed without a request.
	TokenFormat *TokenFormat       `yaml:"token_format"`
	Cache       IntrospectionCache `yaml:"cache"`
	Breaker     CircuitBreaker     `yaml:"breaker"`
}

// IntrospectionCache configures the cache of introspection answers. An
// answer is cached in process and, when Redis is set, in Redis too, so that
// every instance shares it. A cached active token is accepted until its
// answer goes stale, even if it is revoked meanwhile: MaxTTL bounds that
// delay.
type IntrospectionCache struct {
	// MaxTTL bounds how long an active token's answer is cached; it is
	// never cached past the token's exp. Nil means DefaultMaxTTL; zero
	// turns all caching off, of inactive answers too, so that every check
	// asks the provider.
	MaxTTL *time.Duration `yaml:"max_ttl"`
	// NegativeTTL is how long an inactive answer is cached. Nil means
	// DefaultNegativeTTL; zero caches no inactive answer.
	NegativeTTL *time.Duration `yaml:"negative_ttl"`
	// MaxEntries bounds the in-process cache; zero means
	// DefaultCacheEntries.
	MaxEntries int `yaml:"max_entries"`
	// Redis, when set, adds a tier shared by every instance behind the
	// in-process one.
	Redis *Redis `yaml:"redis"`
}

// CircuitBreaker configures how introspection stops calling a provider that
// keeps failing. After Failures consecutive failures, checks that need the
// provider are denied at once for Backoff; then one check is let through as
// a probe. A failed probe doubles the wait, up to MaxBackoff; a successful
// one closes the breaker. A failure is a request that got no answer in
// time, a 429 or a 5xx status: the provider's own state. Any other answer,
// a 4xx refusal or a malformed body included, is about the request or the
// token, which a caller chooses: counting it would let anyone open the
// breaker for everyone.
type CircuitBreaker struct {
	Failures   int           `yaml:"failures"`    // default 5
	Backoff    time.Duration `yaml:"backoff"`     // default 1s
	MaxBackoff time.Duration `yaml:"max_backoff"` // default 30s
}

// Defaults of an Introspection configuration.
//
// DefaultIntrospectionMaxRate is per instance. At the default max_ttl it
// keeps the answers about 30,000 distinct tokens fresh, far more than the
// clients of a service usually hold, and an instance that starts with an
// empty cache fills it with that many answers a second; yet a flood of
// garbage tokens costs the provider at most 100 requests a second per
// instance, a load that a self-hosted provider takes in its stride. Behind
// a provider that limits its clients' rates, set max_rate below its limit
// divided by the number of instances: its 429s count as failures and would
// open the breaker.
const (
	DefaultIntrospectionTimeout       = 500 * time.Millisecond
	DefaultIntrospectionMaxConcurrent = 64
	DefaultIntrospectionMaxRate       = 100
	DefaultMaxTTL                     = 5 * time.Minute
	DefaultNegativeTTL                = 10 * time.Second
)

// The client authentication methods of RFC 6749 section 2.3.1.
const (
	ClientSecretBasic = "client_secret_basic"
	ClientSecretPost  = "client_secret_post"
)

// Validate reports every problem of c, with fields named as in YAML
// relative to the introspection block.
func (c *Introspection) Validate() []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case c.Endpoint != "" && c.Issuer != "":
		add("issuer", "set endpoint or issuer (to discover the endpoint), not both")
	case c.Endpoint != "":
		if err := checkEndpoint(c.Endpoint, c.AllowInsecureHTTP); err != nil {
			add("endpoint", "%v", err)
		}
	case c.Issuer != "":
		if err := checkEndpoint(c.Issuer, c.AllowInsecureHTTP); err != nil {
			add("issuer", "%v", err)
		}
	default:
		add("endpoint", "the introspection endpoint is required: set endpoint, or issuer to discover it")
	}
	switch c.AuthMethod {
	case "", ClientSecretBasic, ClientSecretPost:
	default:
		add("auth_method", "%q is not %s or %s", c.AuthMethod, ClientSecretBasic, ClientSecretPost)
	}
	if c.ClientID == "" {
		add("client_id", "the client scopegate authenticates as is required")
	}
	switch {
	case c.ClientSecretFile == "" && c.ClientSecretEnv == "":
		add("client_secret_file", "the client secret is required: set client_secret_file or client_secret_env")
	case c.ClientSecretFile != "" && c.ClientSecretEnv != "":
		add("client_secret_file", "set client_secret_file or client_secret_env, not both")
	}
	nonNegative := func(field string, d time.Duration) {
		if d < 0 {
			add(field, "must not be negative")
		}
	}
	for i, iss := range c.Issuers {
		if iss == "" {
			add(fmt.Sprintf("issuers[%d]", i), "an issuer must not be empty")
		}
	}
	validateClientIDClaims(c.ClientIDClaims, add)
	if err := c.RequireBinding.Check(); err != nil {
		add("require_binding", "%v", err)
	}
	nonNegative("timeout", c.Timeout)
	if c.MaxConcurrent < 0 {
		add("max_concurrent", "must not be negative")
	}
	if c.MaxRate < 0 {
		add("max_rate", "must not be negative")
	}
	maxRate := cmp.Or(c.MaxRate, DefaultIntrospectionMaxRate)
	switch {
	case c.ReservedRate < 0:
		add("reserved_rate", "must not be negative")
	case c.ReservedRate >= maxRate && c.MaxRate >= 0:
		add("reserved_rate", "must be less than max_rate (%d): a client that arrives with its first token must be able to get it introspected", maxRate)
	}
	switch {
	case c.MaxRatePerPeer < 0:
		add("max_rate_per_peer", "must not be negative")
	case c.MaxRatePerPeer > maxRate && c.MaxRate >= 0:
		add("max_rate_per_peer", "must not exceed max_rate (%d)", maxRate)
	}
	if c.TokenFormat != nil {
		for _, fe := range c.TokenFormat.Validate() {
			add("token_format."+fe.Field, "%s", fe.Msg)
		}
	}
	if c.Cache.MaxTTL != nil {
		nonNegative("cache.max_ttl", *c.Cache.MaxTTL)
	}
	if c.Cache.NegativeTTL != nil {
		nonNegative("cache.negative_ttl", *c.Cache.NegativeTTL)
	}
	if c.Cache.MaxEntries < 0 {
		add("cache.max_entries", "must not be negative")
	}
	if c.Cache.Redis != nil {
		for _, fe := range c.Cache.Redis.Validate() {
			add("cache.redis."+fe.Field, "%s", fe.Msg)
		}
	}
	if c.Breaker.Failures < 0 {
		add("breaker.failures", "must not be negative")
	}
	nonNegative("breaker.backoff", c.Breaker.Backoff)
	nonNegative("breaker.max_backoff", c.Breaker.MaxBackoff)
	if c.Breaker.Backoff > 0 && c.Breaker.MaxBackoff > 0 && c.Breaker.MaxBackoff < c.Breaker.Backoff {
		add("breaker.max_backoff", "must not be shorter than backoff")
	}
	return errs
}

// checkEndpoint requires an absolute https URL, or http to a loopback host,
// or to any host when insecureHTTP allows it.
func checkEndpoint(endpoint string, insecureHTTP bool) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("%q is not an absolute URL", endpoint)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && (insecureHTTP || isLoopback(u.Hostname())):
		return nil
	}
	return fmt.Errorf("%q must be an https URL (http only to a loopback host, or with allow_insecure_http): the token and the client secret travel in it", endpoint)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
