package envoy_test

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// bindingPolicy has a route that takes only tokens bound to the client's
// certificate, and one that takes any valid token.
const bindingPolicy = `version: 1
routes:
  - name: payments
    match: { path: "/payments/**" }
    require: { binding: mtls }
  - name: any
    match: { path: "/**" }
`

// bindingCase is an attack on, or a use of, a certificate-bound token,
// which both listeners are held to.
type bindingCase struct {
	name  string
	path  string
	token string
	// cert is the certificate the proxy forwards, nil for none.
	cert   *peerCert
	reason authz.Reason // ReasonAllowed for an allow
}

func bindingCases(t *testing.T, idp *testutil.IdP, c, other peerCert) []bindingCase {
	bound := idp.Token(t, testutil.Confirmation(map[string]any{"x5t#S256": testutil.CertificateThumbprint(t, c.pem)}))
	return []bindingCase{
		{"bound token with its certificate", "/payments/1", bound, &c, authz.ReasonAllowed},
		{"bound token with another certificate", "/payments/1", bound, &other, authz.ReasonCertificateMismatch},
		{"x5t#S256 of another certificate", "/x", idp.Token(t, testutil.Confirmation(map[string]any{
			"x5t#S256": testutil.CertificateThumbprint(t, other.pem)})), &c, authz.ReasonCertificateMismatch},
		{"bound token without a certificate", "/x", bound, nil, authz.ReasonCertificateMissing},
		{"DPoP-bound token as Bearer", "/x", idp.Token(t, testutil.Confirmation(map[string]any{
			"jkt": testutil.CertificateThumbprint(t, other.pem)})), &c, authz.ReasonDPoPRequired},
		{"unknown confirmation method", "/x", idp.Token(t, testutil.Confirmation(map[string]any{"jku": "https://attacker.example/keys"})), &c, authz.ReasonBindingUnsupported},
		{"cnf of the wrong type", "/x", idp.Token(t, testutil.Claim("cnf", []string{testutil.CertificateThumbprint(t, c.pem)})), &c, authz.ReasonTokenMalformed},
		{"bearer token on a route requiring mtls", "/payments/1", idp.Token(t), &c, authz.ReasonBindingRequired},
		{"bearer token elsewhere", "/x", idp.Token(t), nil, authz.ReasonAllowed},
	}
}

func bindingAuthorizer(t *testing.T, idp *testutil.IdP) *authz.Authorizer {
	t.Helper()
	pol, err := policy.Parse("policy.yaml", []byte(bindingPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return authz.New(pol, jwtVerifierFor(t, idp), authz.Options{})
}

func (tt bindingCase) verify(t *testing.T, status int, reason, wwwAuthenticate string) {
	t.Helper()
	if tt.reason == authz.ReasonAllowed {
		if status != http.StatusOK {
			t.Fatalf("status %d, reason %s; want an allow", status, reason)
		}
		return
	}
	if status != http.StatusUnauthorized || reason != string(tt.reason) {
		t.Fatalf("status %d, reason %s; want 401 %s", status, reason, tt.reason)
	}
	if want := `error="invalid_token"`; !strings.Contains(wwwAuthenticate, want) {
		t.Errorf("www-authenticate %q lacks %s", wwwAuthenticate, want)
	}
}

// TestGRPCCertificateBoundTokens sends the checks that Envoy sends with
// include_peer_certificate: the client certificate, URL-encoded PEM, in
// source.certificate.
func TestGRPCCertificateBoundTokens(t *testing.T) {
	idp := testutil.NewIdP(t)
	c, other := newPeerCert(t), newPeerCert(t)
	client := serve(t, bindingAuthorizer(t, idp))
	for _, tt := range bindingCases(t, idp, c, other) {
		t.Run(tt.name, func(t *testing.T) {
			req := envoy.CheckRequest("GET", "api.example.com", tt.path, bearer(tt.token))
			if tt.cert != nil {
				req.Attributes.Source.Certificate = string(authz.CertificateFromPEM(tt.cert.pem))
				req.Attributes.Source.Principal = "spiffe://cluster.local/ns/billing/sa/api"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := client.Check(ctx, req)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			status := http.StatusOK
			var www string
			if d := resp.GetDeniedResponse(); d != nil {
				status = int(d.GetStatus().GetCode())
				for _, hv := range d.GetHeaders() {
					if hv.GetHeader().GetKey() == "www-authenticate" {
						www = hv.GetHeader().GetValue()
					}
				}
			}
			tt.verify(t, status, resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue(), www)
		})
	}
}

// TestHTTPCertificateBoundTokens presents the client certificate over a
// real TLS connection to a proxy, here the test's client, that forwards it
// in an x-forwarded-client-cert as Envoy's forward_client_cert_details
// does; only a trusted proxy's is read.
func TestHTTPCertificateBoundTokens(t *testing.T) {
	idp := testutil.NewIdP(t)
	c, other := newPeerCert(t), newPeerCert(t)
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	xfcc := func(cert *peerCert) string {
		return "By=spiffe://cluster.local/ns/edge/sa/envoy;Hash=" + hex.EncodeToString(cert.sum[:]) +
			`;Cert="` + url.PathEscape(string(cert.pem)) + `";URI=spiffe://cluster.local/ns/billing/sa/api`
	}
	run := func(t *testing.T, trusted []netip.Prefix, tt bindingCase) {
		base, client := tlsHTTP(t, &envoy.HTTPServer{Authorizer: bindingAuthorizer(t, idp), TrustedProxies: trusted}, c)
		req, err := http.NewRequest(http.MethodGet, base+envoy.EnvoyPathPrefix+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "api.example.com"
		req.Header.Set("Authorization", "Bearer "+tt.token)
		if tt.cert != nil {
			req.Header.Set("X-Forwarded-Client-Cert", xfcc(tt.cert))
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("no answer over TLS: %v", err)
		}
		resp.Body.Close()
		tt.verify(t, resp.StatusCode, resp.Header.Get("X-Scopegate-Reason"), resp.Header.Get("Www-Authenticate"))
	}
	for _, tt := range bindingCases(t, idp, c, other) {
		t.Run(tt.name, func(t *testing.T) { run(t, loopback, tt) })
	}
	// An XFCC from a peer that is not a trusted proxy is not read: the
	// certificate it names is not the peer's.
	t.Run("XFCC from an untrusted peer", func(t *testing.T) {
		bound := idp.Token(t, testutil.Confirmation(map[string]any{"x5t#S256": testutil.CertificateThumbprint(t, c.pem)}))
		run(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			bindingCase{path: "/payments/1", token: bound, cert: &c, reason: authz.ReasonCertificateMissing})
	})
}
