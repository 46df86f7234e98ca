package authz_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// bindingPolicy has a route for any token, and one that takes only tokens
// bound to a client certificate.
const bindingPolicy = `version: 1
routes:
  - name: payments
    match: { path: "/payments/**" }
    require: { binding: mtls }
  - name: dpop-only
    match: { path: "/dpop/**" }
    require: { binding: dpop }
  - name: bound
    match: { path: "/bound/**" }
    require: { binding: any }
  - name: any
    match: { path: "/**" }
`

// boundRequest is a request with token, over a connection whose client
// certificate is cert (none when nil).
func boundRequest(path, token string, cert []byte) *authz.Request {
	r := request("GET", path, token)
	if cert != nil {
		r.Certificate = authz.CertificateFromPEM(cert)
	}
	return r
}

// TestCertificateBoundTokens pins RFC 8705 section 3 for JWTs: a token
// whose cnf holds x5t#S256 is accepted only over a connection with that
// certificate, and a bound token never passes as a bearer token.
func TestCertificateBoundTokens(t *testing.T) {
	idp := testutil.NewIdP(t)
	ca := testutil.NewCA(t, "mesh CA")
	cert, _ := ca.Issue(t, "billing")
	other, _ := ca.Issue(t, "billing")
	a := authz.New(mustPolicy(t, bindingPolicy), jwtVerifier(t, idp, authz.JWTOptions{}), authz.Options{})
	bound := testutil.Confirmation(map[string]any{"x5t#S256": testutil.CertificateThumbprint(t, cert)})

	tests := []struct {
		name   string
		path   string
		token  string
		cert   []byte
		reason authz.Reason // ReasonAllowed for an allow
	}{
		{"bound_token_with_its_certificate", "/x", idp.Token(t, bound), cert, authz.ReasonAllowed},
		{"bound_token_on_an_mtls_route", "/payments/1", idp.Token(t, bound), cert, authz.ReasonAllowed},
		{"bound_token_on_an_any_route", "/bound/1", idp.Token(t, bound), cert, authz.ReasonAllowed},
		{"bound_token_without_a_certificate", "/x", idp.Token(t, bound), nil, authz.ReasonCertificateMissing},
		{"bound_token_with_another_certificate", "/x", idp.Token(t, bound), other, authz.ReasonCertificateMismatch},
		{"bound_token_on_a_dpop_route", "/dpop/1", idp.Token(t, bound), cert, authz.ReasonBindingRequired},
		{"dpop_bound_token_as_bearer", "/x", idp.Token(t, testutil.Confirmation(map[string]any{"jkt": testutil.CertificateThumbprint(t, other)})), cert, authz.ReasonDPoPRequired},
		{"unsupported_method", "/x", idp.Token(t, testutil.Confirmation(map[string]any{"jwk": map[string]any{"kty": "EC", "crv": "P-256"}})), cert, authz.ReasonBindingUnsupported},
		{"unsupported_method_beside_a_certificate", "/x", idp.Token(t, testutil.Confirmation(map[string]any{
			"x5t#S256": testutil.CertificateThumbprint(t, cert), "x5t": "c2hhMQ"})), cert, authz.ReasonBindingUnsupported},
		{"cnf_a_string", "/x", idp.Token(t, testutil.Claim("cnf", testutil.CertificateThumbprint(t, cert))), cert, authz.ReasonTokenMalformed},
		{"x5t_a_number", "/x", idp.Token(t, testutil.Confirmation(map[string]any{"x5t#S256": 1})), cert, authz.ReasonTokenMalformed},
		{"x5t_not_base64url", "/x", idp.Token(t, testutil.Confirmation(map[string]any{"x5t#S256": "not a thumbprint"})), cert, authz.ReasonTokenMalformed},
		{"bearer_token_on_an_mtls_route", "/payments/1", idp.Token(t), cert, authz.ReasonBindingRequired},
		{"bearer_token_on_an_any_route", "/bound/1", idp.Token(t), cert, authz.ReasonBindingRequired},
		{"bearer_token_elsewhere", "/x", idp.Token(t), cert, authz.ReasonAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := a.Check(context.Background(), boundRequest(tt.path, tt.token, tt.cert))
			if tt.reason == authz.ReasonAllowed {
				if !d.Allow || d.Reason != authz.ReasonAllowed {
					t.Fatalf("got %v %s (%s), want an allow", d.Status, d.Reason, d.Description)
				}
				return
			}
			if d.Allow || d.Status != http.StatusUnauthorized || d.Reason != tt.reason || d.Error != "invalid_token" {
				t.Fatalf("got allow=%v %d %s %q (%s), want 401 invalid_token %s", d.Allow, d.Status, d.Reason, d.Error, d.Description, tt.reason)
			}
		})
	}
}

// TestCertificateBoundIntrospectedTokens pins RFC 8705 section 3 for
// introspection answers, read by the same parser as JWTs.
func TestCertificateBoundIntrospectedTokens(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	ca := testutil.NewCA(t, "mesh CA")
	cert, _ := ca.Issue(t, "billing")
	other, _ := ca.Issue(t, "billing")
	answer := func(cnf any) map[string]any {
		m := activeResponse()
		if cnf != nil {
			m["cnf"] = cnf
		}
		return m
	}
	srv.Register("bound", answer(map[string]any{"x5t#S256": testutil.CertificateThumbprint(t, cert)}))
	srv.Register("dpop", answer(map[string]any{"jkt": testutil.CertificateThumbprint(t, cert)}))
	srv.Register("unsupported", answer(map[string]any{"jku": "https://keys.example.com"}))
	srv.Register("wrong-type", answer([]string{testutil.CertificateThumbprint(t, cert)}))
	srv.Register("bad-length", answer(map[string]any{"x5t#S256": "AAAA"}))
	srv.Register("bearer", answer(nil))
	a := authz.New(mustPolicy(t, bindingPolicy), newIntrospector(t, introspectionConfig(t, srv)), authz.Options{})

	tests := []struct {
		name, path, token string
		cert              []byte
		reason            authz.Reason
	}{
		{"bound_with_its_certificate", "/payments/1", "bound", cert, authz.ReasonAllowed},
		{"bound_with_its_certificate_again_from_the_cache", "/payments/1", "bound", cert, authz.ReasonAllowed},
		{"bound_with_another_certificate", "/payments/1", "bound", other, authz.ReasonCertificateMismatch},
		{"bound_without_a_certificate", "/x", "bound", nil, authz.ReasonCertificateMissing},
		{"dpop_bound_as_bearer", "/x", "dpop", cert, authz.ReasonDPoPRequired},
		{"unsupported_method", "/x", "unsupported", cert, authz.ReasonBindingUnsupported},
		{"cnf_an_array", "/x", "wrong-type", cert, authz.ReasonTokenMalformed},
		{"x5t_too_short", "/x", "bad-length", cert, authz.ReasonTokenMalformed},
		{"bearer_on_an_mtls_route", "/payments/1", "bearer", cert, authz.ReasonBindingRequired},
		{"bearer_elsewhere", "/x", "bearer", nil, authz.ReasonAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := a.Check(context.Background(), boundRequest(tt.path, tt.token, tt.cert))
			if tt.reason == authz.ReasonAllowed {
				if !d.Allow {
					t.Fatalf("got %d %s (%s), want an allow", d.Status, d.Reason, d.Description)
				}
				return
			}
			if d.Allow || d.Status != http.StatusUnauthorized || d.Reason != tt.reason {
				t.Fatalf("got allow=%v %d %s (%s), want 401 %s", d.Allow, d.Status, d.Reason, d.Description, tt.reason)
			}
		})
	}
}

// TestRequireBindingPerIssuer pins an issuer's and an introspection's
// require_binding: their tokens must be bound on every route.
func TestRequireBindingPerIssuer(t *testing.T) {
	idp := testutil.NewIdP(t)
	ca := testutil.NewCA(t, "mesh CA")
	cert, _ := ca.Issue(t, "billing")
	p := mustPolicy(t, "version: 1\nroutes:\n  - name: any\n    match: { path: \"/**\" }\n")
	bound := testutil.Confirmation(map[string]any{"x5t#S256": testutil.CertificateThumbprint(t, cert)})
	dpop := testutil.Confirmation(map[string]any{"jkt": testutil.CertificateThumbprint(t, cert)})

	for _, tt := range []struct {
		require policy.Binding
		token   string
		reason  authz.Reason
	}{
		{policy.BindingMTLS, idp.Token(t), authz.ReasonBindingRequired},
		{policy.BindingMTLS, idp.Token(t, dpop), authz.ReasonBindingRequired},
		{policy.BindingMTLS, idp.Token(t, bound), authz.ReasonAllowed},
		{policy.BindingAny, idp.Token(t), authz.ReasonBindingRequired},
		{policy.BindingAny, idp.Token(t, bound), authz.ReasonAllowed},
		{policy.BindingDPoP, idp.Token(t, bound), authz.ReasonBindingRequired},
		{policy.BindingNone, idp.Token(t), authz.ReasonAllowed},
	} {
		v, err := authz.NewJWTVerifier(t.Context(), []authz.Issuer{{Issuer: idp.Issuer(), JWKSURI: idp.JWKSURL(), RequireBinding: tt.require}}, authz.JWTOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.Close)
		d := authz.New(p, v, authz.Options{}).Check(context.Background(), boundRequest("/x", tt.token, cert))
		if d.Reason != tt.reason {
			t.Errorf("require_binding %q: got %d %s (%s), want %s", tt.require, d.Status, d.Reason, d.Description, tt.reason)
		}
	}

	srv := testutil.NewIntrospectionServer(t)
	srv.Register("bearer", activeResponse())
	cfg := introspectionConfig(t, srv)
	cfg.RequireBinding = policy.BindingMTLS
	d := authz.New(p, newIntrospector(t, cfg), authz.Options{}).Check(context.Background(), boundRequest("/x", "bearer", cert))
	if d.Allow || d.Reason != authz.ReasonBindingRequired {
		t.Errorf("introspection with require_binding mtls: got %d %s, want binding_required", d.Status, d.Reason)
	}
}

func TestRequireBindingIsValidated(t *testing.T) {
	is := authz.Issuer{Issuer: "https://idp.example.com", JWKSURI: "https://idp.example.com/jwks", RequireBinding: "x509"}
	errs := is.Validate()
	if len(errs) != 1 || errs[0].Field != "require_binding" {
		t.Errorf("issuer errors %v, want one for require_binding", errs)
	}
	in := authz.Introspection{Endpoint: "https://idp.example.com/introspect", ClientID: "c", ClientSecretEnv: "X", RequireBinding: "mTLS"}
	found := false
	for _, fe := range in.Validate() {
		found = found || fe.Field == "require_binding"
	}
	if !found {
		t.Errorf("introspection errors %v, want one for require_binding", in.Validate())
	}
}
