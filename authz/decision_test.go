package authz_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

func mustPolicy(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// jwtVerifier returns a real verifier of idp's tokens, its keys fetched.
func jwtVerifier(t testing.TB, idp *testutil.IdP, opts authz.JWTOptions) *authz.JWTVerifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := authz.NewJWTVerifier(ctx, []authz.Issuer{{Issuer: idp.Issuer(), JWKSURI: idp.JWKSURL()}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	// NewJWTVerifier fetches the keys before it returns.
	if !v.Ready() {
		t.Fatal("the verifier did not fetch the IdP's keys")
	}
	return v
}

func request(method, path, token string) *authz.Request {
	r := &authz.Request{Method: method, Host: "api.example.com", Path: path}
	if token != "" {
		r.Authorization = "Bearer " + token
	}
	return r
}

// verifierFunc adapts a function to authz.Verifier, to reach the decision's
// handling of verifier failures that no real verifier produces on demand.
type verifierFunc func(context.Context, string) (*authz.Claims, error)

func (f verifierFunc) Verify(ctx context.Context, tok string) (*authz.Claims, error) {
	return f(ctx, tok)
}

func TestCheckFailsClosedOnVerifierFailures(t *testing.T) {
	p := mustPolicy(t, "version: 1\nroutes:\n  - name: any\n    match: { path: \"/**\" }\n")
	tests := []struct {
		name   string
		v      verifierFunc
		status int
		reason authz.Reason
	}{
		{"plain error is an internal deny", func(context.Context, string) (*authz.Claims, error) { return nil, errors.New("boom") }, http.StatusInternalServerError, authz.ReasonInternal},
		{"nil claims without error is an internal deny", func(context.Context, string) (*authz.Claims, error) { return nil, nil }, http.StatusInternalServerError, authz.ReasonInternal},
		{"unavailable provider is 503", func(context.Context, string) (*authz.Claims, error) {
			return nil, &authz.TokenError{Reason: authz.ReasonIntrospectionDown, Description: "retry", Unavailable: true}
		}, http.StatusServiceUnavailable, authz.ReasonIntrospectionDown},
		{"refusal is 401 with its reason", func(context.Context, string) (*authz.Claims, error) {
			return nil, fmt.Errorf("wrapped: %w", &authz.TokenError{Reason: authz.ReasonTokenExpired, Description: "expired"})
		}, http.StatusUnauthorized, authz.ReasonTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := authz.New(p, tt.v, authz.Options{}).Check(context.Background(), request("GET", "/x", "abc"))
			if d.Allow || d.Status != tt.status || d.Reason != tt.reason {
				t.Fatalf("got allow=%v %d %s, want deny %d %s", d.Allow, d.Status, d.Reason, tt.status, tt.reason)
			}
		})
	}
}

func TestCheckDefaultAuthenticatedAdmitsAnyValidToken(t *testing.T) {
	idp := testutil.NewIdP(t)
	p := mustPolicy(t, "version: 1\ndefault: authenticated\nroutes:\n  - name: admin\n    match: { path: \"/admin/**\" }\n    deny: true\n")
	a := authz.New(p, jwtVerifier(t, idp, authz.JWTOptions{}), authz.Options{})
	if d := a.Check(context.Background(), request("GET", "/anything", idp.Token(t))); !d.Allow || d.Route != "" {
		t.Errorf("valid token, unmatched: %+v", d)
	}
	if d := a.Check(context.Background(), request("GET", "/anything", "")); d.Allow || d.Reason != authz.ReasonTokenMissing {
		t.Errorf("no token, unmatched: %+v", d)
	}
	if d := a.Check(context.Background(), request("GET", "/admin/x", idp.Token(t))); d.Allow || d.Reason != authz.ReasonRouteDenied {
		t.Errorf("deny route: %+v", d)
	}
}

func TestCheckEvaluatesEachRouteAfreshForOneToken(t *testing.T) {
	idp := testutil.NewIdP(t)
	p := mustPolicy(t, `version: 1
routes:
  - name: read
    match: { methods: [GET], path: /orders }
    require: { scopes: { all_of: [orders:read] } }
  - name: write
    match: { methods: [POST], path: /orders }
    require: { scopes: { all_of: [orders:write] } }
`)
	a := authz.New(p, jwtVerifier(t, idp, authz.JWTOptions{}), authz.Options{})
	tok := idp.Token(t, testutil.Scopes("orders:read"))
	for range 3 { // the second and third checks hit the verified-token cache
		if d := a.Check(context.Background(), request("GET", "/orders", tok)); !d.Allow {
			t.Fatalf("GET: %+v", d)
		}
		if d := a.Check(context.Background(), request("POST", "/orders", tok)); d.Allow || d.Reason != authz.ReasonInsufficientScope {
			t.Fatalf("POST: %+v", d)
		}
	}
}

func TestSetPolicySwapsForTheNextCheck(t *testing.T) {
	idp := testutil.NewIdP(t)
	open := mustPolicy(t, "version: 1\nroutes:\n  - name: r\n    match: { path: /x }\n    public: true\n")
	closed := mustPolicy(t, "version: 1\nroutes:\n  - name: r\n    match: { path: /x }\n    deny: true\n")
	a := authz.New(open, jwtVerifier(t, idp, authz.JWTOptions{}), authz.Options{})
	if d := a.Check(context.Background(), request("GET", "/x", "")); !d.Allow || d.PolicyVersion != open.Version {
		t.Fatalf("before: %+v", d)
	}
	a.SetPolicy(closed)
	if d := a.Check(context.Background(), request("GET", "/x", "")); d.Allow || d.PolicyVersion != closed.Version {
		t.Fatalf("after: %+v", d)
	}
}

func TestChallenge(t *testing.T) {
	a := authz.New(mustPolicy(t, "version: 1\nroutes: []\n"), verifierFunc(nil), authz.Options{Realm: `we"ird`})
	tests := []struct {
		name string
		d    authz.Decision
		want string
	}{
		{"no token: realm only", authz.Decision{Status: 401, Reason: authz.ReasonTokenMissing}, `Bearer realm="we'ird"`},
		{"invalid token carries error and description", authz.Decision{Status: 401, Error: "invalid_token", Description: `bad "sig"`}, `Bearer realm="we'ird", error="invalid_token", error_description="bad 'sig'"`},
		{"insufficient scope names the scopes", authz.Decision{Status: 403, Error: "insufficient_scope", Description: "d", Required: []string{"a", "b"}}, `Bearer realm="we'ird", error="insufficient_scope", error_description="d", scope="a b"`},
		{"plain 403 has no challenge", authz.Decision{Status: 403, Reason: authz.ReasonRouteDenied}, ""},
		{"allow has no challenge", authz.Decision{Allow: true, Status: 200}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.Challenge(&tt.d); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDenyBodyIsSmallJSONWithoutTheToken(t *testing.T) {
	idp := testutil.NewIdP(t)
	p := mustPolicy(t, "version: 1\nroutes:\n  - name: r\n    match: { path: /x }\n    require: { scopes: { all_of: [a] } }\n")
	a := authz.New(p, jwtVerifier(t, idp, authz.JWTOptions{}), authz.Options{})
	tok := idp.Token(t, testutil.Scopes("b"))
	d := a.Check(context.Background(), request("GET", "/x", tok))
	body := string(d.AppendBody(nil))
	want := `{"error":"insufficient_scope","error_description":"the token lacks scope a","reason":"insufficient_scope","route":"r","scope":"a"}`
	if body != want {
		t.Errorf("body %s, want %s", body, want)
	}
	if strings.Contains(body, tok) {
		t.Error("body contains the token")
	}
}

// BenchmarkCheck measures a whole decision in process: path normalization,
// route match, token verification and requirements, with the verified-token
// cache warm (cached) and off (uncached, one RS256 verification a check),
// and for a token bound to the request's client certificate, whose hash
// is cached (cached_certificate_bound).
func BenchmarkCheck(b *testing.B) {
	idp := testutil.NewIdP(b)
	p := mustPolicy(b, `version: 1
routes:
  - name: read
    match: { methods: [GET], path: "/orders/{id}" }
    require: { scopes: { all_of: [orders:read] } }
`)
	certPEM, _ := testutil.NewCA(b, "mesh").Issue(b, "billing")
	bound := testutil.Confirmation(map[string]any{"x5t#S256": testutil.CertificateThumbprint(b, certPEM)})
	for _, bc := range []struct {
		name  string
		cache int
		bound bool // the token is bound to the request's client certificate
	}{{"cached", 0, false}, {"uncached", -1, false}, {"cached_certificate_bound", 0, true}} {
		b.Run(bc.name, func(b *testing.B) {
			a := authz.New(p, jwtVerifier(b, idp, authz.JWTOptions{CacheSize: bc.cache}), authz.Options{})
			r := request("GET", "/orders/42", idp.Token(b, testutil.Scopes("orders:read")))
			if bc.bound {
				r = request("GET", "/orders/42", idp.Token(b, testutil.Scopes("orders:read"), bound))
				r.Certificate = authz.CertificateFromPEM(certPEM)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if d := a.Check(ctx, r); !d.Allow {
					b.Fatalf("denied: %+v", d)
				}
			}
		})
	}
}

func TestCheckBindsClientsToTheirIssuer(t *testing.T) {
	corp, partner := testutil.NewIdP(t), testutil.NewIdP(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := authz.NewJWTVerifier(ctx, []authz.Issuer{
		{Issuer: corp.Issuer(), JWKSURI: corp.JWKSURL()},
		{Issuer: partner.Issuer(), JWKSURI: partner.JWKSURL()},
	}, authz.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	p := mustPolicy(t, `version: 1
routes:
  - name: refunds
    match: { path: /refunds }
    require:
      issuers: [`+corp.Issuer()+`]
      clients: [billing-svc]
`)
	a := authz.New(p, v, authz.Options{})
	if d := a.Check(ctx, request("POST", "/refunds", corp.Token(t, testutil.Client("billing-svc")))); !d.Allow {
		t.Fatalf("billing-svc of the corporate issuer: %+v", d)
	}
	d := a.Check(ctx, request("POST", "/refunds", partner.Token(t, testutil.Client("billing-svc"))))
	if d.Allow || d.Status != http.StatusForbidden || d.Reason != authz.ReasonIssuerNotAllowed {
		t.Fatalf("billing-svc of the partner issuer: %+v", d)
	}
}
