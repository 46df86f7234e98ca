package authz

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

// eventually calls f until it returns true, failing t after 5 seconds.
func eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !f(); time.Sleep(5 * time.Millisecond) {
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

func TestJWTVerifyTimeClaims(t *testing.T) {
	idp := testutil.NewIdP(t)
	leeway := time.Minute
	iss := jwtIssuerFor(idp)
	iss.Leeway = &leeway
	iss.MaxLifetime = time.Hour
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	tests := []struct {
		name string
		opts []testutil.TokenOption
		want Reason // "" to accept
	}{
		{"valid", nil, ""},
		{"expired within the leeway", []testutil.TokenOption{testutil.IssuedIn(-time.Hour), testutil.ExpiresIn(-30 * time.Second)}, ""},
		{"expired beyond the leeway", []testutil.TokenOption{testutil.IssuedIn(-time.Hour), testutil.ExpiresIn(-90 * time.Second)}, ReasonTokenExpired},
		{"nbf within the leeway", []testutil.TokenOption{testutil.NotBeforeIn(30 * time.Second)}, ""},
		{"nbf beyond the leeway", []testutil.TokenOption{testutil.NotBeforeIn(90 * time.Second)}, ReasonTokenNotYetValid},
		{"iat within the leeway", []testutil.TokenOption{testutil.IssuedIn(30 * time.Second)}, ""},
		{"iat beyond the leeway", []testutil.TokenOption{testutil.IssuedIn(90 * time.Second)}, ReasonTokenNotYetValid},
		{"lifetime at the maximum", []testutil.TokenOption{testutil.ExpiresIn(time.Hour)}, ""},
		{"lifetime beyond the maximum", []testutil.TokenOption{testutil.ExpiresIn(time.Hour + time.Second)}, ReasonTokenLifetime},
		{"no iat to bound the lifetime", []testutil.TokenOption{testutil.Claim("iat", nil)}, ReasonTokenLifetime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := idp.Token(t, tt.opts...)
			c, err := v.Verify(t.Context(), tok)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantRefusal(t, tok, c, err, tt.want)
		})
	}
}

func TestJWTVerifyLeewayZero(t *testing.T) {
	idp := testutil.NewIdP(t)
	var zero time.Duration
	iss := jwtIssuerFor(idp)
	iss.Leeway = &zero
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	tok := idp.Token(t, testutil.ExpiresIn(-time.Second))
	c, err := v.Verify(t.Context(), tok)
	wantRefusal(t, tok, c, err, ReasonTokenExpired)
}

func TestJWTVerifyAudiences(t *testing.T) {
	idp := testutil.NewIdP(t)
	iss := jwtIssuerFor(idp)
	iss.Audiences = []string{"https://a.test", "https://b.test"}
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	for _, aud := range [][]string{{"https://b.test"}, {"https://x.test", "https://a.test"}} {
		c, err := v.Verify(t.Context(), idp.Token(t, testutil.Audience(aud...)))
		if err != nil {
			t.Fatalf("aud %q: %v", aud, err)
		}
		if !slices.Equal(c.Audience, aud) {
			t.Errorf("Audience = %q, want %q", c.Audience, aud)
		}
	}
	// Without audiences set, any audience, or none, is accepted.
	iss.Audiences = nil
	iss.Issuer, iss.JWKSURI = "https://any-audience.test", idp.JWKSURL()
	v = newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	for _, opt := range []testutil.TokenOption{testutil.Audience(), testutil.Audience("https://x.test")} {
		if _, err := v.Verify(t.Context(), idp.Token(t, opt, testutil.Claim("iss", iss.Issuer))); err != nil {
			t.Errorf("Verify: %v", err)
		}
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

func TestJWTVerifyScopeClaims(t *testing.T) {
	idp := testutil.NewIdP(t)
	tests := []struct {
		claim string // the issuer's ScopeClaim
		opts  []testutil.TokenOption
		want  []string
		err   bool
	}{
		{"", []testutil.TokenOption{testutil.Scopes("a", "b")}, []string{"a", "b"}, false},
		{"", []testutil.TokenOption{testutil.Claim("scp", []string{"a", "b"})}, []string{"a", "b"}, false},
		{"", []testutil.TokenOption{testutil.Claim("scp", "a b")}, []string{"a", "b"}, false},
		{"", []testutil.TokenOption{testutil.Scopes("a"), testutil.Claim("scp", []string{"b"})}, []string{"a"}, false},
		{"", nil, nil, false},
		{"", []testutil.TokenOption{testutil.Claim("scope", "  ")}, nil, false},
		{"scope", []testutil.TokenOption{testutil.Scopes("a", "b"), testutil.Claim("scp", []string{"c"})}, []string{"a", "b"}, false},
		{"scope", []testutil.TokenOption{testutil.Claim("scp", []string{"c"})}, nil, false},
		{"scp", []testutil.TokenOption{testutil.Scopes("a"), testutil.Claim("scp", []string{"c", "d"})}, []string{"c", "d"}, false},
		{"scp", []testutil.TokenOption{testutil.Claim("scp", "c d")}, []string{"c", "d"}, false},
		{"", []testutil.TokenOption{testutil.Claim("scope", []string{"a"})}, nil, true},
		{"scp", []testutil.TokenOption{testutil.Claim("scp", []any{"a", 1})}, nil, true},
		{"scp", []testutil.TokenOption{testutil.Claim("scp", 1)}, nil, true},
	}
	verifiers := map[string]*JWTVerifier{}
	for _, claim := range []string{"", "scope", "scp"} {
		iss := jwtIssuerFor(idp)
		iss.ScopeClaim = claim
		verifiers[claim] = newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d/%s", i, tt.claim), func(t *testing.T) {
			tok := idp.Token(t, tt.opts...)
			c, err := verifiers[tt.claim].Verify(t.Context(), tok)
			if tt.err {
				wantRefusal(t, tok, c, err, ReasonTokenInvalid)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !slices.Equal(c.Scopes, tt.want) {
				t.Errorf("Scopes = %q, want %q", c.Scopes, tt.want)
			}
		})
	}
}

func TestJWTVerifyClientIDFallsBackToAzpThenSub(t *testing.T) {
	idp := testutil.NewIdP(t)
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), jwtIssuerFor(idp))
	tests := []struct {
		name                string
		clientID, azp, want string
	}{
		{"client_id first", "cid", "azp", "cid"},
		{"then azp", "", "azp", "azp"},
		{"then sub", "", "", "subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []testutil.TokenOption{testutil.Claim("sub", "subject"), testutil.Claim("client_id", nil)}
			if tt.clientID != "" {
				opts = append(opts, testutil.Claim("client_id", tt.clientID))
			}
			if tt.azp != "" {
				opts = append(opts, testutil.Claim("azp", tt.azp))
			}
			c, err := v.Verify(t.Context(), idp.Token(t, opts...))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.ClientID != tt.want || c.Subject != "subject" {
				t.Errorf("ClientID %q, Subject %q; want %q, subject", c.ClientID, c.Subject, tt.want)
			}
		})
	}
}

func TestJWTVerifyCopiesExtraStringClaims(t *testing.T) {
	idp := testutil.NewIdP(t)
	opts := jwtOptions(&jwtLog{})
	opts.ExtraClaims = []string{"tenant", "tier", "absent"}
	v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
	c, err := v.Verify(t.Context(), idp.Token(t, testutil.Claim("tenant", "acme"), testutil.Claim("tier", 3)))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if want := map[string]string{"tenant": "acme"}; fmt.Sprint(c.Extra) != fmt.Sprint(want) {
		t.Errorf("Extra = %v, want %v", c.Extra, want)
	}
}

func TestJWTVerifyTokenWithoutKID(t *testing.T) {
	idp := testutil.NewIdP(t)
	opts := jwtOptions(&jwtLog{})
	opts.CacheSize = -1
	v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
	noKID := testutil.Header("kid", nil)
	// The JWKS has one key for each algorithm: the one for the token's is
	// used.
	for _, alg := range []string{devidp.RS256, devidp.ES256, devidp.EdDSA} {
		if _, err := v.Verify(t.Context(), idp.Token(t, testutil.Alg(alg), noKID)); err != nil {
			t.Errorf("%s without kid: %v", alg, err)
		}
	}
	// With two RSA keys, the verifier does not choose.
	idp.Rotate(t, devidp.RS256, true)
	if _, err := v.Verify(t.Context(), idp.Token(t)); err != nil {
		t.Fatalf("Verify with the new kid: %v", err)
	}
	tok := idp.Token(t, noKID)
	c, err := v.Verify(t.Context(), tok)
	wantRefusal(t, tok, c, err, ReasonUnknownKey)
}

func TestJWTKeyRotation(t *testing.T) {
	idp := testutil.NewIdP(t)
	opts := jwtOptions(&jwtLog{})
	opts.CacheSize = -1
	opts.RefetchCooldown = time.Hour // the first unknown kid still refetches
	v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
	old := idp.Token(t)
	if _, err := v.Verify(t.Context(), old); err != nil {
		t.Fatalf("Verify before the rotation: %v", err)
	}

	idp.Rotate(t, devidp.RS256, false)
	// Many checks of tokens signed with the new key arrive at once: they
	// share one fetch of the JWKS.
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := v.Verify(t.Context(), idp.Token(t)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Verify after the rotation: %v", err)
	}
	if n := idp.JWKSFetches(); n != 2 {
		t.Errorf("%d JWKS fetches, want 2: the one at start and one for the new kid", n)
	}
	// The old key was withdrawn with the fetch.
	c, err := v.Verify(t.Context(), old)
	wantRefusal(t, old, c, err, ReasonUnknownKey)
}

func TestJWTUnknownKIDFloodFetchesOnce(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent=%v", concurrent), func(t *testing.T) {
			idp := testutil.NewIdP(t)
			opts := jwtOptions(&jwtLog{})
			opts.RefetchCooldown = time.Hour
			v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
			toks := make([]string, 1000)
			for i := range toks {
				toks[i] = idp.Token(t, testutil.RandomKID())
			}
			check := func(tok string) {
				c, err := v.Verify(t.Context(), tok)
				wantRefusal(t, tok, c, err, ReasonUnknownKey)
			}
			if concurrent {
				var wg sync.WaitGroup
				for _, tok := range toks {
					wg.Go(func() { check(tok) })
				}
				wg.Wait()
			} else {
				for _, tok := range toks {
					check(tok)
				}
			}
			if n := idp.JWKSFetches(); n > 2 {
				t.Errorf("%d JWKS fetches for 1,000 unknown kids, want at most 2", n)
			}
			// Known keys are unaffected.
			if _, err := v.Verify(t.Context(), idp.Token(t)); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestJWTKeysOutliveAnIssuerOutage(t *testing.T) {
	for _, outage := range []string{"refused", "failing"} {
		t.Run(outage, func(t *testing.T) {
			idp := testutil.NewIdP(t)
			var log jwtLog
			opts := jwtOptions(&log)
			opts.RefreshInterval = 5 * time.Millisecond
			opts.CacheSize = -1
			v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
			tok := idp.Token(t)
			if outage == "refused" {
				idp.Refuse()
			} else {
				idp.Fail()
			}
			eventually(t, "a failed refresh to be logged", func() bool {
				return strings.Count(log.String(), "cannot refresh the issuer's keys") >= 2
			})
			for _, tok := range []string{tok, idp.Token(t, testutil.Alg(devidp.EdDSA))} {
				if _, err := v.Verify(t.Context(), tok); err != nil {
					t.Errorf("Verify while the issuer is down: %v", err)
				}
			}
			unknown := idp.Token(t, testutil.RandomKID())
			c, err := v.Verify(t.Context(), unknown)
			wantRefusal(t, unknown, c, err, ReasonUnknownKey)
			if !v.Ready() {
				t.Error("Ready = false while the last keys fetched are in use")
			}
			if strings.Contains(log.String(), tok) || strings.Contains(log.String(), unknown) {
				t.Error("the log holds a token")
			}
		})
	}
}

func TestJWTIssuerDownAtStart(t *testing.T) {
	for _, discovery := range []bool{false, true} {
		t.Run(fmt.Sprintf("discovery=%v", discovery), func(t *testing.T) {
			idp := testutil.NewIdP(t)
			idp.Refuse()
			iss := jwtIssuerFor(idp)
			if discovery {
				iss.JWKSURI, iss.Discovery = "", true
			}
			var log jwtLog
			v := newTestJWTVerifier(t, jwtOptions(&log), iss)
			if v.Ready() {
				t.Error("Ready = true before any key was fetched")
			}
			tok := idp.Token(t)
			c, err := v.Verify(t.Context(), tok)
			wantRefusal(t, tok, c, err, ReasonIssuerUnavailable)
			if te := (*TokenError)(nil); errors.As(err, &te) && te.Unavailable {
				t.Error("Unavailable = true, want false")
			}
			if !strings.Contains(log.String(), "cannot fetch the issuer's keys") {
				t.Errorf("the failure is not logged; log:\n%s", log.String())
			}

			idp.Restore(t)
			eventually(t, "the issuer's tokens to verify", func() bool {
				_, err := v.Verify(t.Context(), tok)
				return err == nil
			})
			if !v.Ready() {
				t.Error("Ready = false after the keys were fetched")
			}
		})
	}
}

func TestJWTBackgroundRetryMakesReady(t *testing.T) {
	idp := testutil.NewIdP(t)
	idp.Fail()
	opts := jwtOptions(&jwtLog{})
	opts.RefetchCooldown = time.Millisecond
	v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
	idp.Restore(t)
	// No token arrives: the verifier retries by itself.
	eventually(t, "Ready", v.Ready)
}

func TestJWTDiscovery(t *testing.T) {
	t.Run("issuer with a trailing slash", func(t *testing.T) {
		idp := testutil.NewIdP(t)
		idp.Provider().SetIssuer(idp.Issuer() + "/")
		v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), Issuer{Issuer: idp.Issuer(), Discovery: true})
		if _, err := v.Verify(t.Context(), idp.Token(t)); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("configuration of another issuer", func(t *testing.T) {
		idp := testutil.NewIdP(t)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(map[string]string{"issuer": idp.Issuer(), "jwks_uri": idp.JWKSURL()})
		}))
		t.Cleanup(srv.Close)
		var log jwtLog
		v := newTestJWTVerifier(t, jwtOptions(&log), Issuer{Issuer: srv.URL, Discovery: true})
		tok := idp.Token(t, testutil.Claim("iss", srv.URL))
		c, err := v.Verify(t.Context(), tok)
		wantRefusal(t, tok, c, err, ReasonIssuerUnavailable)
		if !strings.Contains(log.String(), "is the configuration of issuer") {
			t.Errorf("the mismatch is not logged; log:\n%s", log.String())
		}
	})
}

func TestJWTRefusesOversizedJWKS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"keys":[],"pad":%q}`, strings.Repeat("x", maxJWKSResponse))
	}))
	t.Cleanup(srv.Close)
	var log jwtLog
	v := newTestJWTVerifier(t, jwtOptions(&log), Issuer{Issuer: "https://big.test", JWKSURI: srv.URL})
	if v.Ready() || !strings.Contains(log.String(), "larger than") {
		t.Errorf("Ready = %v after an oversized JWKS; log:\n%s", v.Ready(), log.String())
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

func TestIssuerValidate(t *testing.T) {
	neg, long := -time.Second, 6*time.Minute
	tests := []struct {
		name string
		iss  Issuer
		want []string // the fields in error
	}{
		{"valid", Issuer{Issuer: "https://idp.test", JWKSURI: "https://idp.test/jwks"}, nil},
		{"valid discovery", Issuer{Issuer: "https://idp.test/realms/x/", Discovery: true}, nil},
		{"valid loopback http", Issuer{Issuer: "x", JWKSURI: "http://127.0.0.1:8080/jwks"}, nil},
		{"empty", Issuer{}, []string{"issuer", "jwks_uri"}},
		{"plain http", Issuer{Issuer: "x", JWKSURI: "http://idp.test/jwks"}, []string{"jwks_uri"}},
		{"relative", Issuer{Issuer: "x", JWKSURI: "/jwks"}, []string{"jwks_uri"}},
		{"discovery of no URL", Issuer{Issuer: "idp", Discovery: true}, []string{"issuer"}},
		{"discovery and jwks_uri", Issuer{Issuer: "https://idp.test", Discovery: true, JWKSURI: "https://idp.test/jwks"}, []string{"jwks_uri"}},
		{"algorithms", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", Algorithms: []string{"RS256", "none", "HS256", "hs512", "RS1"}},
			[]string{"algorithms[1]", "algorithms[2]", "algorithms[3]", "algorithms[4]"}},
		{"empty audience", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", Audiences: []string{"a", ""}}, []string{"audiences[1]"}},
		{"negative leeway", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", Leeway: &neg}, []string{"leeway"}},
		{"long leeway", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", Leeway: &long}, []string{"leeway"}},
		{"negative max_lifetime", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", MaxLifetime: -1}, []string{"max_lifetime"}},
		{"scope_claim", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", ScopeClaim: "scopes"}, []string{"scope_claim"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, fe := range tt.iss.Validate() {
				got = append(got, fe.Field)
				if fe.Msg == "" {
					t.Errorf("%s: empty message", fe.Field)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("fields in error = %q, want %q (%v)", got, tt.want, tt.iss.Validate())
			}
		})
	}
}

func TestNewJWTVerifierRefusesInvalidSettings(t *testing.T) {
	ok := Issuer{Issuer: "https://idp.test", JWKSURI: "http://127.0.0.1:1/jwks"}
	for name, issuers := range map[string][]Issuer{
		"invalid issuer": {ok, {Issuer: "x", JWKSURI: "https://idp.test/jwks", Algorithms: []string{"HS256"}}},
		"issuer twice":   {ok, ok},
	} {
		t.Run(name, func(t *testing.T) {
			v, err := NewJWTVerifier(t.Context(), issuers, jwtOptions(&jwtLog{}))
			if err == nil {
				v.Close()
				t.Fatal("NewJWTVerifier succeeded")
			}
			if !strings.Contains(err.Error(), "issuers[1].") {
				t.Errorf("error %q does not name issuers[1]", err)
			}
		})
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
	f.Fuzz(func(t *testing.T, token string) {
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
}
