package authz

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scopegate/scopegate/internal/devidp"
	"github.com/scopegate/scopegate/internal/testutil"
)

// jwtIssuer returns the settings of an issuer that trusts idp, expecting
// testutil.DefaultAudience.
func jwtIssuerFor(idp *testutil.IdP) Issuer {
	return Issuer{Issuer: idp.Issuer(), JWKSURI: idp.JWKSURL(), Audiences: []string{testutil.DefaultAudience}}
}

// jwtOptions are options for tests: a cooldown short enough that every
// unknown kid refetches, and a logger that records into log.
func jwtOptions(log *jwtLog) JWTOptions {
	return JWTOptions{RefetchCooldown: time.Nanosecond, Logger: slog.New(slog.NewTextHandler(log, nil))}
}

func newTestJWTVerifier(t testing.TB, opts JWTOptions, issuers ...Issuer) *JWTVerifier {
	t.Helper()
	v, err := NewJWTVerifier(t.Context(), issuers, opts)
	if err != nil {
		t.Fatalf("NewJWTVerifier: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// jwtLog is a concurrency-safe log sink.
type jwtLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *jwtLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *jwtLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// wantRefusal fails t unless err refuses token with reason, with a
// description that does not give the token away.
func wantRefusal(t testing.TB, token string, c *Claims, err error, reason Reason) {
	t.Helper()
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("Verify = %+v, %v; want a *TokenError with reason %s", c, err, reason)
	}
	if c != nil {
		t.Errorf("Verify returned claims %+v with its error", c)
	}
	if te.Reason != reason {
		t.Errorf("reason = %s (%v), want %s", te.Reason, err, reason)
	}
	if te.Description == "" || token != "" && strings.Contains(te.Description, token) {
		t.Errorf("description %q is empty or holds the token", te.Description)
	}
	if token != "" && strings.Contains(err.Error(), token) {
		t.Errorf("error %q holds the token", err)
	}
}

// wantVerdict fails t unless v accepts token, when want is "", or
// refuses it with want.
func wantVerdict(t testing.TB, v *JWTVerifier, token string, want Reason) {
	t.Helper()
	c, err := v.Verify(t.Context(), token)
	if want != "" {
		wantRefusal(t, token, c, err, want)
	} else if err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// eventually calls f until it returns true, failing t after
// testutil.WaitTimeout.
func eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(testutil.WaitTimeout); !f(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func TestJWTVerifyAcceptsEachKeyType(t *testing.T) {
	idp := testutil.NewIdP(t)
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), jwtIssuerFor(idp))
	for _, alg := range []string{devidp.RS256, devidp.ES256, devidp.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			before := time.Now().Truncate(time.Second)
			tok := idp.Token(t, testutil.Alg(alg), testutil.Scopes("orders:read", "orders:write"))
			c, err := v.Verify(t.Context(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := &Claims{
				Issuer:   idp.Issuer(),
				Subject:  testutil.DefaultClientID,
				ClientID: testutil.DefaultClientID,
				Audience: []string{testutil.DefaultAudience},
				Scopes:   []string{"orders:read", "orders:write"},
			}
			if c.Issuer != want.Issuer || c.Subject != want.Subject || c.ClientID != want.ClientID ||
				!slices.Equal(c.Audience, want.Audience) || !slices.Equal(c.Scopes, want.Scopes) || c.Extra != nil {
				t.Errorf("claims = %+v, want %+v", c, want)
			}
			if c.IssuedAt.Before(before) || c.Expiry.Sub(c.IssuedAt) != devidp.DefaultTTL {
				t.Errorf("iat %v, exp %v: want iat now and exp %v later", c.IssuedAt, c.Expiry, devidp.DefaultTTL)
			}
		})
	}
}

func TestJWTVerifyRefusesForgedTokens(t *testing.T) {
	idp := testutil.NewIdP(t)
	evil := testutil.NewIdP(t)
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), jwtIssuerFor(idp))
	ctx := t.Context()

	type test struct {
		name  string
		token string
		want  Reason
	}
	tests := []test{
		{"alg none", idp.UnsignedToken(t), ReasonAlgorithm},
		{"alg none without kid", idp.UnsignedToken(t, testutil.Header("kid", nil)), ReasonAlgorithm},
		{"payload tampered", testutil.Tamper(t, idp.Token(t, testutil.Scopes("orders:read")), "scope", "orders:read admin"), ReasonBadSignature},
		{"issuer tampered", testutil.Tamper(t, evil.Token(t), "iss", idp.Issuer()), ReasonUnknownKey},
		{"signature stripped", strings.TrimRight(idp.Token(t), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"), ReasonBadSignature},
		{"key embedded in jwk", evil.EmbeddedJWKToken(t, idp), ReasonBadSignature},
		{"key embedded in jwk, EdDSA", evil.EmbeddedJWKToken(t, idp, testutil.Alg(devidp.EdDSA)), ReasonBadSignature},
		{"key embedded in jwk without kid", evil.EmbeddedJWKToken(t, idp, testutil.Header("kid", nil)), ReasonBadSignature},
		{"key at jku", evil.JKUToken(t, idp), ReasonUnknownKey},
		{"key at x5u", evil.Forge(t, idp, testutil.Header("x5u", evil.JWKSURL())), ReasonUnknownKey},
		{"signed by another issuer's key", evil.Forge(t, idp), ReasonUnknownKey},
		{"signed by another key under a known kid", evil.Forge(t, idp, testutil.Header("kid", idp.KeyID(devidp.RS256))), ReasonBadSignature},
		{"kid of a key for another algorithm", idp.Token(t, testutil.Alg(devidp.ES256), testutil.Header("kid", idp.KeyID(devidp.RS256))), ReasonAlgorithm},
		{"kid not a string", idp.Token(t, testutil.Header("kid", 7)), ReasonTokenMalformed},
		{"header alg lies", idp.Token(t, testutil.Header("alg", "ES256")), ReasonAlgorithm},
		{"unknown alg", idp.Token(t, testutil.Header("alg", "XS256")), ReasonAlgorithm},
		{"crit", idp.Token(t, testutil.Header("crit", []string{"exp"}), testutil.Header("exp", 1)), ReasonTokenInvalid},
		{"unknown issuer", evil.Token(t), ReasonUnknownIssuer},
		{"issuer with a trailing slash", idp.Token(t, testutil.Claim("iss", idp.Issuer()+"/")), ReasonUnknownIssuer},
		{"no issuer", idp.Token(t, testutil.Claim("iss", nil)), ReasonUnknownIssuer},
		{"issuer not a string", idp.Token(t, testutil.Claim("iss", 1)), ReasonUnknownIssuer},
		{"random kid", idp.Token(t, testutil.RandomKID()), ReasonUnknownKey},
		{"wrong audience", idp.Token(t, testutil.Audience("https://other.test")), ReasonBadAudience},
		{"no audience", idp.Token(t, testutil.Audience()), ReasonBadAudience},
		{"expired", idp.Token(t, testutil.ExpiresIn(-time.Hour)), ReasonTokenExpired},
		{"no exp", idp.Token(t, testutil.Claim("exp", nil)), ReasonTokenInvalid},
		{"exp a string", idp.Token(t, testutil.Claim("exp", "tomorrow")), ReasonTokenInvalid},
		{"not yet valid", idp.Token(t, testutil.NotBeforeIn(time.Hour)), ReasonTokenNotYetValid},
		{"issued in the future", idp.Token(t, testutil.IssuedIn(time.Hour), testutil.ExpiresIn(2*time.Hour)), ReasonTokenNotYetValid},
		{"client_id not a string", idp.Token(t, testutil.Claim("client_id", []string{"a"})), ReasonTokenInvalid},
		{"aud not strings", idp.Token(t, testutil.Claim("aud", []any{1})), ReasonTokenInvalid},
		{"oversized", idp.Token(t, testutil.Padded(64<<10), testutil.Claim("iss", evil.Issuer())), ReasonUnknownIssuer},
		{"empty", "", ReasonTokenMalformed},
		{"one part", "abc", ReasonTokenMalformed},
		{"two parts", "abc.def", ReasonTokenMalformed},
		{"four parts", idp.Token(t) + ".x", ReasonTokenMalformed},
		{"signature not base64url", "eyJhbGciOiJSUzI1NiJ9.e30.!!", ReasonTokenMalformed},
		{"payload not base64url", "eyJhbGciOiJSUzI1NiJ9.!!.e30", ReasonTokenMalformed},
		{"no alg", "e30.e30.e30", ReasonAlgorithm},
		{"padded base64", strings.Replace(idp.Token(t), ".", "=.", 1), ReasonTokenMalformed},
		{"header not JSON", "bm90anNvbg.e30.", ReasonTokenMalformed},
		{"header an array", "W10.e30.", ReasonTokenMalformed},
	}
	for form, tok := range idp.KeyConfusionTokens(t) {
		tests = append(tests, test{"HS256 with the RSA key as secret, " + form, tok, ReasonAlgorithm})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(ctx, tt.token)
			wantRefusal(t, tt.token, c, err, tt.want)
		})
	}
	// The keys of jku and x5u are never fetched.
	if n := evil.Requests(); n != 0 {
		t.Errorf("the attacker's server got %d requests, want 0", n)
	}
}

func TestJWTKeyTypeMustFitTheAlgorithmWhenTheJWKNamesNone(t *testing.T) {
	idp := testutil.NewIdP(t)
	// Many issuers publish keys without alg or use.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set, err := idp.Provider().JWKS()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for i := range set.Keys {
			set.Keys[i].ALG, set.Keys[i].USE = "", ""
		}
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	iss := jwtIssuerFor(idp)
	iss.JWKSURI = srv.URL
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	for _, alg := range []string{devidp.RS256, devidp.ES256, devidp.EdDSA} {
		if _, err := v.Verify(t.Context(), idp.Token(t, testutil.Alg(alg))); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
	for _, tt := range []struct{ alg, kidOf string }{
		{devidp.ES256, devidp.RS256},
		{devidp.EdDSA, devidp.ES256},
		{devidp.RS256, devidp.EdDSA},
	} {
		tok := idp.Token(t, testutil.Alg(tt.alg), testutil.Header("kid", idp.KeyID(tt.kidOf)))
		c, err := v.Verify(t.Context(), tok)
		wantRefusal(t, tok, c, err, ReasonAlgorithm)
	}
}

func TestJWTVerifyRefusesAlgorithmsTheIssuerDoesNotAllow(t *testing.T) {
	idp := testutil.NewIdP(t)
	iss := jwtIssuerFor(idp)
	iss.Algorithms = []string{"ES256"}
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	for _, alg := range []string{devidp.RS256, devidp.EdDSA} {
		tok := idp.Token(t, testutil.Alg(alg))
		c, err := v.Verify(t.Context(), tok)
		wantRefusal(t, tok, c, err, ReasonAlgorithm)
	}
	if _, err := v.Verify(t.Context(), idp.Token(t, testutil.Alg(devidp.ES256))); err != nil {
		t.Errorf("ES256: %v", err)
	}
}

func TestJWTVerifyRequiredType(t *testing.T) {
	idp := testutil.NewIdP(t)
	iss := jwtIssuerFor(idp)
	iss.Type = "at+jwt"
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	for _, typ := range []any{"at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"} {
		if _, err := v.Verify(t.Context(), idp.Token(t, testutil.Header("typ", typ))); err != nil {
			t.Errorf("typ %q: %v", typ, err)
		}
	}
	for _, typ := range []any{"JWT", "application/jwt", "at+jwt ", 1, nil} {
		tok := idp.Token(t, testutil.Header("typ", typ))
		c, err := v.Verify(t.Context(), tok)
		wantRefusal(t, tok, c, err, ReasonTokenType)
	}
}

func TestJWTCache(t *testing.T) {
	idp := testutil.NewIdP(t)
	var zero time.Duration
	iss := jwtIssuerFor(idp)
	iss.Leeway = &zero
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	now := time.Now()
	v.now = func() time.Time { return now }

	tok := idp.Token(t, testutil.ExpiresIn(time.Minute))
	c1, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	c2, err := v.Verify(t.Context(), tok)
	if err != nil || c2 != c1 {
		t.Fatalf("second Verify = %p, %v; want the cached %p", c2, err, c1)
	}
	// The cached claims stay in the cache past the token's expiry, as far
	// as the cache's clock knows, but the verifier's clock says the token
	// has expired.
	now = now.Add(2 * time.Minute)
	c, err := v.Verify(t.Context(), tok)
	wantRefusal(t, tok, c, err, ReasonTokenExpired)
}

func TestJWTCacheAgeIsBoundedByTheRefreshInterval(t *testing.T) {
	idp := testutil.NewIdP(t)
	opts := jwtOptions(&jwtLog{})
	opts.RefreshInterval = time.Hour
	v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
	now := time.Now()
	v.now = func() time.Time { return now }
	tok := idp.Token(t, testutil.ExpiresIn(2*time.Hour))
	c1, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	now = now.Add(time.Hour + time.Second)
	c2, err := v.Verify(t.Context(), tok)
	if err != nil || c2 == c1 {
		t.Fatalf("Verify after a refresh interval = %p, %v; want claims verified anew, not %p", c2, err, c1)
	}
}

func TestJWTCacheOff(t *testing.T) {
	idp := testutil.NewIdP(t)
	opts := jwtOptions(&jwtLog{})
	opts.CacheSize = -1
	v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
	tok := idp.Token(t)
	c1, err1 := v.Verify(t.Context(), tok)
	c2, err2 := v.Verify(t.Context(), tok)
	if err1 != nil || err2 != nil || c1 == c2 {
		t.Errorf("Verify twice = %p, %v and %p, %v; want two verifications", c1, err1, c2, err2)
	}
}

func TestJWTVerifierIssuer(t *testing.T) {
	idp := testutil.NewIdP(t)
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), jwtIssuerFor(idp))
	if !v.Issuer(idp.Issuer()) || v.Issuer(idp.Issuer()+"/") || v.Issuer("") {
		t.Error("Issuer does not match exactly the configured issuer")
	}
}

func TestKeyFits(t *testing.T) {
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name string
		key  any
		fits []string // of jwtAlgorithms and HS256
	}{
		{"RSA 2048", &rsa2048.PublicKey, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}},
		{"RSA 1024", &rsa1024.PublicKey, nil},
		{"RSA private", rsa2048, nil},
		{"P-256", &p256.PublicKey, []string{"ES256"}},
		{"P-384", &p384.PublicKey, []string{"ES384"}},
		{"Ed25519", ed, []string{"EdDSA"}},
		{"HMAC secret", []byte("secret"), nil},
	}
	for _, tt := range tests {
		for _, alg := range append(slices.Clone(jwtAlgorithms), "HS256") {
			if got, want := keyFits(tt.key, alg), slices.Contains(tt.fits, alg); got != want {
				t.Errorf("keyFits(%s, %s) = %v, want %v", tt.name, alg, got, want)
			}
		}
	}
}

func FuzzVerify(f *testing.F) {
	idp := testutil.NewIdP(f)
	v := newTestJWTVerifier(f, JWTOptions{Logger: slog.New(slog.DiscardHandler)}, jwtIssuerFor(idp))
	valid := idp.Token(f, testutil.ExpiresIn(time.Hour))
	// The tokens the IdP signed are the only ones that may verify: RS256
	// and EdDSA signatures are not malleable, and decoding is strict.
	signed := []string{
		valid,
		idp.Token(f, testutil.Padded(64<<10), testutil.ExpiresIn(time.Hour)),
		idp.Token(f, testutil.Alg(devidp.EdDSA), testutil.Header("kid", nil), testutil.ExpiresIn(time.Hour)),
	}
	for _, tok := range signed {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			f.Fatalf("Verify of a signed seed: %v", err)
		}
		f.Add(tok)
	}
	f.Add(valid[:len(valid)/2])
	f.Add(valid[:strings.LastIndexByte(valid, '.')+1])
	f.Add(valid + ".")
	f.Add(strings.ReplaceAll(valid, ".", ".."))
	f.Add("." + valid)
	f.Add(idp.UnsignedToken(f))
	f.Add("e30.e30.e30")
	// Signed, and refused for their claims.
	for _, opt := range []testutil.TokenOption{
		testutil.Claim("scope", "tenant:acme\u00a0orders:admin"),
		testutil.Claim("scp", []string{"tenant:acme orders:admin"}),
		testutil.Claim("iat", 1e300),
		testutil.Claim("nbf", -1e300),
		testutil.Claim("typ", "Refresh"),
		testutil.Claim("token_use", "id"),
	} {
		f.Add(idp.Token(f, opt, testutil.ExpiresIn(time.Hour)))
	}
	for tok := range earlyRefusalTokens(f, idp) {
		// One of them is valid, signed by the IdP.
		if _, err := v.Verify(context.Background(), tok); err == nil {
			signed = append(signed, tok)
		}
		f.Add(tok)
	}
	cooling := coolingVerifier(f, idp)
	f.Fuzz(func(t *testing.T, token string) {
		if parts := strings.Split(token, "."); len(parts) == 3 {
			if b, err := base64.RawURLEncoding.Strict().DecodeString(parts[1]); err == nil {
				sameClaimsDecoding(t, b, claimNames)
			}
		}
		// An early refusal is the full parse's.
		if te := cooling.unknownKey(token); te != nil {
			_, _, err := cooling.parse(context.Background(), token)
			var full *TokenError
			if !errors.As(err, &full) || full.Reason != ReasonUnknownKey {
				t.Fatalf("unknownKey refused early with %v, the full parse with %v", te, err)
			}
		}
		c, err := v.Verify(context.Background(), token)
		if err == nil {
			if !slices.Contains(signed, token) {
				t.Fatalf("Verify accepted a token the IdP did not sign, with claims %+v", c)
			}
			return
		}
		var te *TokenError
		if !errors.As(err, &te) || te.Reason == "" || te.Reason == ReasonInternal {
			t.Fatalf("Verify error %v is not a refusal with a reason", err)
		}
		if len(token) > 16 && strings.Contains(te.Description, token) {
			t.Fatalf("description %q holds the token", te.Description)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	idp := testutil.NewIdP(b)
	iss := jwtIssuerFor(idp)
	cached := newTestJWTVerifier(b, JWTOptions{Logger: slog.New(slog.DiscardHandler)}, iss)
	uncached := newTestJWTVerifier(b, JWTOptions{Logger: slog.New(slog.DiscardHandler), CacheSize: -1}, iss)
	scopes := testutil.Scopes("orders:read", "orders:write", "inventory:read")
	ctx := context.Background()
	run := func(b *testing.B, v *JWTVerifier, tok string) {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("cached", func(b *testing.B) { run(b, cached, idp.Token(b, scopes)) })
	for _, alg := range []string{devidp.RS256, devidp.ES256, devidp.EdDSA} {
		b.Run("uncached_"+alg, func(b *testing.B) { run(b, uncached, idp.Token(b, scopes, testutil.Alg(alg))) })
	}
	// A flood token: it names a key the issuer does not have, within the
	// refetch cooldown, so it is refused without a fetch.
	b.Run("unknown_kid", func(b *testing.B) {
		v := newTestJWTVerifier(b, JWTOptions{Logger: slog.New(slog.DiscardHandler), RefetchCooldown: time.Hour}, iss)
		tok := idp.Token(b, scopes, testutil.RandomKID())
		// The first unknown kid refetches the keys; the rest are refused
		// within the cooldown.
		if _, err := v.Verify(ctx, tok); err == nil {
			b.Fatal("Verify accepted a token with an unknown kid")
		}
		b.ReportAllocs()
		for b.Loop() {
			c, err := v.Verify(ctx, tok)
			var te *TokenError
			if !errors.As(err, &te) || te.Reason != ReasonUnknownKey {
				b.Fatalf("Verify = %+v, %v; want a refusal with reason %s", c, err, ReasonUnknownKey)
			}
		}
	})
}

// BenchmarkVerifyCacheMemory reports the live heap that the verified-token
// cache holds per token (B/token) once it is full of distinct tokens: of
// one client, as in the memory scenario of scopegate-bench, of one client
// with an extra claim forwarded, and of as many users. Every iteration
// verifies all the tokens afresh.
func BenchmarkVerifyCacheMemory(b *testing.B) {
	const n = DefaultCacheEntries
	idp := testutil.NewIdP(b)
	scopes := testutil.Scopes("orders:read", "bench:read")
	client := testutil.Client("bench-client")
	for _, bc := range []struct {
		name   string
		extra  []string // JWTOptions.ExtraClaims
		option func(i int) testutil.TokenOption
	}{
		{"one_client", nil, func(int) testutil.TokenOption { return client }},
		{"one_client_extra", []string{"tenant"}, func(int) testutil.TokenOption { return testutil.Claim("tenant", "acme") }},
		{"users", nil, func(i int) testutil.TokenOption { return testutil.Claim("sub", fmt.Sprintf("user-%d", i)) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tokens := make([]string, n)
			for i := range tokens {
				tokens[i] = idp.Token(b, testutil.Alg(devidp.EdDSA), scopes, client, bc.option(i))
			}
			opts := JWTOptions{ExtraClaims: bc.extra, Logger: slog.New(slog.DiscardHandler)}
			ctx := context.Background()
			for b.Loop() {
				v := newTestJWTVerifier(b, opts, jwtIssuerFor(idp))
				before := liveHeap()
				for _, tok := range tokens {
					if _, err := v.Verify(ctx, tok); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(liveHeap()-before)/n, "B/token")
				runtime.KeepAlive(v)
			}
		})
	}
}

// liveHeap returns the bytes of the reachable heap objects.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
