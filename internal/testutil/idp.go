// Package testutil holds the helpers shared by scopegate's tests: an
// identity provider on a local HTTP server that counts its requests,
// rotates its keys and goes down on demand, and the tokens that attacks on
// a JWT verifier use.
//
//	idp := testutil.NewIdP(t)
//	tok := idp.Token(t, testutil.Scopes("orders:read"))
package testutil

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/scopegate/scopegate/internal/devidp"
)

// The client that NewIdP registers when given none, and the audience of
// the tokens that Token makes by default.
const (
	DefaultClientID     = "test-client"
	DefaultClientSecret = "test-secret"
	DefaultAudience     = "https://api.scopegate.test"
)

// IdP is a devidp.IdP served by an httptest.Server on loopback. Its issuer
// is the server's URL. It is safe for concurrent use.
type IdP struct {
	p   *devidp.IdP
	srv *httptest.Server
	lis *listener

	failing  atomic.Bool
	requests atomic.Int64
	jwks     atomic.Int64
}

// NewIdP starts an IdP that registers clients, or when none is given the
// client DefaultClientID with the secret DefaultClientSecret, the audience
// DefaultAudience and no scopes. The server stops when the test ends.
func NewIdP(t testing.TB, clients ...devidp.Client) *IdP {
	t.Helper()
	if len(clients) == 0 {
		clients = []devidp.Client{{ID: DefaultClientID, Secret: DefaultClientSecret, Audience: []string{DefaultAudience}}}
	}
	p, err := devidp.New(devidp.Config{Clients: clients})
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	lis, err := listen()
	if err != nil {
		t.Fatalf("testutil: listening for the IdP: %v", err)
	}
	i := &IdP{p: p, lis: lis}
	h := p.Handler()
	i.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.requests.Add(1)
		if r.URL.Path == devidp.JWKSPath {
			i.jwks.Add(1)
		}
		if i.failing.Load() {
			http.Error(w, "testutil: the IdP is failing", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	}))
	i.srv.Listener.Close()
	i.srv.Listener = lis
	i.srv.Start()
	p.SetIssuer(i.srv.URL)
	t.Cleanup(i.srv.Close)
	return i
}

// Issuer returns the iss of the IdP's tokens: the server's URL, unless it
// was changed with Provider().SetIssuer.
func (i *IdP) Issuer() string { return i.p.Issuer() }

// JWKSURL returns the URL of the IdP's JWKS.
func (i *IdP) JWKSURL() string { return i.srv.URL + devidp.JWKSPath }

// TokenURL returns the URL of the IdP's token endpoint.
func (i *IdP) TokenURL() string { return i.srv.URL + devidp.TokenPath }

// Requests returns how many requests of any kind reached the IdP.
func (i *IdP) Requests() int { return int(i.requests.Load()) }

// JWKSFetches returns how many requests for the JWKS reached the IdP,
// answered or failed.
func (i *IdP) JWKSFetches() int { return int(i.jwks.Load()) }

// Fail makes every endpoint answer 500 Internal Server Error until Restore.
func (i *IdP) Fail() { i.failing.Store(true) }

// Refuse makes the IdP refuse connections until Restore, as a stopped
// server does. It closes the connections open to it.
func (i *IdP) Refuse() {
	i.lis.refuse()
	i.srv.CloseClientConnections()
}

// Restore ends Fail and Refuse: the IdP serves again, at the same URL.
func (i *IdP) Restore(t testing.TB) {
	t.Helper()
	i.failing.Store(false)
	if err := i.lis.restore(); err != nil {
		t.Fatalf("testutil: listening again at %s: %v", i.srv.URL, err)
	}
}

// Rotate makes a new key sign the IdP's alg tokens and returns its kid; see
// devidp.IdP.Rotate.
func (i *IdP) Rotate(t testing.TB, alg string, keepOld bool) (kid string) {
	t.Helper()
	kid, err := i.p.Rotate(alg, keepOld)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	return kid
}

// KeyID returns the kid of the key that signs the IdP's alg tokens.
func (i *IdP) KeyID(alg string) string { return i.p.KeyID(alg) }

// Provider returns the devidp.IdP that the server serves.
func (i *IdP) Provider() *devidp.IdP { return i.p }
