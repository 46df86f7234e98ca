package envoy_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// claimsHarness serves testPolicy over real gRPC with two real IdPs, one
// keeping the client id in client_id or azp (the default) and one, as
// Okta does, in cid, and a real introspection provider behind them.
type claimsHarness struct {
	*harness
	okta *testutil.IdP
	srv  *testutil.IntrospectionServer
}

func startClaims(t *testing.T) *claimsHarness {
	t.Helper()
	idp, okta := testutil.NewIdP(t), testutil.NewIdP(t)
	srv := testutil.NewIntrospectionServer(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(srv.ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := authz.NewIntrospector(authz.Introspection{Endpoint: srv.URL, ClientID: srv.ClientID, ClientSecretFile: secret}, authz.IntrospectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	jv := newJWTVerifier(t, []authz.Issuer{
		{Issuer: idp.Issuer(), JWKSURI: idp.JWKSURL(), Audiences: []string{testutil.DefaultAudience}},
		{Issuer: okta.Issuer(), JWKSURI: okta.JWKSURL(), Audiences: []string{testutil.DefaultAudience}, ClientIDClaims: []string{"cid"}},
	})
	pol, err := policy.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	a := authz.New(pol, &authz.Router{JWT: jv, Introspector: in}, authz.Options{})
	return &claimsHarness{harness: &harness{idp: idp, client: serve(t, a)}, okta: okta, srv: srv}
}

// opaque registers answer, an active answer with fields changed, for a
// new opaque token and returns the token.
func (h *claimsHarness) opaque(t *testing.T, fields map[string]any) string {
	t.Helper()
	answer := map[string]any{"active": true, "client_id": "billing-svc", "token_type": "Bearer", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range fields {
		answer[k] = v
	}
	token := "ory_at_" + rand.Text()
	h.srv.Register(token, answer)
	return token
}

// TestClaimsThatMustNotGrant pins, through the gRPC listener, the claims
// that a token's issuer signed, or its provider vouched for, and that
// still must not let the request through.
func TestClaimsThatMustNotGrant(t *testing.T) {
	h := startClaims(t)
	billing := testutil.Client("billing-svc")
	future := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name         string
		method, path string
		token        func(t *testing.T) string
		status       int
		reason       authz.Reason
	}{
		// Item 4: scopes split on SP alone.
		{"NO-BREAK SPACE does not grant orders:admin", "POST", "/orders",
			func(t *testing.T) string {
				return h.idp.Token(t, billing, testutil.Claim("scope", "tenant:acme\u00a0orders:admin"))
			}, 401, authz.ReasonTokenMalformed},
		{"IDEOGRAPHIC SPACE does not grant orders:admin", "POST", "/orders",
			func(t *testing.T) string {
				return h.idp.Token(t, billing, testutil.Claim("scope", "tenant:acme\u3000orders:admin"))
			}, 401, authz.ReasonTokenMalformed},
		{"an scp element with a space is not forwarded", "GET", "/orders/1",
			func(t *testing.T) string {
				return h.idp.Token(t, billing, testutil.Claim("scp", []string{"orders:read", "tenant:acme orders:admin"}))
			}, 401, authz.ReasonTokenMalformed},
		{"NO-BREAK SPACE in an introspection answer does not grant orders:admin", "POST", "/orders",
			func(t *testing.T) string {
				return h.opaque(t, map[string]any{"scope": "tenant:acme\u00a0orders:admin"})
			},
			401, authz.ReasonTokenMalformed},
		// Item 6: time claims.
		{"iat 1e300", "GET", "/orders/1",
			func(t *testing.T) string {
				return h.idp.Token(t, testutil.Scopes("orders:read"), testutil.Claim("iat", 1e300))
			},
			401, authz.ReasonTokenMalformed},
		{"nbf -1e300", "GET", "/orders/1",
			func(t *testing.T) string {
				return h.idp.Token(t, testutil.Scopes("orders:read"), testutil.Claim("nbf", -1e300))
			},
			401, authz.ReasonTokenMalformed},
		{"a future nbf in an introspection answer", "GET", "/orders/1",
			func(t *testing.T) string { return h.opaque(t, map[string]any{"scope": "orders:read", "nbf": future}) },
			401, authz.ReasonTokenNotYetValid},
		// Item 7: refresh and ID tokens.
		{"a Keycloak refresh token (JWT)", "GET", "/orders/1",
			func(t *testing.T) string {
				return h.idp.Token(t, testutil.Scopes("orders:read"), testutil.Claim("typ", "Refresh"))
			},
			401, authz.ReasonTokenType},
		{"a Keycloak ID token (JWT)", "GET", "/orders/1",
			func(t *testing.T) string {
				return h.idp.Token(t, testutil.Scopes("orders:read"), testutil.Claim("typ", "ID"))
			},
			401, authz.ReasonTokenType},
		{"a Keycloak refresh token (introspected)", "GET", "/orders/1",
			func(t *testing.T) string {
				return h.opaque(t, map[string]any{"scope": "orders:read", "typ": "Refresh"})
			},
			401, authz.ReasonTokenType},
		// The client id: never sub, unless configured.
		{"a user named like a client is not the client", "POST", "/orders",
			func(t *testing.T) string {
				return h.idp.Token(t, testutil.Scopes("orders:admin"), testutil.Claim("sub", "billing-svc"), testutil.Claim("client_id", nil))
			}, 403, authz.ReasonClientNotAllowed},
		{"nor in an introspection answer", "POST", "/orders",
			func(t *testing.T) string {
				return h.opaque(t, map[string]any{"scope": "orders:admin", "sub": "billing-svc", "client_id": nil})
			}, 403, authz.ReasonClientNotAllowed},
		{"client_id means nothing to an issuer whose client is cid", "POST", "/orders",
			func(t *testing.T) string {
				return h.okta.Token(t, testutil.Scopes("orders:admin"), billing, testutil.Claim("cid", "other-svc"))
			}, 403, authz.ReasonClientNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.check(t, tt.method, "api.example.com", tt.path, bearer(tt.token(t)))
			if a.status != tt.status || a.reason != string(tt.reason) {
				t.Fatalf("got %d %s, want %d %s (%s)", a.status, a.reason, tt.status, tt.reason, a.body)
			}
		})
	}
}

// TestClaimsThatGrant pins the allowed counterparts of the refusals
// above, and the identity headers they set.
func TestClaimsThatGrant(t *testing.T) {
	h := startClaims(t)
	billing := testutil.Client("billing-svc")
	tests := []struct {
		name         string
		method, path string
		token        func(t *testing.T) string
		clientID     string // x-scopegate-client-id; "" when it must be removed
		scopes       []string
	}{
		{"scopes split on SP, repeated SP ignored", "POST", "/orders",
			func(t *testing.T) string {
				return h.idp.Token(t, billing, testutil.Claim("scope", " tenant:acme  orders:admin "))
			},
			"billing-svc", []string{"tenant:acme", "orders:admin"}},
		{"a Keycloak access token", "GET", "/orders/1",
			func(t *testing.T) string {
				return h.idp.Token(t, testutil.Scopes("orders:read"), testutil.Claim("typ", "Bearer"), testutil.Claim("azp", "kc-svc"), testutil.Claim("client_id", nil))
			}, "kc-svc", []string{"orders:read"}},
		{"a token without a client id sets none", "GET", "/orders/1",
			func(t *testing.T) string {
				return h.idp.Token(t, testutil.Scopes("orders:read"), testutil.Claim("sub", "alice"), testutil.Claim("client_id", nil))
			}, "", []string{"orders:read"}},
		{"the client of an issuer whose client is cid", "POST", "/orders",
			func(t *testing.T) string {
				return h.okta.Token(t, testutil.Scopes("orders:admin"), testutil.Claim("cid", "billing-svc"), testutil.Claim("client_id", nil))
			}, "billing-svc", []string{"orders:admin"}},
		{"an nbf passed in an introspection answer", "GET", "/orders/1",
			func(t *testing.T) string {
				return h.opaque(t, map[string]any{"scope": "orders:read", "nbf": time.Now().Add(-time.Minute).Unix()})
			}, "billing-svc", []string{"orders:read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.check(t, tt.method, "api.example.com", tt.path, bearer(tt.token(t)))
			if a.status != 200 {
				t.Fatalf("got %d %s, want 200 (%s)", a.status, a.reason, a.body)
			}
			if got := strings.Split(a.headers["x-scopegate-scopes"], " "); !slices.Equal(got, tt.scopes) {
				t.Errorf("x-scopegate-scopes read as %q, want %q", got, tt.scopes)
			}
			id, set := a.headers["x-scopegate-client-id"]
			switch {
			case tt.clientID != "" && id != tt.clientID:
				t.Errorf("x-scopegate-client-id = %q, want %q", id, tt.clientID)
			case tt.clientID == "" && (set || !slices.Contains(a.removed, "x-scopegate-client-id")):
				t.Errorf("x-scopegate-client-id is %q (set %v), want it removed (removed: %q)", id, set, a.removed)
			}
		})
	}
}
