package authz_test

import (
	"context"
	"maps"
	"testing"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
)

const identityPolicy = `version: 1
routes:
  - name: billing
    match: { path: "/billing/**" }
    require:
      principals: ["spiffe://cluster.local/ns/billing/sa/*"]
      scopes: { all_of: [billing:read] }
  - name: internal
    match: { path: "/internal/**" }
    require: { principals: ["spiffe://cluster.local/ns/ops/**"], token: false }
  - name: shadow
    match: { path: "/shadow/**" }
    mode: dry_run
    require: { principals: ["spiffe://cluster.local/ns/ops/**"], token: false }
  - name: plain
    match: { path: "/orders/**" }
  - name: orders-billing
    match: { path: "/orders/**", context: { route: billing } }
    require: { scopes: { all_of: [billing:read] } }
`

func TestCheckPrincipalsAndTokens(t *testing.T) {
	idp := testutil.NewIdP(t)
	a := authz.New(mustPolicy(t, identityPolicy), jwtVerifier(t, idp, authz.JWTOptions{}), authz.Options{})
	good := idp.Token(t, testutil.Scopes("billing:read"))
	const (
		billingAPI = "spiffe://cluster.local/ns/billing/sa/api"
		shopAPI    = "spiffe://cluster.local/ns/shop/sa/api"
		opsConsole = "spiffe://cluster.local/ns/ops/sa/console"
	)
	tests := []struct {
		name      string
		path      string
		principal string
		token     string
		context   map[string]string
		status    int
		reason    authz.Reason
		wouldDeny bool
		route     string
		claims    bool // the decision carries verified claims
	}{
		{"allowed_principal_and_token", "/billing/1", billingAPI, good, nil, 200, authz.ReasonAllowed, false, "billing", true},
		{"allowed_principal_still_needs_the_token", "/billing/1", billingAPI, "", nil, 401, authz.ReasonTokenMissing, false, "billing", false},
		{"allowed_principal_still_needs_the_scope", "/billing/1", billingAPI, idp.Token(t, testutil.Scopes("other")), nil, 403, authz.ReasonInsufficientScope, false, "billing", true},
		{"other_principal_is_refused_whatever_its_token", "/billing/1", shopAPI, good, nil, 403, authz.ReasonPrincipalNotAllowed, false, "billing", false},
		{"no_mutual_tls_is_refused", "/billing/1", "", good, nil, 403, authz.ReasonPrincipalNotAllowed, false, "billing", false},
		{"one_segment_wildcard_does_not_reach_deeper", "/billing/1", billingAPI + "/x", good, nil, 403, authz.ReasonPrincipalNotAllowed, false, "billing", false},
		{"principal_only_route_needs_no_token", "/internal/x", opsConsole, "", nil, 200, authz.ReasonAllowed, false, "internal", false},
		{"principal_only_route_does_not_look_at_a_token", "/internal/x", opsConsole, "not a token", nil, 200, authz.ReasonAllowed, false, "internal", false},
		{"principal_only_route_refuses_another_principal", "/internal/x", billingAPI, good, nil, 403, authz.ReasonPrincipalNotAllowed, false, "internal", false},
		{"principal_only_route_refuses_a_request_without_mutual_tls", "/internal/x", "", good, nil, 403, authz.ReasonPrincipalNotAllowed, false, "internal", false},
		{"dry_run_allows_a_wrong_principal_and_says_so", "/shadow/x", shopAPI, "", nil, 403, authz.ReasonPrincipalNotAllowed, true, "shadow", false},
		{"context_route_decides_a_tagged_request", "/orders/1", "", idp.Token(t), map[string]string{"route": "billing"}, 403, authz.ReasonInsufficientScope, false, "orders-billing", true},
		{"plain_route_decides_an_untagged_request", "/orders/1", "", idp.Token(t), nil, 200, authz.ReasonAllowed, false, "plain", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request("GET", tt.path, "")
			if tt.token != "" {
				r.Authorization = "Bearer " + tt.token
			}
			r.Principal, r.Context = tt.principal, authz.Context{}
			for k, v := range tt.context {
				r.Context.Set(k, v)
			}
			d := a.Check(context.Background(), r)
			wantAllow := tt.status == 200 || tt.wouldDeny
			if d.Allow != wantAllow || d.Status != tt.status || d.Reason != tt.reason || d.WouldDeny != tt.wouldDeny || d.Route != tt.route {
				t.Fatalf("decision %+v, want allow %v status %d reason %s route %s would_deny %v", d, wantAllow, tt.status, tt.reason, tt.route, tt.wouldDeny)
			}
			if (d.Claims != nil) != tt.claims {
				t.Errorf("claims %+v, want claims: %v", d.Claims, tt.claims)
			}
			if d.Principal != tt.principal {
				t.Errorf("Principal %q, want %q", d.Principal, tt.principal)
			}
			if d.Status == 403 && d.Reason == authz.ReasonPrincipalNotAllowed && a.Challenge(&d) != "" {
				t.Errorf("a wrong principal got a challenge %q: no token can fix it", a.Challenge(&d))
			}
		})
	}
}

func TestUpstreamCarriesThePrincipal(t *testing.T) {
	idp := testutil.NewIdP(t)
	a := authz.New(mustPolicy(t, identityPolicy), jwtVerifier(t, idp, authz.JWTOptions{}), authz.Options{})
	upstream := func(d authz.Decision) map[string]string {
		return maps.Collect(a.Upstream(&d))
	}
	// Principal only: the principal goes up, every token-derived header
	// is removed, so that a caller's own values of them cannot pass.
	r := request("GET", "/internal/x", "")
	r.Principal = "spiffe://cluster.local/ns/ops/sa/console"
	got := upstream(a.Check(context.Background(), r))
	want := map[string]string{
		"x-scopegate-principal": "spiffe://cluster.local/ns/ops/sa/console",
		"x-scopegate-client-id": "", "x-scopegate-subject": "", "x-scopegate-scopes": "", "x-scopegate-issuer": "",
	}
	if !maps.Equal(got, want) {
		t.Errorf("principal-only Upstream = %v, want %v", got, want)
	}
	// Principal and token: both.
	r = request("GET", "/billing/1", idp.Token(t, testutil.Scopes("billing:read"), testutil.Client("billing-svc")))
	r.Principal = "spiffe://cluster.local/ns/billing/sa/api"
	got = upstream(a.Check(context.Background(), r))
	if got["x-scopegate-principal"] != r.Principal || got["x-scopegate-client-id"] != "billing-svc" {
		t.Errorf("Upstream = %v, want the principal and the client id", got)
	}
	// No mutual TLS: the header is removed.
	got = upstream(a.Check(context.Background(), request("GET", "/orders/1", idp.Token(t))))
	if v, ok := got["x-scopegate-principal"]; !ok || v != "" {
		t.Errorf("Upstream without a peer = %v, want x-scopegate-principal removed", got)
	}
	// A principal that cannot go into a header value is not sent.
	r = request("GET", "/orders/1", idp.Token(t))
	r.Principal = "CN=caf\u00e9\r\nx-evil: 1"
	if got = upstream(a.Check(context.Background(), r)); got["x-scopegate-principal"] != "" {
		t.Errorf("Upstream sent the principal %q", got["x-scopegate-principal"])
	}
}

func TestDecidePrincipalOnly(t *testing.T) {
	a := authz.New(mustPolicy(t, identityPolicy), nil, authz.Options{})
	r := &authz.Request{Method: "GET", Path: "/internal/x", Principal: "spiffe://cluster.local/ns/ops/sa/console"}
	if d := a.Decide(r, nil); !d.Allow || d.Reason != authz.ReasonAllowed {
		t.Errorf("Decide = %+v, want an allow without a token", d)
	}
	r.Principal = "spiffe://cluster.local/ns/shop/sa/api"
	if d := a.Decide(r, &authz.Claims{}); d.Allow || d.Reason != authz.ReasonPrincipalNotAllowed {
		t.Errorf("Decide = %+v, want principal_not_allowed", d)
	}
}

func TestCheckWithPrincipalAndContextDoesNotAllocate(t *testing.T) {
	idp := testutil.NewIdP(t)
	a := authz.New(mustPolicy(t, identityPolicy), jwtVerifier(t, idp, authz.JWTOptions{}), authz.Options{})
	r := request("GET", "/billing/1", idp.Token(t, testutil.Scopes("billing:read")))
	r.Principal = "spiffe://cluster.local/ns/billing/sa/api"
	r.Context.Set("route", "billing")
	ctx := context.Background()
	if d := a.Check(ctx, r); !d.Allow {
		t.Fatalf("denied: %+v", d)
	}
	if n := testing.AllocsPerRun(100, func() { a.Check(ctx, r) }); n != 0 {
		t.Errorf("a cached check with a principal and a context made %v allocations, want 0", n)
	}
}
