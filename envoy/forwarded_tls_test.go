package envoy_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
)

// peerCert is a client certificate generated for the test: its PEM, its
// DER and the SHA-256 of the DER.
type peerCert struct {
	pem, der []byte
	sum      [32]byte
	tls      tls.Certificate
	ca       *testutil.CA
}

func newPeerCert(t *testing.T) peerCert {
	t.Helper()
	ca := testutil.NewCA(t, "mesh")
	certPEM, keyPEM := ca.Issue(t, "billing")
	block, _ := pem.Decode(certPEM)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return peerCert{pem: certPEM, der: block.Bytes, sum: sha256.Sum256(block.Bytes), tls: pair, ca: ca}
}

// observed collects the requests that a server's Observer sees.
type observed struct {
	mu   sync.Mutex
	reqs []authz.Request
	ds   []authz.Decision
}

func (o *observed) observe(r *authz.Request, d *authz.Decision, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reqs, o.ds = append(o.reqs, *r), append(o.ds, *d)
}

// last returns the one check observed since n checks, failing the test
// unless there was exactly one.
func (o *observed) last(t *testing.T, n int) (authz.Request, authz.Decision) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.reqs) != n+1 {
		t.Fatalf("the server observed %d checks, want 1", len(o.reqs)-n)
	}
	return o.reqs[n], o.ds[n]
}

// checkTLSFacts fails the test unless r carries the certificate c and
// the given principals.
func checkTLSFacts(t *testing.T, r authz.Request, c peerCert, principal, destination string) {
	t.Helper()
	if r.Principal != principal || r.DestinationPrincipal != destination {
		t.Errorf("principal %q, destination %q; want %q, %q", r.Principal, r.DestinationPrincipal, principal, destination)
	}
	sum, err := r.Certificate.SHA256()
	if err != nil || sum != c.sum {
		t.Errorf("certificate SHA-256 %x (%v), want %x", sum, err, c.sum)
	}
}

func TestGRPCReadsThePeersCertificateAndRouteContext(t *testing.T) {
	c := newPeerCert(t)
	var o observed
	client := serveServer(t, &envoy.Server{Authorizer: authorizer(t, nil, authz.Options{}), Observe: o.observe})
	req := envoy.CheckRequest("GET", "api.example.com", "/healthz", nil)
	src := req.Attributes.Source
	src.Principal, src.Certificate = "spiffe://cluster.local/ns/billing/sa/api", string(authz.CertificateFromPEM(c.pem))
	req.Attributes.Destination = &authv3.AttributeContext_Peer{Principal: "spiffe://cluster.local/ns/orders/sa/gateway"}
	req.Attributes.TlsSession = &authv3.AttributeContext_TLSSession{Sni: "orders.internal"}
	req.Attributes.ContextExtensions = map[string]string{"tier": "gold"}
	req.Attributes.Request.Http.Scheme = "https"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.Check(ctx, req); err != nil {
		t.Fatal(err)
	}
	r, _ := o.last(t, 0)
	checkTLSFacts(t, r, c, "spiffe://cluster.local/ns/billing/sa/api", "spiffe://cluster.local/ns/orders/sa/gateway")
	if tier, _ := r.Context.Get("tier"); r.SNI != "orders.internal" || r.Scheme != "https" || tier != "gold" {
		t.Errorf("SNI %q, scheme %q, context tier %q; want orders.internal, https, gold", r.SNI, r.Scheme, tier)
	}
}

// tlsHTTP serves s over TLS on loopback, asking its clients for a
// certificate of c's CA, and returns its URL and a client that presents
// c: a proxy that authenticates itself to scopegate with the same
// certificate that it forwards.
func tlsHTTP(t *testing.T, s *envoy.HTTPServer, c peerCert) (string, *http.Client) {
	t.Helper()
	serverPEM, serverKey := c.ca.Issue(t, "scopegate")
	serverCert, err := tls.X509KeyPair(serverPEM, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: c.ca.Pool()}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: c.ca.Pool(), Certificates: []tls.Certificate{c.tls}}}}
	return srv.URL, client
}

func TestHTTPTakesTheCertificateOnlyFromTrustedProxies(t *testing.T) {
	c := newPeerCert(t)
	xfcc := "By=spiffe://cluster.local/ns/edge/sa/envoy;Hash=" + hex.EncodeToString(c.sum[:]) +
		`;Cert="` + string(authz.CertificateFromPEM(c.pem)) + `";Subject="/CN=billing";URI=spiffe://cluster.local/ns/billing/sa/api`
	forged := "By=spiffe://cluster.local/ns/edge/sa/envoy;URI=spiffe://cluster.local/ns/admin/sa/root"
	clientCert := ":" + base64.StdEncoding.EncodeToString(c.der) + ":"
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	elsewhere := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		path    string
		headers map[string]string
		// want is the principal and destination principal read, or
		// "-" for a request refused with 400 bad_request.
		principal, destination string
		cert                   bool
	}{
		{"envoy XFCC from a trusted proxy", loopback, envoy.EnvoyPathPrefix + "/healthz",
			map[string]string{"X-Forwarded-Client-Cert": xfcc, "X-Forwarded-Proto": "https"},
			"spiffe://cluster.local/ns/billing/sa/api", "spiffe://cluster.local/ns/edge/sa/envoy", true},
		{"envoy XFCC after an earlier proxy's element", loopback, envoy.EnvoyPathPrefix + "/healthz",
			map[string]string{"X-Forwarded-Client-Cert": forged + "," + xfcc},
			"spiffe://cluster.local/ns/billing/sa/api", "spiffe://cluster.local/ns/edge/sa/envoy", true},
		{"envoy XFCC from an untrusted peer is ignored", elsewhere, envoy.EnvoyPathPrefix + "/healthz",
			map[string]string{"X-Forwarded-Client-Cert": forged, "X-Forwarded-Proto": "https"}, "", "", false},
		{"no trusted proxies configured", nil, envoy.EnvoyPathPrefix + "/healthz",
			map[string]string{"X-Forwarded-Client-Cert": xfcc}, "", "", false},
		{"envoy XFCC whose Hash is another certificate's", loopback, envoy.EnvoyPathPrefix + "/healthz",
			map[string]string{"X-Forwarded-Client-Cert": `Hash=` + hex.EncodeToString(make([]byte, 32)) + `;Cert="` + string(authz.CertificateFromPEM(c.pem)) + `"`}, "-", "", false},
		{"envoy XFCC that is not well formed", loopback, envoy.EnvoyPathPrefix + "/healthz",
			map[string]string{"X-Forwarded-Client-Cert": `URI="spiffe://td/a`}, "-", "", false},
		{"envoy XFCC whose Cert is not one", loopback, envoy.EnvoyPathPrefix + "/healthz",
			map[string]string{"X-Forwarded-Client-Cert": `Cert=hello;URI=spiffe://td/a`}, "-", "", false},
		{"RFC 9440 Client-Cert from a trusted proxy", loopback, envoy.EnvoyPathPrefix + "/healthz",
			map[string]string{"Client-Cert": clientCert}, "", "", true},
		{"RFC 9440 Client-Cert that is not a byte sequence", loopback, envoy.EnvoyPathPrefix + "/healthz",
			map[string]string{"Client-Cert": base64.StdEncoding.EncodeToString(c.der)}, "-", "", false},
		{"both XFCC and Client-Cert", loopback, envoy.EnvoyPathPrefix + "/healthz",
			map[string]string{"X-Forwarded-Client-Cert": xfcc, "Client-Cert": clientCert}, "-", "", false},
		{"nginx's escaped certificate from a trusted proxy", loopback, envoy.NginxPath,
			map[string]string{"Ssl-Client-Cert": url.PathEscape(string(c.pem)), "X-Original-Method": "GET", "X-Original-Uri": "/healthz"}, "", "", true},
		{"nginx's escaped certificate from an untrusted peer", elsewhere, envoy.NginxPath,
			map[string]string{"Ssl-Client-Cert": url.PathEscape(string(c.pem)), "X-Original-Method": "GET", "X-Original-Uri": "/healthz"}, "", "", false},
		{"XFCC on the nginx path is not nginx's convention", loopback, envoy.NginxPath,
			map[string]string{"X-Forwarded-Client-Cert": xfcc, "X-Original-Method": "GET", "X-Original-Uri": "/healthz"}, "", "", false},
		{"XFCC on the Traefik path is ignored", loopback, envoy.TraefikPath,
			map[string]string{"X-Forwarded-Client-Cert": xfcc, "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/healthz", "X-Forwarded-Host": "h"}, "", "", false},
		{"a scheme that is neither http nor https", loopback, envoy.EnvoyPathPrefix + "/healthz",
			map[string]string{"X-Forwarded-Proto": "gopher"}, "-", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o observed
			base, client := tlsHTTP(t, &envoy.HTTPServer{Authorizer: authorizer(t, nil, authz.Options{}), Observe: o.observe, TrustedProxies: tt.trusted}, c)
			req, err := http.NewRequest(http.MethodGet, base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "api.example.com"
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("no answer over TLS: %v", err)
			}
			resp.Body.Close()
			r, d := o.last(t, 0)
			if tt.principal == "-" {
				if resp.StatusCode != http.StatusBadRequest || d.Reason != authz.ReasonBadRequest {
					t.Fatalf("status %d, reason %s; want 400 bad_request", resp.StatusCode, d.Reason)
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d (%s: %s), want 200 for the public route", resp.StatusCode, d.Reason, d.Description)
			}
			if tt.cert {
				checkTLSFacts(t, r, c, tt.principal, tt.destination)
			} else if r.Principal != "" || r.DestinationPrincipal != "" || r.Certificate != "" || r.Scheme != "" {
				t.Errorf("read principal %q, destination %q, certificate %q, scheme %q; want none", r.Principal, r.DestinationPrincipal, r.Certificate, r.Scheme)
			}
			if want := tt.headers["X-Forwarded-Proto"]; tt.cert && r.Scheme != want {
				t.Errorf("scheme %q, want %q", r.Scheme, want)
			}
		})
	}
}
