//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// hydra is a running Ory Hydra with an in-memory database, serving on
// loopback.
type hydra struct {
	proc   *process
	issuer string // the public URL, which is also the iss of its tokens
	admin  string // the admin URL
}

// startHydra starts a Hydra and waits until it is ready.
func startHydra(t *testing.T) *hydra {
	t.Helper()
	public, admin := freeAddr(t), freeAddr(t)
	publicHost, publicPort, _ := strings.Cut(public, ":")
	adminHost, adminPort, _ := strings.Cut(admin, ":")
	h := &hydra{issuer: "http://" + public, admin: "http://" + admin}
	env := []string{
		"DSN=memory",
		"URLS_SELF_ISSUER=" + h.issuer,
		// Hydra encrypts its keys with this secret; it needs 32 bytes
		// or more.
		"SECRETS_SYSTEM=scopegate-e2e-system-secret-of-an-in-memory-hydra",
		"SERVE_PUBLIC_HOST=" + publicHost,
		"SERVE_PUBLIC_PORT=" + publicPort,
		"SERVE_ADMIN_HOST=" + adminHost,
		"SERVE_ADMIN_PORT=" + adminPort,
		// Client secrets are hashed with PBKDF2; the default cost is
		// for production, and would make every token request slow.
		"OAUTH2_HASHERS_PBKDF2_ITERATIONS=1",
		// At info, Hydra logs every migration of its database, burying
		// the lines that explain a failure.
		"LOG_LEVEL=warn",
	}
	h.proc = start(t, "hydra", hydraBin, env, "serve", "all", "--dev", "--sqa-opt-out")
	h.proc.waitReady(t, h.admin+"/health/ready", 30*time.Second)
	// Hydra makes its RSA-4096 signing keys when its JWKS is first asked
	// for, and makes more for every request that comes meanwhile: ask once,
	// with time to spare, before scopegate does.
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Get(h.issuer + "/.well-known/jwks.json")
	if err != nil {
		t.Fatalf("Hydra's JWKS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Hydra's JWKS: %s", resp.Status)
	}
	return h
}

// stop stops Hydra: its endpoints refuse connections from then on.
func (h *hydra) stop() { h.proc.stop() }

// client is the registration of an OAuth 2.0 client at Hydra's admin API.
type client struct {
	ID       string   `json:"client_id"`
	Secret   string   `json:"client_secret,omitempty"`
	Scope    string   `json:"scope"`    // the scopes it may request, space-delimited
	Audience []string `json:"audience"` // the audiences it may request
	// Strategy is the kind of its access tokens: "jwt" or "opaque".
	Strategy string `json:"access_token_strategy"`
	// Lifespan, when set, is the lifetime of its access tokens, such
	// as "2s"; Hydra's default is an hour.
	Lifespan string `json:"client_credentials_grant_access_token_lifespan,omitempty"`

	GrantTypes []string `json:"grant_types"`
	AuthMethod string   `json:"token_endpoint_auth_method"`
}

// register registers c as a client-credentials client and returns it with
// the secret that Hydra generated.
func (h *hydra) register(t *testing.T, c client) client {
	t.Helper()
	c.GrantTypes = []string{"client_credentials"}
	c.AuthMethod = "client_secret_basic"
	var created client
	h.adminCall(t, "POST", "/admin/clients", c, http.StatusCreated, &created)
	if created.ID != c.ID || created.Secret == "" {
		t.Fatalf("Hydra registered client %q with secret %t, want client %q with a secret", created.ID, created.Secret != "", c.ID)
	}
	return created
}

// token gets an access token for c with the client-credentials grant,
// for the audience and scopes, which Hydra grants only when asked.
func (h *hydra) token(t *testing.T, c client, audience string, scopes ...string) string {
	t.Helper()
	cc := clientcredentials.Config{
		ClientID:       c.ID,
		ClientSecret:   c.Secret,
		TokenURL:       h.issuer + "/oauth2/token",
		Scopes:         scopes,
		EndpointParams: url.Values{"audience": {audience}},
		AuthStyle:      oauth2.AuthStyleInHeader,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client %s: token: %v", c.ID, err)
	}
	return tok.AccessToken
}

// revoke revokes token, one of c's, at Hydra's revocation endpoint
// (RFC 7009).
func (h *hydra) revoke(t *testing.T, c client, token string) {
	t.Helper()
	req, err := http.NewRequest("POST", h.issuer+"/oauth2/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("revoking a token: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoking a token: %s", resp.Status)
	}
}

// addSigningKey adds a key for alg to the key set that Hydra signs JWT
// access tokens with. Hydra signs the next tokens with it, and goes on
// publishing the keys it had.
func (h *hydra) addSigningKey(t *testing.T, alg, kid string) {
	t.Helper()
	body := map[string]string{"alg": alg, "use": "sig", "kid": kid}
	h.adminCall(t, "POST", "/admin/keys/hydra.jwt.access-token", body, http.StatusCreated, nil)
}

// adminCall sends body as JSON to Hydra's admin API and decodes the
// answer, which must have the status want, into out unless it is nil.
func (h *hydra) adminCall(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, h.admin+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("Hydra admin API: %v", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("Hydra admin API: %s %s: %v", method, path, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("Hydra admin API: %s %s: %s %s", method, path, resp.Status, answer)
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			t.Fatalf("Hydra admin API: %s %s: %v", method, path, err)
		}
	}
}

// jwtPart decodes part n of a JWT, 0 the header or 1 the claims, without
// verifying anything: the tests use it to see what Hydra issued.
func jwtPart(t *testing.T, token string, n int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("Hydra's token is not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[n])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// expiry returns the exp of a JWT.
func expiry(t *testing.T, token string) time.Time {
	t.Helper()
	exp, ok := jwtPart(t, token, 1)["exp"].(float64)
	if !ok {
		t.Fatal("Hydra's token has no exp")
	}
	return time.Unix(int64(exp), 0)
}
