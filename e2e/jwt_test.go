//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// jwtIssuer returns the issuers block of a configuration that trusts the
// JWT access tokens of h, meant for orders-api, with its jwks_uri. Hydra
// issues tokens for an hour, which max_lifetime allows just so.
func jwtIssuer(h *hydra) string {
	return `
issuers:
  - issuer: ` + h.issuer + `
    jwks_uri: ` + h.issuer + `/.well-known/jwks.json
    audiences: [orders-api]
    max_lifetime: 1h
    leeway: 0s
`
}

// ordersSvc is the client of most cases: it may ask for both scopes, for
// orders-api and billing-api, and gets JWT access tokens.
var ordersSvc = client{
	ID:       "orders-svc",
	Scope:    "orders:read orders:write",
	Audience: []string{"orders-api", "billing-api"},
	Strategy: "jwt",
}

// TestJWT drives the client-credentials flow with Hydra's JWT access
// tokens: RS256, typ JWT, scopes in an scp array, aud an array.
func TestJWT(t *testing.T) {
	t.Parallel()
	h := startHydra(t)
	sg := startScopegate(t, jwtIssuer(h))
	orders := h.register(t, ordersSvc)

	t.Run("the right scope is allowed with the identity headers", func(t *testing.T) {
		a := sg.expect(t, "GET", "/orders/42", h.token(t, orders, "orders-api", "orders:read"), 200, "allowed")
		want := map[string]string{
			"x-scopegate-client-id": "orders-svc",
			"x-scopegate-subject":   "orders-svc",
			"x-scopegate-scopes":    "orders:read",
		}
		for name, v := range want {
			if a.headers[name] != v {
				t.Errorf("%s: %q, want %q", name, a.headers[name], v)
			}
		}
	})
	t.Run("a missing scope is 403 insufficient_scope", func(t *testing.T) {
		tok := h.token(t, orders, "orders-api", "orders:write")
		a := sg.expect(t, "GET", "/orders/42", tok, http.StatusForbidden, "insufficient_scope")
		if www := a.headers["www-authenticate"]; !strings.Contains(www, `error="insufficient_scope"`) || !strings.Contains(www, `scope="orders:read"`) {
			t.Errorf("challenge %q", www)
		}
		sg.expect(t, "POST", "/orders", tok, 200, "allowed")
	})
	t.Run("the HTTP listener decides alike for every proxy", func(t *testing.T) {
		read := h.token(t, orders, "orders-api", "orders:read")
		other := h.token(t, orders, "billing-api", "orders:read")
		for _, proxy := range []string{"envoy", "nginx", "traefik"} {
			for _, c := range []struct {
				method, path, token string
				status              int
				reason              string
			}{
				{"GET", "/orders/42", read, 200, ""},
				{"POST", "/orders", read, http.StatusForbidden, "insufficient_scope"},
				{"GET", "/orders/42", other, http.StatusUnauthorized, "bad_audience"},
			} {
				if status, reason := sg.checkHTTP(t, proxy, c.method, c.path, c.token); status != c.status || reason != c.reason {
					t.Errorf("%s: %s %s: got %d %q, want %d %q", proxy, c.method, c.path, status, reason, c.status, c.reason)
				}
			}
		}
	})
	t.Run("a client off the route's list is 403", func(t *testing.T) {
		reports := h.register(t, client{ID: "reports-svc", Scope: "orders:write", Audience: []string{"orders-api"}, Strategy: "jwt"})
		sg.expect(t, "POST", "/orders", h.token(t, reports, "orders-api", "orders:write"), http.StatusForbidden, "client_not_allowed")
	})
	t.Run("a token for another audience is 401", func(t *testing.T) {
		a := sg.expect(t, "GET", "/orders/42", h.token(t, orders, "billing-api", "orders:read"), http.StatusUnauthorized, "bad_audience")
		if www := a.headers["www-authenticate"]; !strings.Contains(www, `error="invalid_token"`) {
			t.Errorf("challenge %q", www)
		}
	})
	t.Run("an expired token is 401 token_expired", func(t *testing.T) {
		brief := h.register(t, client{ID: "brief-svc", Scope: "orders:read", Audience: []string{"orders-api"}, Strategy: "jwt", Lifespan: "3s"})
		tok := h.token(t, brief, "orders-api", "orders:read")
		sg.expect(t, "GET", "/orders/42", tok, 200, "allowed")
		// The issuer's leeway is zero: the token is refused from its exp
		// on, although scopegate cached it as verified.
		time.Sleep(time.Until(expiry(t, tok)))
		sg.expect(t, "GET", "/orders/42", tok, http.StatusUnauthorized, "token_expired")
	})
	t.Run("discovery finds the keys without a jwks_uri", func(t *testing.T) {
		discovering := startScopegate(t, `
issuers:
  - issuer: `+h.issuer+`
    discovery: true
    audiences: [orders-api]
`)
		discovering.expect(t, "GET", "/orders/42", h.token(t, orders, "orders-api", "orders:read"), 200, "allowed")
	})
}

// TestKeyRotation adds an ES256 key to the keys Hydra signs access tokens
// with, as an operator rotating keys does: scopegate finds the new key
// by its kid without a restart, and the old key, still published, goes
// on verifying the tokens it signed.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	h := startHydra(t)
	sg := startScopegate(t, jwtIssuer(h))
	orders := h.register(t, ordersSvc)
	seen := h.token(t, orders, "orders-api", "orders:read")
	sg.expect(t, "GET", "/orders/1", seen, 200, "allowed")
	unseen := h.token(t, orders, "orders-api", "orders:read")

	h.addSigningKey(t, "ES256", "e2e-es256")
	rotated := h.token(t, orders, "orders-api", "orders:read")
	if head := jwtPart(t, rotated, 0); head["alg"] != "ES256" || head["kid"] != "e2e-es256" {
		t.Fatalf("Hydra did not sign with the new key: header %v", head)
	}
	sg.expect(t, "GET", "/orders/2", rotated, 200, "allowed")
	// A token that scopegate first sees after the rotation is verified
	// with the old key, not answered from the cache.
	sg.expect(t, "GET", "/orders/3", unseen, 200, "allowed")
	sg.expect(t, "GET", "/orders/4", seen, 200, "allowed")
}
