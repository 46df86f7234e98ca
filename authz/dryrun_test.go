package authz_test

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/scopegate/scopegate/authz"
)

// tokens is a Verifier that knows a fixed set of tokens: the claims of
// "bare", "reader" and "admin", a refusal for "expired", an outage for "down" and
// an internal failure for anything else.
var tokens = verifierFunc(func(_ context.Context, tok string) (*authz.Claims, error) {
	switch tok {
	case "bare":
		return &authz.Claims{ClientID: "bare", Subject: "bare"}, nil
	case "reader":
		return &authz.Claims{ClientID: "svc", Subject: "svc", Scopes: []string{"orders:read"}, Audience: []string{"api"}}, nil
	case "admin":
		return &authz.Claims{ClientID: "ops", Subject: "ops", Scopes: []string{"orders:read", "orders:admin"}, Audience: []string{"api"}}, nil
	case "expired":
		return nil, &authz.TokenError{Reason: authz.ReasonTokenExpired, Description: "the token has expired"}
	case "down":
		return nil, &authz.TokenError{Reason: authz.ReasonIntrospectionDown, Description: "retry", Unavailable: true}
	}
	return nil, context.Canceled
})

const rolloutPolicy = `version: 1
routes:
  - name: read
    match: { methods: [GET], path: "/orders/**" }
    require: { scopes: { all_of: [orders:read] } }
  - name: delete
    match: { methods: [DELETE], path: "/orders/{id}" }
    require: { scopes: { all_of: [orders:admin] }, clients: [ops] }
    mode: dry_run
  - name: purge
    match: { path: "/orders/purge" }
    deny: true
    mode: dry_run
  - name: health
    match: { path: /healthz }
    public: true
`

func TestDecideIsCheckWithoutVerification(t *testing.T) {
	a := authz.New(mustPolicy(t, rolloutPolicy), tokens, authz.Options{})
	bare, _ := tokens.Verify(context.Background(), "bare")
	reader, _ := tokens.Verify(context.Background(), "reader")
	admin, _ := tokens.Verify(context.Background(), "admin")
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		claims *authz.Claims
	}{
		{"allowed", "GET", "/orders/1", "reader", reader},
		{"insufficient_scope", "GET", "/orders/1", "bare", bare},
		{"no_token", "GET", "/orders/1", "", nil},
		{"dry_run_deny", "DELETE", "/orders/1", "reader", reader},
		{"dry_run_allow", "DELETE", "/orders/1", "admin", admin},
		{"deny_route", "POST", "/orders/purge", "reader", reader},
		{"public", "GET", "/healthz", "", nil},
		{"no_route", "GET", "/nowhere", "reader", reader},
		{"bad_path", "GET", "/orders%2F1", "reader", reader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(tt.method, tt.path, tt.token)
			checked := a.Check(context.Background(), r)
			decided := a.Decide(r, tt.claims)
			if !reflect.DeepEqual(checked, decided) {
				t.Errorf("Check  = %+v\nDecide = %+v", checked, decided)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		method string
		path   string
		token  string
		// want is the decision's Allow, WouldDeny, Status and Reason.
		allow, wouldDeny bool
		status           int
		reason           authz.Reason
	}{
		{"requirement_unmet_on_a_dry_run_route_is_allowed", rolloutPolicy, "DELETE", "/orders/1", "reader",
			true, true, http.StatusForbidden, authz.ReasonClientNotAllowed},
		{"requirement_met_on_a_dry_run_route_is_a_plain_allow", rolloutPolicy, "DELETE", "/orders/1", "admin",
			true, false, http.StatusOK, authz.ReasonAllowed},
		{"no_token_on_a_dry_run_route_is_allowed", rolloutPolicy, "DELETE", "/orders/1", "",
			true, true, http.StatusUnauthorized, authz.ReasonTokenMissing},
		{"refused_token_on_a_dry_run_route_is_allowed", rolloutPolicy, "DELETE", "/orders/1", "expired",
			true, true, http.StatusUnauthorized, authz.ReasonTokenExpired},
		{"provider_outage_on_a_dry_run_route_is_allowed", rolloutPolicy, "DELETE", "/orders/1", "down",
			true, true, http.StatusServiceUnavailable, authz.ReasonIntrospectionDown},
		{"internal_error_on_a_dry_run_route_is_denied", rolloutPolicy, "DELETE", "/orders/1", "garbage",
			false, false, http.StatusInternalServerError, authz.ReasonInternal},
		{"deny_route_in_dry_run_is_allowed", rolloutPolicy, "POST", "/orders/purge", "",
			true, true, http.StatusForbidden, authz.ReasonRouteDenied},
		{"no_token_on_an_enforced_route_is_denied", rolloutPolicy, "GET", "/orders/1", "",
			false, false, http.StatusUnauthorized, authz.ReasonTokenMissing},
		{"refused_token_on_an_enforced_route_is_denied", rolloutPolicy, "GET", "/orders/1", "expired",
			false, false, http.StatusUnauthorized, authz.ReasonTokenExpired},
		{"policy_wide_dry_run_covers_unmatched_requests", "version: 1\nmode: dry_run\n", "GET", "/x", "reader",
			true, true, http.StatusForbidden, authz.ReasonNoRoute},
		{"policy_wide_dry_run_covers_routes", "version: 1\nmode: dry_run\nroutes:\n  - name: r\n    match: { path: /x }\n    require: { scopes: { all_of: [x] } }\n", "GET", "/x", "reader",
			true, true, http.StatusForbidden, authz.ReasonInsufficientScope},
		{"route_enforced_in_a_dry_run_policy_is_denied", "version: 1\nmode: dry_run\nroutes:\n  - name: r\n    match: { path: /x }\n    mode: enforce\n", "GET", "/x", "",
			false, false, http.StatusUnauthorized, authz.ReasonTokenMissing},
		{"bad_path_is_never_dry_run", "version: 1\nmode: dry_run\n", "GET", "/x%00", "reader",
			false, false, http.StatusBadRequest, authz.ReasonBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := authz.New(mustPolicy(t, tt.policy), tokens, authz.Options{})
			d := a.Check(context.Background(), request(tt.method, tt.path, tt.token))
			if d.Allow != tt.allow || d.WouldDeny != tt.wouldDeny || d.Status != tt.status || d.Reason != tt.reason {
				t.Fatalf("got allow=%v would_deny=%v %d %s, want allow=%v would_deny=%v %d %s",
					d.Allow, d.WouldDeny, d.Status, d.Reason, tt.allow, tt.wouldDeny, tt.status, tt.reason)
			}
			if d.WouldDeny && a.Challenge(&d) != "" {
				t.Errorf("a dry-run allow carries the challenge %q", a.Challenge(&d))
			}
		})
	}
}

func TestDryRunAllowKeepsTheDenyForTheAuditLog(t *testing.T) {
	p := mustPolicy(t, "version: 1\nroutes:\n  - name: r\n    match: { path: /x }\n    require: { scopes: { any_of: [a, b] } }\n    mode: dry_run\n")
	a := authz.New(p, tokens, authz.Options{})
	d := a.Check(context.Background(), request("GET", "/x", "reader"))
	want := authz.Decision{
		Allow: true, WouldDeny: true, Status: http.StatusForbidden, Reason: authz.ReasonInsufficientScope,
		Description: "the token lacks one of a, b", Error: "insufficient_scope", Route: "r", Path: "/x",
		Required: []string{"a", "b"}, Claims: d.Claims, PolicyVersion: p.Version,
	}
	if !reflect.DeepEqual(d, want) || d.Claims == nil || d.Claims.ClientID != "svc" {
		t.Errorf("got  %+v\nwant %+v with the token's claims", d, want)
	}
}

func TestDryRunAllowWithoutATokenSetsNoIdentity(t *testing.T) {
	a := authz.New(mustPolicy(t, rolloutPolicy), tokens, authz.Options{})
	d := a.Check(context.Background(), request("DELETE", "/orders/1", "expired"))
	if !d.WouldDeny {
		t.Fatalf("got %+v, want a dry-run allow", d)
	}
	var set, remove []string
	for name, value := range a.Upstream(&d) {
		if value == "" {
			remove = append(remove, name)
		} else {
			set = append(set, name+": "+value)
		}
	}
	if len(set) != 0 {
		t.Errorf("headers set: %v, want none", set)
	}
	for _, h := range []string{"x-scopegate-client-id", "x-scopegate-subject", "x-scopegate-scopes"} {
		if !slices.Contains(remove, h) {
			t.Errorf("headers removed: %v, want %s among them", remove, h)
		}
	}
}
