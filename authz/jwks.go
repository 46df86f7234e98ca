package authz

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
)

// keySet is one issuer's keys, as the jwkset.Storage that keyfunc reads.
// It holds the JWKS fetched last. A read never waits for the network but
// when a token names a key the set lacks: then the JWKS is fetched again,
// at most once per cooldown, and the fetch is shared by every read that
// needs it. A rotated key is thus found at once, and a flood of made-up
// kids costs the issuer one request per cooldown.
//
// keyfunc's own answer to unknown kids, a rate.Limiter in jwkset's HTTP
// client, either makes a read wait for the limiter or, with a short
// RateLimitWaitMax, refuses the reads that come during a fetch instead of
// letting them share it; it cannot tell whether a fetch ever succeeded
// either. So keySet fetches through jwkset itself.
type keySet struct {
	*jwkset.MemoryJWKSet

	issuer   string
	uri      string // the JWKS URL; found by discovery when empty, by the fetches alone, which never overlap
	insecure bool   // Issuer.AllowInsecureHTTP, for a discovered URL
	client   *http.Client
	interval time.Duration
	cooldown time.Duration
	log      *slog.Logger
	ctx      context.Context // the verifier's lifetime: it ends the fetches and run

	filled atomic.Bool // a fetch succeeded

	fetches, failures atomic.Uint64 // for JWKSStats

	mu     sync.Mutex
	flight chan struct{} // closed when the fetch under way ends; nil when none is
	last   time.Time     // when the last fetch for an unknown kid started
}

// KeyRead returns the key named kid, fetching the JWKS again if the set
// lacks it and the cooldown allows.
func (ks *keySet) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	jwk, err := ks.MemoryJWKSet.KeyRead(ctx, kid)
	if errors.Is(err, jwkset.ErrKeyNotFound) {
		// Read again even when refetch fetched nothing: a fetch may have
		// ended since the first read.
		ended := ks.refetch(ctx)
		jwk, err = ks.MemoryJWKSet.KeyRead(ctx, kid)
		if errors.Is(err, jwkset.ErrKeyNotFound) && !ended {
			err = errKeysLate
		}
	}
	return jwk, err
}

// errKeysLate is KeyRead's error for a kid the set lacks while the fetch
// that could bring it has not ended by the check's deadline: the key may
// be a new one of the issuer's, so the token may be fine.
var errKeysLate = errors.New("jwt: the issuer's keys were being fetched again, and the fetch did not end in time")

// available reports whether the set was ever fetched, trying once more,
// cooldown permitting, if it was not.
func (ks *keySet) available(ctx context.Context) bool {
	if !ks.filled.Load() {
		ks.refetch(ctx)
	}
	return ks.filled.Load()
}

// only returns the one key of the set fit for alg, for a token that names
// no key. With several such keys, choosing would mean trying each.
func (ks *keySet) only(alg string) (any, error) {
	jwks, err := ks.KeyReadAll(context.Background())
	if err != nil {
		return nil, err
	}
	var found any
	for _, jwk := range jwks {
		m := jwk.Marshal()
		key := jwk.Key()
		if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = pk.Public()
		}
		if m.ALG != "" && m.ALG.String() != alg || m.USE != "" && m.USE != jwkset.UseSig || !keyFits(key, alg) {
			continue
		}
		if found != nil {
			return nil, &TokenError{Reason: ReasonUnknownKey, Description: "the token names no key (kid) and the issuer has several"}
		}
		found = key
	}
	if found == nil {
		return nil, &TokenError{Reason: ReasonUnknownKey, Description: "the token names no key (kid) and the issuer has none for its algorithm"}
	}
	return found, nil
}

// refetch fetches the JWKS again for a kid the set lacks, or waits for the
// fetch under way, unless the last such fetch started less than a cooldown
// ago: then it returns at once. It reports false when ctx ended before
// the fetch it waited for.
func (ks *keySet) refetch(ctx context.Context) (ended bool) {
	ks.mu.Lock()
	done := ks.flight
	if done == nil {
		if time.Since(ks.last) < ks.cooldown {
			ks.mu.Unlock()
			return true
		}
		ks.last = time.Now()
		done = ks.start()
	}
	ks.mu.Unlock()
	ctx, cancel := beforeDeadline(ctx)
	defer cancel()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// cooling reports whether refetch would return at once, fetching nothing:
// no fetch is under way and the last one for an unknown kid started less
// than a cooldown ago.
func (ks *keySet) cooling() bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.flight == nil && time.Since(ks.last) < ks.cooldown
}

// fetchNow fetches the JWKS, or joins the fetch under way, whatever the
// cooldown. The channel returned is closed when the fetch ends.
func (ks *keySet) fetchNow() <-chan struct{} {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.flight != nil {
		return ks.flight
	}
	return ks.start()
}

// start starts a fetch in the background. ks.mu is held. The fetch belongs
// to no request, so that one giving up does not fail it for the others.
func (ks *keySet) start() chan struct{} {
	done := make(chan struct{})
	ks.flight = done
	go func() {
		ks.fetch()
		ks.mu.Lock()
		ks.flight = nil
		ks.mu.Unlock()
		close(done)
	}()
	return done
}

// fetch fetches the JWKS, finding its URL by discovery first if need be.
// When it fails, the keys fetched last stay in use.
func (ks *keySet) fetch() {
	ctx, cancel := context.WithTimeout(ks.ctx, jwksTimeout)
	defer cancel()
	err := ks.load(ctx)
	ks.fetches.Add(1)
	if err != nil {
		ks.failures.Add(1)
	}
	switch {
	case err != nil && ks.ctx.Err() != nil:
		// The verifier is closing.
	case err != nil && ks.filled.Load():
		ks.log.Warn("jwt: cannot refresh the issuer's keys; the keys fetched last stay in use",
			"issuer", ks.issuer, "err", err)
	case err != nil:
		ks.log.Error("jwt: cannot fetch the issuer's keys; its tokens are refused until they are fetched",
			"issuer", ks.issuer, "err", err)
	case !ks.filled.Swap(true):
		ks.log.Info("jwt: fetched the issuer's keys", "issuer", ks.issuer, "jwks_uri", ks.uri)
	}
}

func (ks *keySet) load(ctx context.Context) error {
	if ks.uri == "" {
		uri, err := discoverJWKSURI(ctx, ks.client, ks.issuer, ks.insecure)
		if err != nil {
			return err
		}
		ks.uri = uri
	}
	// Without a refresh interval, NewStorageFromHTTP fetches the JWKS
	// once, into the given storage, and returns the error of that fetch.
	// It replaces the keys only once the whole set is read and valid.
	_, err := jwkset.NewStorageFromHTTP(ks.uri, jwkset.HTTPClientStorageOptions{
		Client:      ks.client,
		Ctx:         ctx,
		HTTPTimeout: jwksTimeout,
		Storage:     ks.MemoryJWKSet,
	})
	return err
}

// run fetches the keys every interval, and until a first fetch succeeds
// more often: after a cooldown, then twice as long each time up to the
// interval.
func (ks *keySet) run() {
	backoff := ks.cooldown
	for {
		wait := ks.interval
		if !ks.filled.Load() {
			wait, backoff = backoff, min(2*backoff, ks.interval)
		}
		t := time.NewTimer(wait)
		select {
		case <-ks.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		<-ks.fetchNow()
	}
}

// JWKSStats counts one issuer's key fetches since its JWTVerifier was made.
type JWKSStats struct {
	Issuer   string
	Fetches  uint64 // attempts to fetch the keys, discovery included
	Failures uint64 // fetches that failed; the keys fetched before stay in use
	Keys     int    // keys in the set in use
}

// JWKSStats returns the key-fetching counters of every issuer, ordered by
// issuer.
func (v *JWTVerifier) JWKSStats() []JWKSStats {
	stats := make([]JWKSStats, 0, len(v.issuers))
	for _, is := range v.issuers {
		// A MemoryJWKSet reads its keys without failing.
		keys, _ := is.keys.KeyReadAll(context.Background())
		stats = append(stats, JWKSStats{
			Issuer:   is.name,
			Fetches:  is.keys.fetches.Load(),
			Failures: is.keys.failures.Load(),
			Keys:     len(keys),
		})
	}
	slices.SortFunc(stats, func(a, b JWKSStats) int { return strings.Compare(a.Issuer, b.Issuer) })
	return stats
}

// unknownKey returns the refusal of token for naming a key its issuer does
// not have, when the issuer's keys may not be fetched again yet: the
// refusal that the full parse would come to, without decoding the claims,
// which would let a flood of made-up kids cost more than valid tokens. It
// returns nil, for the full parse to decide, unless every check that parse
// makes before it reads the key would pass: so it changes no token's
// refusal, and accepts none.
func (v *JWTVerifier) unknownKey(token string) *TokenError {
	header, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sig, '.') >= 0 {
		return nil
	}
	// The decoding of jwt.WithStrictDecoding. The buffer holds the
	// segments of most tokens without allocating.
	enc := base64.RawURLEncoding.Strict()
	var buf [1024]byte
	b, err := enc.AppendDecode(buf[:0], []byte(payload))
	if err != nil {
		return nil
	}
	// Cheap checks first: most tokens come while no issuer is cooling down.
	iss, ok := issuer(b)
	if !ok {
		return nil
	}
	is := v.issuers[iss]
	if is == nil || !is.keys.filled.Load() || !is.keys.cooling() {
		return nil
	}
	// The full parse decodes the claims into a map, which fails on
	// invalid JSON and on numbers beyond a float64.
	if !json.Valid(b) || unsafeNumber(b) {
		return nil
	}
	if _, err := enc.AppendDecode(buf[:0], []byte(sig)); err != nil {
		return nil
	}
	b, err = enc.AppendDecode(buf[:0], []byte(header))
	if err != nil || !json.Valid(b) || unsafeNumber(b) {
		return nil
	}
	h, ok := joseHeader(b)
	// The checks of jwtIssuer.key before the key is read, every one
	// passed: GetSigningMethod knows every algorithm of is.algs.
	if !ok || h.crit || !h.hasKID || !slices.Contains(is.algs, h.alg) ||
		is.typ != "" && mediaType(h.typ) != is.typ {
		return nil
	}
	_, err = is.keys.MemoryJWKSet.KeyRead(context.Background(), h.kid)
	if !errors.Is(err, jwkset.ErrKeyNotFound) {
		return nil
	}
	return errUnknownKey
}

// errUnknownKey is unknownKey's refusal: the full parse's but for the kid
// in the message of its cause, shared by every refusal so that a flood of
// made-up kids formats no errors.
var errUnknownKey = &TokenError{Reason: ReasonUnknownKey, Description: "the token's key is not one of the issuer's keys",
	Err: fmt.Errorf("%w: could not read JWK from storage", errors.Join(jwkset.ErrKeyNotFound, keyfunc.ErrKeyfunc))}
