package envoy_test

import (
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// identityPolicy routes by the calling workload's SPIFFE ID and by the
// tags Envoy's routes attach (context_extensions).
const identityPolicy = `version: 1
routes:
  - name: billing
    match: { path: "/billing/**" }
    require:
      principals: ["spiffe://cluster.local/ns/orders/sa/*"]
      scopes: { all_of: [billing:read] }
  - name: internal
    match: { path: "/internal/**" }
    require: { principals: ["spiffe://cluster.local/ns/ops/**"], token: false }
  - name: orders
    match: { path: "/orders/**" }
  - name: orders-partner
    match: { path: "/orders/**", context: { route: partner-api } }
    require: { scopes: { all_of: [partner] } }
`

// identityRequest builds the CheckRequest that Envoy sends for a request
// from a peer that presented a client certificate with principal, on a
// route whose ExtAuthzPerRoute sets context_extensions ctx.
func identityRequest(path, principal, token string, ctx map[string]string) *authv3.CheckRequest {
	var headers map[string]string
	if token != "" {
		headers = bearer(token)
	}
	req := envoy.CheckRequest("GET", "api.example.com", path, headers)
	req.Attributes.Source.Principal = principal
	req.Attributes.ContextExtensions = ctx
	return req
}

func TestGRPCDecidesOnThePeersPrincipalAndRouteContext(t *testing.T) {
	idp := testutil.NewIdP(t)
	pol, err := policy.Parse("policy.yaml", []byte(identityPolicy))
	if err != nil {
		t.Fatal(err)
	}
	client := serve(t, authz.New(pol, jwtVerifierFor(t, idp), authz.Options{}))
	billing := idp.Token(t, testutil.Scopes("billing:read"), testutil.Client("orders-svc"))
	const (
		ordersAPI  = "spiffe://cluster.local/ns/orders/sa/api"
		shopAPI    = "spiffe://cluster.local/ns/shop/sa/api"
		opsConsole = "spiffe://cluster.local/ns/ops/sa/console"
	)
	tests := []struct {
		name   string
		req    *authv3.CheckRequest
		status int
		reason authz.Reason
		set    map[string]string // headers set upstream
		remove []string          // headers removed upstream
	}{
		{"allowed_spiffe_id_with_its_token", identityRequest("/billing/1", ordersAPI, billing, nil), 200, authz.ReasonAllowed,
			map[string]string{"x-scopegate-principal": ordersAPI, "x-scopegate-client-id": "orders-svc"}, nil},
		{"allowed_spiffe_id_without_a_token", identityRequest("/billing/1", ordersAPI, "", nil), 401, authz.ReasonTokenMissing, nil, nil},
		{"another_spiffe_id_with_a_good_token", identityRequest("/billing/1", shopAPI, billing, nil), 403, authz.ReasonPrincipalNotAllowed, nil, nil},
		{"no_client_certificate", identityRequest("/billing/1", "", billing, nil), 403, authz.ReasonPrincipalNotAllowed, nil, nil},
		{"principal_only_route_without_a_token", identityRequest("/internal/jobs", opsConsole, "", nil), 200, authz.ReasonAllowed,
			map[string]string{"x-scopegate-principal": opsConsole},
			[]string{"x-scopegate-client-id", "x-scopegate-subject", "x-scopegate-scopes", "x-scopegate-issuer"}},
		{"principal_only_route_another_peer", identityRequest("/internal/jobs", ordersAPI, billing, nil), 403, authz.ReasonPrincipalNotAllowed, nil, nil},
		{"context_tagged_route_outranks_the_plain_one", identityRequest("/orders/1", "", idp.Token(t), map[string]string{"route": "partner-api", "tier": "gold"}), 403, authz.ReasonInsufficientScope, nil, nil},
		{"context_tagged_route_admits_its_scope", identityRequest("/orders/1", "", idp.Token(t, testutil.Scopes("partner")), map[string]string{"route": "partner-api"}), 200, authz.ReasonAllowed, nil, nil},
		{"plain_route_for_another_tag", identityRequest("/orders/1", "", idp.Token(t), map[string]string{"route": "shop"}), 200, authz.ReasonAllowed,
			nil, []string{"x-scopegate-principal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := send(t, client, tt.req)
			if a.status != tt.status || a.reason != string(tt.reason) {
				t.Fatalf("got %d %s (%s), want %d %s", a.status, a.reason, a.body, tt.status, tt.reason)
			}
			for k, v := range tt.set {
				if a.headers[k] != v {
					t.Errorf("upstream %s = %q, want %q (headers %v)", k, a.headers[k], v, a.headers)
				}
			}
			for _, k := range tt.remove {
				if !contains(a.removed, k) {
					t.Errorf("upstream %s not removed (removed %v)", k, a.removed)
				}
			}
		})
	}
}

// A caller cannot send its own x-scopegate-principal: scopegate
// overwrites it with what Envoy verified, or removes it.
func TestPrincipalHeaderCannotBeSpoofed(t *testing.T) {
	idp := testutil.NewIdP(t)
	pol, err := policy.Parse("policy.yaml", []byte(identityPolicy))
	if err != nil {
		t.Fatal(err)
	}
	client := serve(t, authz.New(pol, jwtVerifierFor(t, idp), authz.Options{}))
	headers := bearer(idp.Token(t))
	headers["x-scopegate-principal"] = "spiffe://cluster.local/ns/ops/sa/console"
	a := send(t, client, envoy.CheckRequest("GET", "api.example.com", "/orders/1", headers))
	if a.status != 200 || !contains(a.removed, "x-scopegate-principal") {
		t.Fatalf("got %d %s, removed %v; want an allow removing x-scopegate-principal", a.status, a.reason, a.removed)
	}
	req := envoy.CheckRequest("GET", "api.example.com", "/orders/1", headers)
	req.Attributes.Source.Principal = "spiffe://cluster.local/ns/shop/sa/api"
	if a = send(t, client, req); a.headers["x-scopegate-principal"] != "spiffe://cluster.local/ns/shop/sa/api" {
		t.Errorf("x-scopegate-principal = %q, want the verified principal", a.headers["x-scopegate-principal"])
	}
}
