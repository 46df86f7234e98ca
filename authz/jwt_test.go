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
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

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
			wantVerdict(t, v, idp.Token(t, tt.opts...), tt.want)
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

func TestJWTVerifyClientIDClaims(t *testing.T) {
	idp := testutil.NewIdP(t)
	// The claims of a token a user obtained: sub is the user, named like
	// a client.
	user := []testutil.TokenOption{testutil.Claim("sub", "billing-svc"), testutil.Claim("client_id", nil)}
	tests := []struct {
		name   string
		claims []string // the issuer's ClientIDClaims
		opts   []testutil.TokenOption
		want   string
		reason Reason // "" to accept
	}{
		{"client_id first", nil, []testutil.TokenOption{testutil.Claim("client_id", "cid"), testutil.Claim("azp", "azp")}, "cid", ""},
		{"then azp", nil, append(user, testutil.Claim("azp", "azp")), "azp", ""},
		{"an empty client_id counts as absent", nil, []testutil.TokenOption{testutil.Claim("client_id", ""), testutil.Claim("azp", "azp")}, "azp", ""},
		{"never sub by default", nil, user, "", ""},
		{"Okta's cid", []string{"cid"}, append(user, testutil.Claim("cid", "0oa1okta")), "0oa1okta", ""},
		{"Okta's cid, not client_id", []string{"cid"}, []testutil.TokenOption{testutil.Claim("cid", "0oa1okta"), testutil.Claim("client_id", "other")}, "0oa1okta", ""},
		{"Entra v1's appid after azp", []string{"azp", "appid"}, append(user, testutil.Claim("appid", "6e74172b")), "6e74172b", ""},
		{"sub when named", []string{"client_id", "sub"}, user, "billing-svc", ""},
		{"a configured claim not a string", []string{"cid"}, []testutil.TokenOption{testutil.Claim("cid", 7)}, "", ReasonTokenInvalid},
		{"azp not a string", nil, []testutil.TokenOption{testutil.Claim("azp", []string{"a"})}, "", ReasonTokenInvalid},
		{"an unnamed claim of any type", []string{"cid"}, []testutil.TokenOption{testutil.Claim("cid", "c"), testutil.Claim("azp", 7)}, "c", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := jwtIssuerFor(idp)
			iss.ClientIDClaims = tt.claims
			v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
			tok := idp.Token(t, tt.opts...)
			c, err := v.Verify(t.Context(), tok)
			if tt.reason != "" {
				wantRefusal(t, tok, c, err, tt.reason)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.ClientID != tt.want {
				t.Errorf("ClientID %q, want %q", c.ClientID, tt.want)
			}
		})
	}
}

func TestJWTVerifyScopesSplitOnSpaceOnly(t *testing.T) {
	idp := testutil.NewIdP(t)
	scp := jwtIssuerFor(idp)
	scp.ScopeClaim = "scp"
	verifiers := map[string]*JWTVerifier{
		"scope": newTestJWTVerifier(t, jwtOptions(&jwtLog{}), jwtIssuerFor(idp)),
		"scp":   newTestJWTVerifier(t, jwtOptions(&jwtLog{}), scp),
	}
	tests := []struct {
		name  string
		claim string
		value any
		want  []string // nil with a refusal
	}{
		{"SP", "scope", "tenant:acme orders:read", []string{"tenant:acme", "orders:read"}},
		{"leading, trailing and repeated SP", "scope", "  tenant:acme   orders:read ", []string{"tenant:acme", "orders:read"}},
		{"every scope-token character", "scope", "!#[]~ a", []string{"!#[]~", "a"}},
		{"NO-BREAK SPACE", "scope", "tenant:acme\u00a0orders:admin", nil},
		{"IDEOGRAPHIC SPACE", "scope", "tenant:acme\u3000orders:admin", nil},
		{"LINE SEPARATOR", "scope", "tenant:acme\u2028orders:admin", nil},
		{"NEXT LINE", "scope", "tenant:acme\u0085orders:admin", nil},
		{"TAB", "scope", "tenant:acme\torders:admin", nil},
		{"VT", "scope", "tenant:acme\vorders:admin", nil},
		{"LF", "scope", "tenant:acme\norders:admin", nil},
		{"quote", "scope", `orders:"admin"`, nil},
		{"backslash", "scope", `orders:\admin`, nil},
		{"DEL", "scope", "orders:admin\x7f", nil},
		{"a letter beyond ASCII", "scope", "orders:\u00e4dmin", nil},
		{"scp as a string, NO-BREAK SPACE", "scp", "tenant:acme\u00a0orders:admin", nil},
		{"scp array", "scp", []string{"tenant:acme", "orders:read"}, []string{"tenant:acme", "orders:read"}},
		{"scp element with a space", "scp", []string{"tenant:acme orders:admin"}, nil},
		{"scp element with NO-BREAK SPACE", "scp", []string{"tenant:acme\u00a0orders:admin"}, nil},
		{"scp element empty", "scp", []string{"orders:read", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := idp.Token(t, testutil.Claim(tt.claim, tt.value))
			c, err := verifiers[tt.claim].Verify(t.Context(), tok)
			if tt.want == nil {
				wantRefusal(t, tok, c, err, ReasonTokenMalformed)
				if desc := err.(*TokenError).Description; strings.Contains(desc, "orders:") {
					t.Errorf("the description %q quotes the scope", desc)
				}
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

func TestJWTVerifyTimeClaimsOutsideTheYears1970To9999(t *testing.T) {
	idp := testutil.NewIdP(t)
	// No max_lifetime: nothing else bounds iat.
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), jwtIssuerFor(idp))
	exp := float64(time.Now().Add(time.Hour).Unix())
	tests := []struct {
		name  string
		claim string
		value float64
		want  Reason // "" to accept
	}{
		{"iat 1e300", "iat", 1e300, ReasonTokenMalformed},
		{"iat -1e300", "iat", -1e300, ReasonTokenMalformed},
		{"iat beyond an int64", "iat", 1e19, ReasonTokenMalformed},
		{"iat before 1970", "iat", -1, ReasonTokenMalformed},
		{"iat in 1970", "iat", 0, ""},
		{"nbf 1e300", "nbf", 1e300, ReasonTokenMalformed},
		{"nbf -1e300", "nbf", -1e300, ReasonTokenMalformed},
		{"exp 1e300", "exp", 1e300, ReasonTokenMalformed},
		{"exp after 9999", "exp", maxNumericDate + 1, ReasonTokenMalformed},
		{"exp at the end of 9999", "exp", maxNumericDate, ""},
		{"exp with a fraction", "exp", exp + 0.5, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerdict(t, v, idp.Token(t, testutil.Claim(tt.claim, tt.value)), tt.want)
		})
	}
}

func TestJWTVerifyRefusesRefreshAndIDTokens(t *testing.T) {
	idp := testutil.NewIdP(t)
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), jwtIssuerFor(idp))
	tests := []struct {
		name  string
		claim string
		value any
		want  Reason // "" to accept
	}{
		{"Keycloak access token", "typ", "Bearer", ""},
		{"Keycloak refresh token", "typ", "Refresh", ReasonTokenType},
		{"Keycloak offline token", "typ", "Offline", ReasonTokenType},
		{"Keycloak ID token", "typ", "ID", ReasonTokenType},
		{"Keycloak serialized ID token", "typ", "Serialized-ID", ReasonTokenType},
		{"Keycloak logout token", "typ", "Logout", ReasonTokenType},
		{"typ in another case", "typ", "refresh", ReasonTokenType},
		{"typ not a string", "typ", 1, ReasonTokenInvalid},
		{"Cognito access token", "token_use", "access", ""},
		{"Cognito ID token", "token_use", "id", ReasonTokenType},
		{"Hydra refresh token", "token_use", "refresh_token", ReasonTokenType},
		{"token_use not a string", "token_use", true, ReasonTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerdict(t, v, idp.Token(t, testutil.Claim(tt.claim, tt.value)), tt.want)
		})
	}
	// The JOSE header's typ is another matter (RFC 9068's at+jwt): the
	// devidp sets it, and a header typ of Refresh is no claim.
	if _, err := v.Verify(t.Context(), idp.Token(t, testutil.Header("typ", "Refresh"))); err != nil {
		t.Errorf("a header typ refused the token: %v", err)
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

// TestJWTClaimsShareValues checks that the claims of different tokens of
// one client share their strings and lists, which a full cache would
// otherwise hold once a token.
func TestJWTClaimsShareValues(t *testing.T) {
	idp := testutil.NewIdP(t)
	jwtOpts := jwtOptions(&jwtLog{})
	jwtOpts.ExtraClaims = []string{"tenant"}
	v := newTestJWTVerifier(t, jwtOpts, jwtIssuerFor(idp))
	opts := []testutil.TokenOption{testutil.Client("billing"), testutil.Scopes("orders:read", "orders:write"), testutil.Claim("tenant", "acme")}
	var claims []*Claims
	for _, tok := range []string{idp.Token(t, opts...), idp.Token(t, opts...)} {
		c, err := v.Verify(t.Context(), tok)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if c.Subject != "billing" || c.ClientID != "billing" ||
			!slices.Equal(c.Scopes, []string{"orders:read", "orders:write"}) ||
			!slices.Equal(c.Audience, []string{testutil.DefaultAudience}) ||
			!maps.Equal(c.Extra, map[string]string{"tenant": "acme"}) {
			t.Fatalf("claims = %+v", c)
		}
		claims = append(claims, c)
	}
	a, b := claims[0], claims[1]
	if a == b {
		t.Fatal("two tokens have the same claims")
	}
	if !sameString(a.Subject, b.Subject) || !sameString(a.ClientID, b.ClientID) || !sameString(a.Subject, a.ClientID) {
		t.Error("the subjects and client ids of the tokens are copies, not shared")
	}
	if !sameList(a.Scopes, b.Scopes) {
		t.Error("the scopes of the tokens are copies, not shared")
	}
	if reflect.ValueOf(a.Extra).Pointer() != reflect.ValueOf(b.Extra).Pointer() {
		t.Error("the extra claims of the tokens are copies, not shared")
	}
	if audiences := v.issuers[idp.Issuer()].audiences; unsafe.SliceData(a.Audience) != &audiences[0] || cap(a.Audience) != 1 {
		t.Error("the audience of a token is not the issuer's setting")
	}

	// Audiences other than the issuer's one are shared too.
	aud := []string{"https://other.test", testutil.DefaultAudience}
	var auds [][]string
	for range 2 {
		c, err := v.Verify(t.Context(), idp.Token(t, testutil.Audience(aud...)))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if !slices.Equal(c.Audience, aud) {
			t.Fatalf("audience = %q, want %q", c.Audience, aud)
		}
		auds = append(auds, c.Audience)
	}
	if !sameList(auds[0], auds[1]) {
		t.Error("the audiences of the tokens are copies, not shared")
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
