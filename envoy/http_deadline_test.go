package envoy_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
)

// gate is a real HTTP server in front of a provider. After letting the
// first requests through, it holds each request until it is released (or
// the client gives up) and only then passes it on: a test that releases it
// after the check has answered knows the provider had not answered yet.
type gate struct {
	URL     string        // the provider's URL, through the gate
	entered chan struct{} // receives once a request is held
	release func()
}

// newGate puts a gate in front of target that lets pass requests through
// before it holds any.
func newGate(t *testing.T, target string, pass int) *gate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	// A client that gave up is the point of the test, not an error.
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	released := make(chan struct{})
	g := &gate{entered: make(chan struct{}, 1)}
	var once sync.Once
	g.release = func() { once.Do(func() { close(released) }) }
	var passed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if passed.Add(1) > int64(pass) {
			select {
			case g.entered <- struct{}{}:
			default:
			}
			select {
			case <-released:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	// Cleanups run last first: release before Close waits for the
	// requests held.
	t.Cleanup(srv.Close)
	t.Cleanup(g.release)
	g.URL = srv.URL + u.RequestURI()
	return g
}

// held waits until the gate holds a request, or fails the test.
func (g *gate) held(t *testing.T, what string) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatalf("the check was denied, but %s was never asked: the test proves nothing", what)
	}
}

// slowAnswer is the bound on an answer past the check's deadline: far
// more than a loaded machine needs to send a deny, far less than the
// providers' own timeouts, which an answer without a deadline waits for.
const slowAnswer = 5 * time.Second

// deniedInTime sends one check in every proxy convention to h while the
// provider behind g holds its answer, and fails unless each is denied
// within timeout plus slowAnswer, before the provider answered.
func deniedInTime(t *testing.T, h *httpHarness, g *gate, timeout time.Duration, token, provider string, reason authz.Reason) {
	t.Helper()
	if timeout == 0 {
		timeout = envoy.DefaultHTTPCheckTimeout
	}
	for i, p := range conventions {
		a := h.doWithin(t, p.request(h.url, "GET", "api.example.com", "/orders/1"), bearer(token), timeout+slowAnswer)
		if a.status == http.StatusOK || a.reason == string(authz.ReasonAllowed) {
			t.Fatalf("%s: got %d %s while %s held its answer, want a deny", p.name, a.status, a.reason, provider)
		}
		if a.reason != string(reason) {
			t.Errorf("%s: denied for %s while %s held its answer, want %s: the token may be fine", p.name, a.reason, provider, reason)
		}
		if a.headers["x-scopegate-reason"] != a.reason {
			t.Errorf("%s: x-scopegate-reason %q, want %q", p.name, a.headers["x-scopegate-reason"], a.reason)
		}
		if p.name == "envoy http_service" && a.status >= 500 {
			t.Errorf("%s: status %d: Envoy would take it for scopegate's failure", p.name, a.status)
		}
		if i == 0 {
			// Later checks wait on the same provider request.
			g.held(t, provider)
		}
		t.Logf("%s: %d %s", p.name, a.status, a.reason)
	}
}

// TestHTTPSlowIntrospectionIsDeniedWithinTheDeadline pins the decision
// deadline of the HTTP listener: a proxy sends none, so without one a
// check waits on a slow provider past the proxy's own timeout, and the
// proxy's failure mode decides.
func TestHTTPSlowIntrospectionIsDeniedWithinTheDeadline(t *testing.T) {
	for _, timeout := range []time.Duration{0, 100 * time.Millisecond} {
		t.Run("timeout "+timeout.String(), func(t *testing.T) {
			srv := testutil.NewIntrospectionServer(t)
			srv.Register("ory_at_reader", active("orders:read"))
			g := newGate(t, srv.URL, 0)
			secret := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(secret, []byte(srv.ClientSecret), 0o600); err != nil {
				t.Fatal(err)
			}
			// The provider's own timeout is far past slowAnswer.
			in, err := authz.NewIntrospector(authz.Introspection{Endpoint: g.URL, ClientID: srv.ClientID, ClientSecretFile: secret, Timeout: time.Minute}, authz.IntrospectorOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { in.Close() })
			h := serveHTTP(t, &envoy.HTTPServer{Authorizer: authorizer(t, in, authz.Options{}), Timeout: timeout})

			deniedInTime(t, h, g, timeout, "ory_at_reader", "the introspection endpoint", authz.ReasonIntrospectionDown)
			h.mu.Lock()
			reason := h.d.Reason
			h.mu.Unlock()
			if reason != authz.ReasonIntrospectionDown {
				t.Errorf("reason %s, want %s", reason, authz.ReasonIntrospectionDown)
			}
			if n := srv.Calls(); n != 0 {
				t.Errorf("the provider was reached %d times through a closed gate", n)
			}
		})
	}
}

// TestHTTPUnknownKeyOnASlowJWKSIsDeniedWithinTheDeadline pins the same
// deadline for a token whose kid makes the verifier fetch the issuer's
// JWKS again, from a JWKS endpoint that does not answer.
func TestHTTPUnknownKeyOnASlowJWKSIsDeniedWithinTheDeadline(t *testing.T) {
	idp := testutil.NewIdP(t)
	// The first fetch, before the verifier is ready, goes through.
	g := newGate(t, idp.JWKSURL(), 1)
	jv := newJWTVerifier(t, []authz.Issuer{{Issuer: idp.Issuer(), JWKSURI: g.URL, Audiences: []string{testutil.DefaultAudience}}})
	h := serveHTTP(t, &envoy.HTTPServer{Authorizer: authorizer(t, jv, authz.Options{})})
	token := idp.Token(t, testutil.Scopes("orders:read"), testutil.Header("kid", "made-up-kid"))

	fetches := idp.JWKSFetches()
	deniedInTime(t, h, g, 0, token, "the JWKS endpoint", authz.ReasonIssuerUnavailable)
	if n := idp.JWKSFetches(); n != fetches {
		t.Errorf("the IdP served %d JWKS fetches through a closed gate", n-fetches)
	}
}
