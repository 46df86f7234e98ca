package authz

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/scopegate/scopegate/policy"
)

// JWTOptions tunes a JWTVerifier. The zero value works.
type JWTOptions struct {
	// Client fetches the keys and discovery documents; nil means a client
	// with a 10s timeout. Either way responses are capped at 1 MiB and
	// redirects must stay on https (or loopback http).
	Client *http.Client
	// RefreshInterval is how often each issuer's keys are fetched again;
	// zero or less means DefaultRefreshInterval. It also bounds how long a
	// verified token is cached, so that a key the issuer withdraws stops
	// verifying within about one interval.
	RefreshInterval time.Duration
	// RefetchCooldown is the least time between two fetches of an issuer's
	// keys for a token that names an unknown key; zero or less means
	// DefaultRefetchCooldown. Within it, such tokens are refused at once.
	// Until an issuer's keys are first fetched, its fetches are retried
	// after a cooldown, then twice as long each time up to the refresh
	// interval.
	RefetchCooldown time.Duration
	// CacheSize bounds the verified-token cache; zero means
	// DefaultCacheEntries and a negative size turns the cache off.
	CacheSize int
	// ExtraClaims names the string claims copied into Claims.Extra.
	ExtraClaims []string
	// Logger receives the failures to fetch keys; nil means
	// slog.Default(). Tokens are never logged.
	Logger *slog.Logger
}

// JWTVerifier is the Verifier of JWT access tokens signed by the keys that
// their issuers publish. It fetches each issuer's keys when it starts,
// fetches them again every refresh interval and when a token names a key
// it has not seen, and keeps the keys it has while an issuer cannot be
// reached. It caches the claims of the tokens it verifies. It is safe for
// concurrent use.
type JWTVerifier struct {
	issuers  map[string]*jwtIssuer // by iss
	parser   *jwt.Parser
	cache    *MemoryCache  // of verified tokens; nil when off
	interned *interner     // the values that the claims of tokens share
	maxAge   time.Duration // of a cache entry: the refresh interval
	extra    []string      // JWTOptions.ExtraClaims
	// claimNames are the claims decoded: claimNames, the issuers'
	// ClientIDClaims and extra.
	claimNames []string
	now        func() time.Time // the clock of claim checks; tests set it
	cancel     context.CancelFunc
}

// jwtIssuer is an Issuer ready to verify tokens.
type jwtIssuer struct {
	name        string
	algs        []string
	leeway      time.Duration
	maxLifetime time.Duration
	audiences   []string
	typ         string // as mediaType returns it
	scopeClaim  string
	clientIDs   []string // the claims holding the client id, in order
	// requireBinding is what the issuer's tokens must be bound to.
	requireBinding policy.Binding
	keys           *keySet
	keyfunc        keyfunc.Keyfunc
}

// NewJWTVerifier returns a verifier of the tokens of issuers. It fetches
// every issuer's keys before it returns, waiting at most the client's
// timeout; an issuer that cannot be reached then does not fail it, but has
// its tokens refused with ReasonIssuerUnavailable until its keys are
// fetched, which is tried again in the background. It fails only on
// invalid settings. Cancelling ctx, like Close, stops the background work.
func NewJWTVerifier(ctx context.Context, issuers []Issuer, opts JWTOptions) (*JWTVerifier, error) {
	var errs []error
	for n, is := range issuers {
		for _, fe := range is.Validate() {
			errs = append(errs, fmt.Errorf("issuers[%d].%v", n, fe))
		}
		if slices.ContainsFunc(issuers[:n], func(o Issuer) bool { return o.Issuer == is.Issuer }) {
			errs = append(errs, fmt.Errorf("issuers[%d].issuer: %q is configured twice", n, is.Issuer))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("jwt verifier: %w", errors.Join(errs...))
	}
	interval, cooldown := opts.RefreshInterval, opts.RefetchCooldown
	if interval <= 0 {
		interval = DefaultRefreshInterval
	}
	if cooldown <= 0 {
		cooldown = DefaultRefetchCooldown
	}
	ctx, cancel := context.WithCancel(ctx)
	v := &JWTVerifier{
		issuers: make(map[string]*jwtIssuer, len(issuers)),
		// Strict decoding refuses the other spellings of a token's bytes,
		// so that one token has one cache key.
		parser:     jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding()),
		maxAge:     interval,
		interned:   newInterner(),
		extra:      slices.Clone(opts.ExtraClaims),
		claimNames: slices.Clone(claimNames),
		now:        time.Now,
		cancel:     cancel,
	}
	if opts.CacheSize >= 0 {
		v.cache = NewMemoryCache(opts.CacheSize)
	}
	client := newJWKSClient(opts.Client)
	log := cmp.Or(opts.Logger, slog.Default())
	for _, cfg := range issuers {
		ks := &keySet{
			MemoryJWKSet: jwkset.NewMemoryStorage(),
			issuer:       cfg.Issuer,
			uri:          cfg.JWKSURI,
			insecure:     cfg.AllowInsecureHTTP,
			client:       client,
			interval:     interval,
			cooldown:     cooldown,
			log:          log,
			ctx:          ctx,
		}
		// The key's use must be sig when the JWK states one.
		kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: ks, UseWhitelist: []jwkset.USE{jwkset.UseSig, ""}})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("jwt verifier: issuer %q: %w", cfg.Issuer, err)
		}
		is := &jwtIssuer{
			name:           cfg.Issuer,
			algs:           cfg.Algorithms,
			leeway:         DefaultLeeway,
			maxLifetime:    cfg.MaxLifetime,
			audiences:      slices.Clone(cfg.Audiences),
			typ:            mediaType(cfg.Type),
			scopeClaim:     cfg.ScopeClaim,
			clientIDs:      clientIDClaims(cfg.ClientIDClaims),
			requireBinding: cfg.RequireBinding,
			keys:           ks,
			keyfunc:        kf,
		}
		if len(is.algs) == 0 {
			is.algs = defaultJWTAlgorithms
		}
		if cfg.Leeway != nil {
			is.leeway = *cfg.Leeway
		}
		v.issuers[cfg.Issuer] = is
		for _, name := range is.clientIDs {
			if !slices.Contains(v.claimNames, name) {
				v.claimNames = append(v.claimNames, name)
			}
		}
	}
	v.claimNames = append(v.claimNames, opts.ExtraClaims...)
	var wg sync.WaitGroup
	for _, is := range v.issuers {
		wg.Go(func() { <-is.keys.fetchNow() })
	}
	wg.Wait()
	for _, is := range v.issuers {
		go is.keys.run()
	}
	return v, nil
}

// Ready reports whether the keys of every issuer were fetched at least
// once.
func (v *JWTVerifier) Ready() bool {
	for _, is := range v.issuers {
		if !is.keys.filled.Load() {
			return false
		}
	}
	return true
}

// Issuer reports whether iss is one of the verifier's issuers.
func (v *JWTVerifier) Issuer(iss string) bool {
	_, ok := v.issuers[iss]
	return ok
}

// Close stops fetching keys in the background.
func (v *JWTVerifier) Close() { v.cancel() }

// Verify returns the claims of token, a JWT access token of one of the
// verifier's issuers, or a *TokenError saying why it is refused. A token
// verified before is found in the cache, and refused there once it has
// expired. The returned Claims may be shared with the cache: treat them as
// read-only.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if v.cache == nil {
		c, _, err := v.verify(ctx, token)
		return c, err
	}
	key := TokenKey(token)
	if t, ok, _ := v.cache.Get(ctx, key); ok && v.now().Before(t.Until) {
		return t.Claims, nil
	}
	c, until, err := v.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	v.cache.Set(ctx, key, CachedToken{Claims: c, Until: until})
	return c, nil
}

// verify checks token in full. It returns its claims and until when they
// may be cached: until the token expires, and no longer than maxAge, so
// that a withdrawn key stops verifying.
func (v *JWTVerifier) verify(ctx context.Context, token string) (c *Claims, until time.Time, err error) {
	if te := v.unknownKey(token); te != nil {
		return nil, time.Time{}, te
	}
	return v.parse(ctx, token)
}

// parse is verify without the early refusal of unknown keys.
func (v *JWTVerifier) parse(ctx context.Context, token string) (c *Claims, until time.Time, err error) {
	// Most tokens have at most 8 of the claims decoded: one group of a map.
	tc := &tokenClaims{MapClaims: make(jwt.MapClaims, 8), names: v.claimNames}
	claims := tc.MapClaims
	var is *jwtIssuer
	// The key function runs once the token is decoded and before its
	// signature is checked: the issuer is chosen by iss, and its settings
	// decide which key, if any, may verify the signature.
	_, err = v.parser.ParseWithClaims(token, tc, func(t *jwt.Token) (any, error) {
		iss, _ := claims["iss"].(string)
		if is = v.issuers[iss]; is == nil {
			return nil, &TokenError{Reason: ReasonUnknownIssuer, Description: "the token's issuer is not trusted"}
		}
		return is.key(ctx, t)
	})
	if err != nil {
		return nil, time.Time{}, parseRefusal(err)
	}
	now := v.now()
	if c, err = is.claims(claims, now, v.extra, v.interned); err != nil {
		return nil, time.Time{}, err
	}
	until = c.Expiry.Add(is.leeway)
	if limit := now.Add(v.maxAge); limit.Before(until) {
		until = limit
	}
	return c, until, nil
}

// parseRefusal returns the refusal of a token that jwt.Parser refused.
func parseRefusal(err error) *TokenError {
	var te *TokenError
	switch {
	case errors.As(err, &te):
		return te
	case errors.Is(err, jwt.ErrTokenMalformed):
		return &TokenError{Reason: ReasonTokenMalformed, Description: "the token is not a JWT", Err: err}
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// Before the key function, the parser refuses only a header with
		// no alg or one it does not know.
		return &TokenError{Reason: ReasonAlgorithm, Description: "the token's algorithm is not allowed", Err: err}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return &TokenError{Reason: ReasonBadSignature, Description: "the token's signature is invalid", Err: err}
	}
	return &TokenError{Reason: ReasonTokenInvalid, Description: "the token is invalid", Err: err}
}

// key returns the key that may verify t's signature: the key of the issuer
// that t's kid names, fit for t's algorithm. Keys named or carried by jku,
// x5u, jwk and x5c are never used.
func (is *jwtIssuer) key(ctx context.Context, t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, &TokenError{Reason: ReasonTokenInvalid, Description: "the token requires extensions (crit) that are not supported"}
	}
	alg := t.Method.Alg()
	// Validate keeps none and the HS algorithms out of is.algs.
	if !slices.Contains(is.algs, alg) {
		return nil, &TokenError{Reason: ReasonAlgorithm, Description: "the token's algorithm is not allowed"}
	}
	if is.typ != "" {
		if typ, _ := t.Header["typ"].(string); mediaType(typ) != is.typ {
			return nil, &TokenError{Reason: ReasonTokenType, Description: "the token is not of the required type"}
		}
	}
	if !is.keys.available(ctx) {
		return nil, &TokenError{Reason: ReasonIssuerUnavailable, Description: "the issuer's keys could not be fetched yet"}
	}
	kid, ok := t.Header["kid"]
	if !ok {
		return is.keys.only(alg)
	}
	if _, ok := kid.(string); !ok {
		return nil, &TokenError{Reason: ReasonTokenMalformed, Description: "the token's kid is not a string"}
	}
	key, err := is.keyfunc.KeyfuncCtx(ctx)(t)
	switch {
	case errors.Is(err, errKeysLate):
		return nil, &TokenError{Reason: ReasonIssuerUnavailable, Unavailable: true,
			Description: "the issuer's keys could not be fetched in time for the token's key; retry later", Err: err}
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return nil, &TokenError{Reason: ReasonUnknownKey, Description: "the token's key is not one of the issuer's keys", Err: err}
	case err != nil:
		// The JWK names another alg, or a use other than sig.
		return nil, &TokenError{Reason: ReasonAlgorithm, Description: "the token's key is not for its algorithm", Err: err}
	case !keyFits(key, alg):
		return nil, &TokenError{Reason: ReasonAlgorithm, Description: "the token's key is not for its algorithm"}
	}
	return key, nil
}

// keyFits reports whether key is a public key that can verify alg
// signatures: RSA of at least 2048 bits for RS and PS, the curve of the
// algorithm for ES, Ed25519 for EdDSA.
func keyFits(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return (strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")) && k.Size() >= 2048/8
	case *ecdsa.PublicKey:
		switch k.Curve.Params().Name {
		case "P-256":
			return alg == "ES256"
		case "P-384":
			return alg == "ES384"
		case "P-521":
			return alg == "ES512"
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}
