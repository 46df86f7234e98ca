package authz_test

import (
	"context"
	"encoding/base64"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
)

// routerParts are a Router's verifiers, real ones: a JWT verifier of an
// IdP's tokens and an Introspector of an introspection server's.
type routerParts struct {
	idp *testutil.IdP
	jwt *authz.JWTVerifier
	srv *testutil.IntrospectionServer
	in  *authz.Introspector
}

func newRouterParts(t testing.TB) *routerParts {
	t.Helper()
	p := &routerParts{idp: testutil.NewIdP(t), srv: testutil.NewIntrospectionServer(t)}
	var err error
	p.jwt, err = authz.NewJWTVerifier(context.Background(),
		[]authz.Issuer{{Issuer: p.idp.Issuer(), JWKSURI: p.idp.JWKSURL()}}, authz.JWTOptions{})
	if err != nil {
		t.Fatalf("NewJWTVerifier: %v", err)
	}
	t.Cleanup(p.jwt.Close)
	p.in = newIntrospector(t, introspectionConfig(t, p.srv))
	return p
}

// introspected registers token as active at the introspection server, with
// a subject that tells its claims from the IdP's.
func (p *routerParts) introspected(token string) string {
	r := activeResponse()
	r["sub"] = "introspected"
	p.srv.Register(token, r)
	return token
}

// jws returns a compact JWS of header and payload, signed by no one.
func jws(header, payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc([]byte("not a signature"))
}

func TestRouter(t *testing.T) {
	p := newRouterParts(t)
	iss := p.idp.Issuer()
	tests := []struct {
		name  string
		token string
		// side is the verifier that must answer: "jwt" or "introspection".
		side string
	}{
		{"JWT of a configured issuer", p.idp.Token(t), "jwt"},
		{"JWT of another issuer", p.introspected(p.idp.Token(t, testutil.Claim("iss", "https://other.example.com"))), "introspection"},
		{"JWT without iss", p.introspected(p.idp.Token(t, testutil.Claim("iss", nil))), "introspection"},
		{"opaque token", p.introspected(newToken(t)), "introspection"},
		{"three parts that are not base64url", p.introspected("abc.d*f.ghi"), "introspection"},
		{"header that is not JSON", p.introspected(jws("alg", `{"iss":"`+iss+`"}`)), "introspection"},
		{"header that is not an object", p.introspected(jws(`["alg"]`, `{"iss":"`+iss+`"}`)), "introspection"},
		{"payload that is not an object", p.introspected(jws(`{"alg":"RS256"}`, `null`)), "introspection"},
		{"iss that is not a string", p.introspected(jws(`{"alg":"RS256"}`, `{"iss":7}`)), "introspection"},
		{"JWE-shaped token", p.introspected(jws(`{"alg":"RSA-OAEP"}`, `{"iss":"`+iss+`"}`) + ".iv.tag"), "introspection"},
	}
	r := &authz.Router{JWT: p.jwt, Introspector: p.in}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.srv.Calls()
			c, err := r.Verify(context.Background(), tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			introspected := p.srv.Calls() > before
			switch {
			case tt.side == "jwt" && (introspected || c.Issuer != iss):
				t.Errorf("the JWT verifier did not answer: introspected %v, claims %+v", introspected, c)
			case tt.side == "introspection" && (!introspected || c.Subject != "introspected"):
				t.Errorf("introspection did not answer: introspected %v, claims %+v", introspected, c)
			}
		})
	}
}

// sameRefusal reports whether two Verify errors refuse alike: the same
// reason and description, whatever their causes say for the logs (an
// early refusal of an unknown kid leaves the kid out).
func sameRefusal(a, b error) bool {
	var ta, tb *authz.TokenError
	if !errors.As(a, &ta) || !errors.As(b, &tb) {
		return a == nil && b == nil
	}
	return ta.Reason == tb.Reason && ta.Description == tb.Description && ta.Unavailable == tb.Unavailable
}

// TestRouterKeepsJWTResults checks that tokens of a configured issuer get
// exactly the JWT verifier's answer, refusals included, and never reach
// introspection.
func TestRouterKeepsJWTResults(t *testing.T) {
	p := newRouterParts(t)
	tokens := map[string]string{
		"valid":         p.idp.Token(t, testutil.Scopes("orders:read")),
		"expired":       p.idp.Token(t, testutil.ExpiresIn(-time.Hour)),
		"unknown key":   p.idp.Token(t, testutil.RandomKID()),
		"not yet valid": p.idp.Token(t, testutil.NotBeforeIn(time.Hour)),
		"unsigned":      p.idp.UnsignedToken(t),
	}
	good := p.idp.Token(t)
	tokens["bad signature"] = good[:len(good)-4] + "AAAA"
	r := &authz.Router{JWT: p.jwt, Introspector: p.in}
	for name, token := range tokens {
		t.Run(name, func(t *testing.T) {
			want, wantErr := p.jwt.Verify(context.Background(), token)
			got, err := r.Verify(context.Background(), token)
			if !reflect.DeepEqual(got, want) || !sameRefusal(err, wantErr) {
				t.Errorf("Router.Verify = %+v, %v; the JWT verifier says %+v, %v", got, err, want, wantErr)
			}
		})
	}
	if n := p.srv.Calls(); n != 0 {
		t.Errorf("introspection calls = %d, want 0", n)
	}
}

func TestRouterIntrospectIssuers(t *testing.T) {
	p := newRouterParts(t)
	r := &authz.Router{JWT: p.jwt, Introspector: p.in, IntrospectIssuers: map[string]bool{p.idp.Issuer(): true}}
	token := p.introspected(p.idp.Token(t))
	c, err := r.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Subject != "introspected" || p.srv.Calls() != 1 {
		t.Errorf("the token of an introspect_jwts issuer was not introspected: claims %+v, %d calls", c, p.srv.Calls())
	}
}

func TestRouterWithoutIntrospection(t *testing.T) {
	p := newRouterParts(t)
	tests := []struct {
		name   string
		r      *authz.Router
		token  string
		reason authz.Reason // "" for a token that verifies
	}{
		{"JWT of a configured issuer", &authz.Router{JWT: p.jwt}, p.idp.Token(t), ""},
		{"JWT of another issuer", &authz.Router{JWT: p.jwt}, p.idp.Token(t, testutil.Claim("iss", "https://other.example.com")), authz.ReasonUnknownIssuer},
		{"opaque token", &authz.Router{JWT: p.jwt}, newToken(t), authz.ReasonTokenMalformed},
		{"introspect_jwts issuer", &authz.Router{JWT: p.jwt, IntrospectIssuers: map[string]bool{p.idp.Issuer(): true}}, p.idp.Token(t), authz.ReasonUnknownIssuer},
		{"zero Router, JWT", &authz.Router{}, p.idp.Token(t), authz.ReasonUnknownIssuer},
		{"zero Router, opaque token", &authz.Router{}, newToken(t), authz.ReasonTokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.r.Verify(context.Background(), tt.token)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Issuer != p.idp.Issuer() {
					t.Errorf("claims = %+v", c)
				}
				return
			}
			wantReason(t, err, tt.reason, false)
		})
	}
}

func TestRouterPeekIsCheap(t *testing.T) {
	p := newRouterParts(t)
	r := &authz.Router{JWT: p.jwt, Introspector: p.in}
	token := p.idp.Token(t)
	ctx := context.Background()
	if _, err := r.Verify(ctx, token); err != nil {
		t.Fatal(err)
	}
	direct := testing.AllocsPerRun(100, func() { p.jwt.Verify(ctx, token) })
	routed := testing.AllocsPerRun(100, func() { r.Verify(ctx, token) })
	// The iss string is the peek's only allocation, but for the scanner
	// that json.Valid takes from a sync.Pool, which the race detector
	// empties at random.
	if extra := routed - direct; extra > 2 {
		t.Errorf("the router adds %v allocations to a cached JWT check, want at most 2", extra)
	}
}

func BenchmarkRouterJWT(b *testing.B) {
	p := newRouterParts(b)
	r := &authz.Router{JWT: p.jwt, Introspector: p.in}
	token := p.idp.Token(b)
	ctx := context.Background()
	for _, bb := range []struct {
		name string
		v    authz.Verifier
	}{{"direct", p.jwt}, {"routed", r}} {
		b.Run(bb.name, func(b *testing.B) {
			if _, err := bb.v.Verify(ctx, token); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bb.v.Verify(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
