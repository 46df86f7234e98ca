package envoy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// startOpaque serves scopegate over gRPC with introspection behind the
// router, as serve wires it, and JWTs from a real IdP beside it.
func startOpaque(t *testing.T, srv *testutil.IntrospectionServer, timeout time.Duration) *harness {
	t.Helper()
	idp := testutil.NewIdP(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(srv.ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := authz.NewIntrospector(authz.Introspection{Endpoint: srv.URL, ClientID: srv.ClientID, ClientSecretFile: secret, Timeout: timeout}, authz.IntrospectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	jv := jwtVerifierFor(t, idp)
	pol, err := policy.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{idp: idp, client: serve(t, authz.New(pol, &authz.Router{JWT: jv, Introspector: in}, authz.Options{}))}
}

func active(scopes string) map[string]any {
	return map[string]any{"active": true, "client_id": "orders-svc", "sub": "orders-svc", "scope": scopes, "exp": time.Now().Add(time.Hour).Unix(), "token_type": "Bearer"}
}

func TestOpaqueTokensEndInTheSameDecisions(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	h := startOpaque(t, srv, 200*time.Millisecond)
	srv.Register("ory_at_reader", active("orders:read"))
	srv.Register("ory_at_inactive", map[string]any{"active": false})
	srv.Register("ory_at_expired", map[string]any{"active": true, "scope": "orders:read", "exp": time.Now().Add(-time.Hour).Unix()})
	tests := []struct {
		name, method, path, token string
		status                    int
		reason                    authz.Reason
	}{
		{"active token with the scope is allowed", "GET", "/orders/1", "ory_at_reader", 200, authz.ReasonAllowed},
		{"the same cached token is checked afresh on another route", "POST", "/orders", "ory_at_reader", 403, authz.ReasonClientNotAllowed},
		{"inactive token is 401", "GET", "/orders/1", "ory_at_inactive", 401, authz.ReasonInactive},
		{"expired but active token is 401", "GET", "/orders/1", "ory_at_expired", 401, authz.ReasonTokenExpired},
		{"unknown token is inactive", "GET", "/orders/1", "ory_at_unknown", 401, authz.ReasonInactive},
		{"JWTs still go the JWT way", "GET", "/orders/1", h.idp.Token(t, testutil.Scopes("orders:read")), 200, authz.ReasonAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := h.check(t, tt.method, "api.example.com", tt.path, bearer(tt.token)); a.status != tt.status || a.reason != string(tt.reason) {
				t.Fatalf("got %d %s, want %d %s (%s)", a.status, a.reason, tt.status, tt.reason, a.body)
			}
		})
	}
}

func TestOpaqueTokenCachedClaimsAreCheckedPerRoute(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	h := startOpaque(t, srv, 200*time.Millisecond)
	srv.Register("ory_at_admin", map[string]any{"active": true, "client_id": "admin-svc", "scope": "orders:read orders:admin", "exp": time.Now().Add(time.Hour).Unix()})
	if a := h.check(t, "GET", "api.example.com", "/orders/1", bearer("ory_at_admin")); a.status != 200 {
		t.Fatalf("first route: %d %s", a.status, a.reason)
	}
	// Cached now: the next route still checks its own client allowlist.
	if a := h.check(t, "POST", "api.example.com", "/orders", bearer("ory_at_admin")); a.status != 403 || a.reason != string(authz.ReasonClientNotAllowed) {
		t.Fatalf("second route: %d %s", a.status, a.reason)
	}
	if n := srv.Calls(); n != 1 {
		t.Errorf("introspection calls = %d, want 1 (the second check is a cache hit)", n)
	}
}

func TestProviderDownIs503AskingToRetry(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	h := startOpaque(t, srv, 200*time.Millisecond)
	srv.Register("ory_at_reader", active("orders:read"))
	srv.SetDelay(time.Second)
	a := h.check(t, "GET", "api.example.com", "/orders/1", bearer("ory_at_reader"))
	if a.status != 503 || a.reason != string(authz.ReasonIntrospectionDown) {
		t.Fatalf("got %d %s, want 503 %s", a.status, a.reason, authz.ReasonIntrospectionDown)
	}
	if !strings.Contains(a.body, "retry") {
		t.Errorf("the 503 body should tell the caller to retry: %s", a.body)
	}
	if a.headers["www-authenticate"] != "" {
		t.Errorf("a 503 must not challenge for a new token: %q", a.headers["www-authenticate"])
	}
}

// TestSlowProviderIsDeniedBeforeEnvoyGivesUp pins that a check answers
// before the caller's deadline: a late answer is a gRPC error to Envoy,
// which failure_mode_allow would turn into an allow.
func TestSlowProviderIsDeniedBeforeEnvoyGivesUp(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	h := startOpaque(t, srv, 2*time.Second)
	srv.Register("ory_at_reader", active("orders:read"))
	srv.SetDelay(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	resp, err := h.client.Check(ctx, envoy.CheckRequest("GET", "api.example.com", "/orders/1", bearer("ory_at_reader")))
	if err != nil {
		t.Fatalf("Check: %v: the deny must reach the caller before its deadline", err)
	}
	if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 503 {
		t.Fatalf("status %d, want 503", got)
	}
}
