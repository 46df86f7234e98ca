//go:build e2e

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cacheTTL is how long scopegate caches an introspection answer: a revoked
// token passes for this long at most.
const cacheTTL = 2 * time.Second

// introspection returns the introspection block of a configuration that
// asks h about the tokens that are not its JWTs. Hydra introspects on its
// admin port, without authenticating the caller: the client credentials
// that scopegate requires go unchecked.
func introspection(t *testing.T, h *hydra) string {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "introspection-secret")
	if err := os.WriteFile(secret, []byte("unchecked-by-hydra\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The timeout is the default's tenfold, for a loaded test machine.
	return `
introspection:
  endpoint: ` + h.admin + `/admin/oauth2/introspect
  client_id: scopegate
  client_secret_file: ` + secret + `
  audiences: [orders-api]
  timeout: 5s
  cache: {max_ttl: ` + cacheTTL.String() + `}
  token_format: ` + hydraTokenFormat + `
`
}

// hydraTokenFormat is the token_format that the README documents for
// Hydra's access tokens: every opaque token of the suite must fit it.
const hydraTokenFormat = "{prefix: ory_at_, alphabet: base64url, segments: 2, min_length: 94, max_length: 94}"

// opaqueSvc is a client that gets opaque access tokens.
var opaqueSvc = client{
	ID:       "opaque-svc",
	Scope:    "orders:read orders:write",
	Audience: []string{"orders-api", "billing-api"},
	Strategy: "opaque",
}

// TestOpaque drives the client-credentials flow with Hydra's opaque access
// tokens, which scopegate introspects at Hydra.
func TestOpaque(t *testing.T) {
	t.Parallel()
	h := startHydra(t)
	sg := startScopegate(t, jwtIssuer(h)+introspection(t, h))
	opaque := h.register(t, opaqueSvc)

	t.Run("the right scope is allowed with the identity headers", func(t *testing.T) {
		tok := h.token(t, opaque, "orders-api", "orders:read")
		if !strings.HasPrefix(tok, "ory_at_") {
			t.Fatalf("Hydra issued %.8s…, not an opaque token", tok)
		}
		a := sg.expect(t, "GET", "/orders/42", tok, 200, "allowed")
		if a.headers["x-scopegate-client-id"] != "opaque-svc" || a.headers["x-scopegate-scopes"] != "orders:read" {
			t.Errorf("identity headers %v", a.headers)
		}
	})
	t.Run("a bearer string out of Hydra's token format is 401 token_malformed", func(t *testing.T) {
		tok := h.token(t, opaque, "orders-api", "orders:read")
		sg.expect(t, "GET", "/orders/42", strings.Replace(tok, ".", "_", 1), http.StatusUnauthorized, "token_malformed")
	})
	t.Run("a missing scope is 403 insufficient_scope", func(t *testing.T) {
		sg.expect(t, "GET", "/orders/42", h.token(t, opaque, "orders-api", "orders:write"), http.StatusForbidden, "insufficient_scope")
	})
	t.Run("a token for another API is 401 bad_audience", func(t *testing.T) {
		sg.expect(t, "GET", "/orders/42", h.token(t, opaque, "billing-api", "orders:read"), http.StatusUnauthorized, "bad_audience")
	})
	t.Run("a revoked token is refused once its cached answer is stale", func(t *testing.T) {
		tok := h.token(t, opaque, "orders-api", "orders:read")
		sg.expect(t, "GET", "/orders/42", tok, 200, "allowed")
		h.revoke(t, opaque, tok)
		time.Sleep(cacheTTL)
		sg.expect(t, "GET", "/orders/42", tok, http.StatusUnauthorized, "token_inactive")
	})
}

// TestHydraStopped stops Hydra. JWTs go on passing, verified with the keys
// that scopegate fetched last; opaque tokens pass while their answers are
// cached, and are refused as unavailable (503) without one.
func TestHydraStopped(t *testing.T) {
	t.Parallel()
	h := startHydra(t)
	sg := startScopegate(t, jwtIssuer(h)+"jwks: {refresh_interval: 1s}\n"+introspection(t, h))
	orders := h.register(t, ordersSvc)
	opaque := h.register(t, opaqueSvc)
	seenJWT := h.token(t, orders, "orders-api", "orders:read")
	sg.expect(t, "GET", "/orders/1", seenJWT, 200, "allowed")
	unseenJWT := h.token(t, orders, "orders-api", "orders:read")
	cached := h.token(t, opaque, "orders-api", "orders:read")
	sg.expect(t, "GET", "/orders/1", cached, 200, "allowed")
	stale := time.Now().Add(cacheTTL)
	uncached := h.token(t, opaque, "orders-api", "orders:read")

	h.stop()
	sg.expect(t, "GET", "/orders/2", cached, 200, "allowed")
	sg.expect(t, "GET", "/orders/2", uncached, http.StatusServiceUnavailable, "introspection_unavailable")
	sg.proc.waitOutput(t, "cannot refresh the issuer's keys", 10*time.Second)
	sg.expect(t, "GET", "/orders/3", unseenJWT, 200, "allowed")
	sg.expect(t, "GET", "/orders/3", seenJWT, 200, "allowed")
	sg.proc.waitReady(t, sg.admin+"/readyz", time.Second)
	time.Sleep(time.Until(stale))
	sg.expect(t, "GET", "/orders/4", cached, http.StatusServiceUnavailable, "introspection_unavailable")
}
