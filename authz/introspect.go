package authz

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/scopegate/scopegate/policy"
)

// IntrospectorOptions tunes an Introspector beyond its configuration. The
// zero value works.
type IntrospectorOptions struct {
	// HTTPClient sends the introspection requests, for a custom TLS
	// configuration; nil means a client of the Introspector's own. Redirects
	// are never followed, whatever its policy.
	HTTPClient *http.Client
	// Logger receives the rate-limited reports of a failing Redis; nil
	// means slog.Default().
	Logger *slog.Logger
	// ExtraClaims names the string members of an introspection response to
	// copy into Claims.Extra.
	ExtraClaims []string
	// JWTIssuers names the issuers whose JWTs are introspected
	// (introspect_jwts): their JWTs need not fit TokenFormat.
	JWTIssuers map[string]bool
}

// Introspector is the Verifier of tokens by RFC 7662 introspection. It
// caches the provider's answers in process and, when configured, in Redis;
// sends one request for all concurrent checks of one token; bounds the
// requests under way and per second; and stops calling a failing provider
// for a while (see CircuitBreaker). It is safe for concurrent use.
type Introspector struct {
	endpoint string
	clientID string
	// credential is the client secret in use, and the keys of the Redis
	// records' MACs derived from it.
	credential *clientSecret
	post       bool // client_secret_post rather than client_secret_basic
	timeout    time.Duration
	client     *http.Client
	extra      []string
	aud        []string
	issuers    []string
	clientIDs  []string // the members holding the client id, in order
	// requireBinding is what every introspected token must be bound to.
	requireBinding policy.Binding

	maxTTL time.Duration // of an active answer
	negTTL time.Duration // of an inactive answer
	l1, l2 TokenCache    // nil when caching is off; l2 nil without Redis
	redis  redis.UniversalClient
	// interned holds the values that the claims of cached answers share;
	// nil when caching is off.
	interned *interner

	// format is the form of the provider's opaque tokens, nil when any
	// token may be one; jwtIssuers are exempt from it.
	format     *tokenFormat
	jwtIssuers map[string]bool

	flights singleflight.Group
	slots   chan struct{} // one per request under way
	budget  *budget
	breaker breaker

	log        *slog.Logger
	redisLogs  rate.Sometimes
	downLogs   rate.Sometimes // of the endpoint's transport failures
	stats      introspectionCounters
	closeRedis sync.Once
}

// NewIntrospector returns an Introspector for cfg. It reads the client
// secret and, with a Redis tier, the Redis password; it does not contact
// the provider or Redis.
func NewIntrospector(cfg Introspection, opts IntrospectorOptions) (*Introspector, error) {
	if fes := cfg.Validate(); len(fes) > 0 {
		errs := make([]error, len(fes))
		for i, fe := range fes {
			errs[i] = fe
		}
		return nil, fmt.Errorf("introspection: %w", errors.Join(errs...))
	}
	if cfg.Endpoint == "" {
		return nil, errors.New("introspection: no endpoint: set endpoint or discover the provider's introspection_endpoint")
	}
	logger := cmp.Or(opts.Logger, slog.Default())
	secret, err := newClientSecret(cfg.ClientSecretFile, cfg.ClientSecretEnv, logger)
	if err != nil {
		return nil, fmt.Errorf("introspection: client secret: %w", err)
	}
	maxConcurrent := cmp.Or(cfg.MaxConcurrent, DefaultIntrospectionMaxConcurrent)
	maxRate := cmp.Or(cfg.MaxRate, DefaultIntrospectionMaxRate)
	in := &Introspector{
		endpoint:       cfg.Endpoint,
		clientID:       cfg.ClientID,
		credential:     secret,
		post:           cfg.AuthMethod == ClientSecretPost,
		timeout:        cmp.Or(cfg.Timeout, DefaultIntrospectionTimeout),
		client:         newIntrospectionClient(opts.HTTPClient, maxConcurrent),
		extra:          opts.ExtraClaims,
		aud:            cfg.Audiences,
		issuers:        cfg.Issuers,
		clientIDs:      clientIDClaims(cfg.ClientIDClaims),
		requireBinding: cfg.RequireBinding,
		maxTTL:         DefaultMaxTTL,
		negTTL:         DefaultNegativeTTL,
		format:         newTokenFormat(cfg.TokenFormat),
		jwtIssuers:     opts.JWTIssuers,
		slots:          make(chan struct{}, maxConcurrent),
		breaker: breaker{
			threshold:  cmp.Or(cfg.Breaker.Failures, 5),
			minBackoff: cmp.Or(cfg.Breaker.Backoff, time.Second),
			maxBackoff: cmp.Or(cfg.Breaker.MaxBackoff, 30*time.Second),
		},
		log:       logger,
		redisLogs: rate.Sometimes{Interval: 10 * time.Second},
		downLogs:  rate.Sometimes{Interval: 10 * time.Second},
	}
	if d := cfg.Cache.MaxTTL; d != nil {
		in.maxTTL = *d
	}
	if d := cfg.Cache.NegativeTTL; d != nil {
		in.negTTL = *d
	}
	reserved := maxRate / 2
	if cfg.ReservedRate > 0 {
		reserved = cfg.ReservedRate
	}
	in.budget = newBudget(maxRate, reserved, cmp.Or(cfg.MaxRatePerPeer, max(maxRate/10, 1)), max(knownPeerWindow, 2*in.maxTTL))
	if in.maxTTL == 0 {
		return in, nil
	}
	in.l1 = NewMemoryCache(cfg.Cache.MaxEntries)
	in.interned = newInterner()
	if r := cfg.Cache.Redis; r != nil {
		in.redis, err = r.NewClient()
		if err != nil {
			return nil, fmt.Errorf("introspection: cache: %w", err)
		}
		keys := func() recordKeys { return secret.recordKeys(in.maxTTL) }
		in.l2 = newRedisCache(in.redis, providerNamespace(cfg.Endpoint, cfg.ClientID), keys, r.Timeout)
	}
	return in, nil
}

// Close releases the Introspector's Redis connections.
func (in *Introspector) Close() error {
	if in.redis == nil {
		return nil
	}
	var err error
	in.closeRedis.Do(func() { err = in.redis.Close() })
	return err
}

// Verify returns the claims of an active token. It refuses an inactive
// token with ReasonInactive, an expired one with ReasonTokenExpired, one
// not valid yet with ReasonTokenNotYetValid, one that is no bearer access
// token with ReasonTokenType, one whose scope or times do not parse with
// ReasonTokenMalformed, one of an issuer not among Issuers with
// ReasonUnknownIssuer and one for none of the Audiences with
// ReasonBadAudience. It refuses with Unavailable set
// when the provider could not give an answer: with ReasonIntrospectionDown
// when it could not be reached in time, the breaker is open, or
// MaxConcurrent or MaxRate would be exceeded; with ReasonIntrospection when
// it answered but not usefully. It refuses a token that does not fit
// TokenFormat with ReasonTokenMalformed, without a request. The returned
// Claims may be shared with the cache: treat them as read-only.
func (in *Introspector) Verify(ctx context.Context, token string) (*Claims, error) {
	return in.VerifyFrom(ctx, token, "")
}

// VerifyFrom is Verify of a token that peer, a request's source address,
// presented: a request to the provider is charged to peer's share of
// MaxRate (see ReservedRate), and a valid token earns peer its share of
// the reserve.
func (in *Introspector) VerifyFrom(ctx context.Context, token, peer string) (*Claims, error) {
	key := TokenKey(token)
	if in.l1 != nil {
		if t, ok, _ := in.l1.Get(ctx, key); ok {
			in.stats.l1Hits.Add(1)
			return in.verdict(t)
		}
		in.stats.l1Misses.Add(1)
	}
	// Before Redis and the budget: a token the provider cannot have issued
	// costs neither.
	if in.format != nil && !in.fits(token) {
		return nil, &TokenError{Reason: ReasonTokenMalformed, Description: "the token is not in the form of the introspection provider's tokens"}
	}
	from := peerOf(peer)
	var (
		c   *Claims
		err error
	)
	if t, ok := in.fromRedis(ctx, key); ok {
		c, err = in.verdict(t)
	} else {
		c, err = in.await(ctx, key, token, from)
	}
	if err == nil {
		in.budget.vouch(from, time.Now())
	}
	return c, err
}

// fits reports whether token can be one of the provider's tokens: of its
// format, or a JWT of an issuer whose JWTs are introspected.
func (in *Introspector) fits(token string) bool {
	if in.format.fits(token) {
		return true
	}
	if len(in.jwtIssuers) == 0 {
		return false
	}
	iss, isJWT := peekIssuer(token)
	return isJWT && in.jwtIssuers[iss]
}

// fromRedis looks the token under key up in Redis, on the caller's
// goroutine and within its deadline: a hit, the usual case once any
// replica has seen the token, needs no flight, whose goroutine and
// hand-over cost a Redis hit more than the lookup.
func (in *Introspector) fromRedis(ctx context.Context, key [32]byte) (CachedToken, bool) {
	if in.l2 == nil {
		return CachedToken{}, false
	}
	ctx, cancel := beforeDeadline(ctx)
	defer cancel()
	t, ok, err := in.l2.Get(ctx, key)
	switch {
	case err != nil:
		// A caller that gave up is not a failure of Redis.
		if ctx.Err() == nil {
			in.redisFailed(err)
		}
		return CachedToken{}, false
	case !ok:
		in.stats.l2Misses.Add(1)
		return CachedToken{}, false
	}
	in.stats.l2Hits.Add(1)
	in.share(t)
	in.l1.Set(ctx, key, t)
	return t, true
}

// await returns the answer for the token under key, sharing one load with
// every concurrent check of the same token.
func (in *Introspector) await(ctx context.Context, key [32]byte, token string, from netip.Addr) (*Claims, error) {
	// The flight outlives a caller that gives up, for the others waiting on
	// it; its requests are bounded by their own timeouts.
	fctx := context.WithoutCancel(ctx)
	ch := in.flights.DoChan(hex.EncodeToString(key[:]), func() (any, error) {
		return in.load(fctx, key, token, from)
	})
	ctx, cancel := beforeDeadline(ctx)
	defer cancel()
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return in.verdict(r.Val.(CachedToken))
	case <-ctx.Done():
		return nil, &TokenError{Reason: ReasonIntrospectionDown, Unavailable: true,
			Description: "the token could not be introspected in time; retry with the same token", Err: ctx.Err()}
	}
}

// verdict returns the claims of t's token now, or why it is refused. The
// issuer and the audience are checked here, not when the answer is cached,
// so that the cache (shared through Redis) holds only what the provider
// said.
func (in *Introspector) verdict(t CachedToken) (*Claims, error) {
	c, err := t.verdict(time.Now())
	if err != nil {
		return nil, err
	}
	if len(in.issuers) > 0 && !slices.Contains(in.issuers, c.Issuer) {
		return nil, &TokenError{Reason: ReasonUnknownIssuer, Description: "the token's issuer is not trusted"}
	}
	if len(in.aud) > 0 && !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(in.aud, a) }) {
		return nil, &TokenError{Reason: ReasonBadAudience, Description: "the token is not meant for this audience"}
	}
	if err := c.Confirmation.requireBinding(in.requireBinding); err != nil {
		return nil, err
	}
	return c, nil
}

// verdict returns the claims of t's token at now, or why it is refused.
func (t CachedToken) verdict(now time.Time) (*Claims, error) {
	switch {
	case t.Claims == nil:
		return nil, &TokenError{Reason: ReasonInactive, Description: "the token is not active"}
	case !t.Claims.Expiry.IsZero() && !now.Before(t.Claims.Expiry):
		return nil, &TokenError{Reason: ReasonTokenExpired, Description: "the token has expired"}
	}
	return t.Claims, nil
}

// load asks the provider about the token under key, which neither cache
// held, for a check from peer, and caches the answer in both.
func (in *Introspector) load(ctx context.Context, key [32]byte, token string, peer netip.Addr) (CachedToken, error) {
	t, err := in.call(ctx, token, peer)
	if err != nil {
		return CachedToken{}, err
	}
	if in.l1 != nil && time.Now().Before(t.Until) {
		in.share(t)
		in.l1.Set(ctx, key, t)
		if in.l2 != nil {
			if err := in.l2.Set(ctx, key, t); err != nil {
				in.redisFailed(err)
			}
		}
	}
	return t, nil
}

// share makes the claims of t, an answer about to be cached and not yet
// seen by anyone else, share the values that other answers repeat.
func (in *Introspector) share(t CachedToken) {
	if t.Claims != nil {
		in.interned.share(t.Claims)
	}
}

// redisFailed counts and reports a Redis failure. The check goes on
// without Redis: a cache never decides a check.
func (in *Introspector) redisFailed(err error) {
	n := in.stats.redisErrors.Add(1)
	in.redisLogs.Do(func() {
		in.log.Warn("token cache: Redis failed; checks go on without it", "err", err, "redis_errors", n)
	})
}

// IntrospectionStats counts what an Introspector did since it was made.
type IntrospectionStats struct {
	L1Hits, L1Misses uint64 // in-process cache lookups
	L2Hits, L2Misses uint64 // Redis lookups that got an answer
	RedisErrors      uint64 // Redis calls that failed or timed out
	Calls            uint64 // requests sent to the provider
	Failures         uint64 // requests that got no usable answer
	ShortCircuits    uint64 // checks denied at once by the open breaker
	Throttled        uint64 // checks denied at once by MaxConcurrent or MaxRate
}

type introspectionCounters struct {
	l1Hits, l1Misses, l2Hits, l2Misses atomic.Uint64
	redisErrors, calls, failures       atomic.Uint64
	shortCircuits, throttled           atomic.Uint64
}

// Stats returns the Introspector's counters.
func (in *Introspector) Stats() IntrospectionStats {
	s := &in.stats
	return IntrospectionStats{
		L1Hits: s.l1Hits.Load(), L1Misses: s.l1Misses.Load(),
		L2Hits: s.l2Hits.Load(), L2Misses: s.l2Misses.Load(),
		RedisErrors: s.redisErrors.Load(),
		Calls:       s.calls.Load(), Failures: s.failures.Load(),
		ShortCircuits: s.shortCircuits.Load(), Throttled: s.throttled.Load(),
	}
}
