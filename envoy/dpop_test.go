package envoy_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// dpopPolicy has a route that takes only DPoP-bound tokens, and one that
// takes any valid token.
const dpopPolicy = `version: 1
routes:
  - name: payments
    match: { path: "/payments/**" }
    require: { binding: dpop }
  - name: any
    match: { path: "/**" }
`

func dpopAuthorizer(t *testing.T, idp *testutil.IdP) *authz.Authorizer {
	t.Helper()
	pol, err := policy.Parse("policy.yaml", []byte(dpopPolicy))
	if err != nil {
		t.Fatal(err)
	}
	v, err := authz.NewDPoPVerifier(authz.DPoP{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return authz.New(pol, jwtVerifierFor(t, idp), authz.Options{DPoP: v})
}

// dpopAnswer is what a listener answered to a check.
type dpopAnswer struct {
	status      int
	reason, www string
}

func (a dpopAnswer) want(t *testing.T, reason authz.Reason) {
	t.Helper()
	if reason == authz.ReasonAllowed {
		if a.status != http.StatusOK {
			t.Fatalf("status %d, reason %s, www-authenticate %q; want an allow", a.status, a.reason, a.www)
		}
		return
	}
	if a.status != http.StatusUnauthorized || a.reason != string(reason) {
		t.Fatalf("status %d, reason %s; want 401 %s", a.status, a.reason, reason)
	}
	if !strings.HasPrefix(a.www, "DPoP ") || !strings.Contains(a.www, `algs="ES256 EdDSA RS256 PS256"`) {
		t.Errorf("www-authenticate %q is not a DPoP challenge with the algs", a.www)
	}
}

func checkGRPC(t *testing.T, client authv3.AuthorizationClient, req *authv3.CheckRequest) dpopAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := client.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	a := dpopAnswer{status: http.StatusOK, reason: resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()}
	if d := resp.GetDeniedResponse(); d != nil {
		a.status = int(d.GetStatus().GetCode())
		for _, hv := range d.GetHeaders() {
			if hv.GetHeader().GetKey() == "www-authenticate" {
				a.www = hv.GetHeader().GetValue()
			}
		}
	}
	return a
}

// TestGRPCDPoP sends DPoP-bound tokens with real proofs, signed by P-256
// and Ed25519 keys, through the gRPC listener.
func TestGRPCDPoP(t *testing.T) {
	idp := testutil.NewIdP(t)
	client := serve(t, dpopAuthorizer(t, idp))
	const htu = "http://api.example.com/payments/1"
	send := func(t *testing.T, path, authorization string, proofs ...string) dpopAnswer {
		h := map[string]string{"authorization": authorization}
		if len(proofs) > 0 {
			h["dpop"] = strings.Join(proofs, ",")
		}
		return checkGRPC(t, client, envoy.CheckRequest("GET", "api.example.com", path, h))
	}
	for _, alg := range []string{"ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			key, other := testutil.NewDPoPKey(t, alg), testutil.NewDPoPKey(t, alg)
			tok := idp.Token(t, testutil.Confirmation(map[string]any{"jkt": key.JKT}))
			now := time.Now()
			t.Run("valid proof on a route requiring dpop", func(t *testing.T) {
				send(t, "/payments/1", "DPoP "+tok, key.Proof(t, "GET", htu, tok, now, nil)).want(t, authz.ReasonAllowed)
			})
			t.Run("scheme is case-insensitive", func(t *testing.T) {
				send(t, "/payments/1", "dpop "+tok, key.Proof(t, "GET", htu, tok, now, nil)).want(t, authz.ReasonAllowed)
			})
			t.Run("bound token as Bearer", func(t *testing.T) {
				send(t, "/payments/1", "Bearer "+tok, key.Proof(t, "GET", htu, tok, now, nil)).want(t, authz.ReasonDPoPRequired)
			})
			t.Run("replayed proof", func(t *testing.T) {
				proof := key.Proof(t, "GET", htu, tok, now, nil)
				send(t, "/payments/1", "DPoP "+tok, proof).want(t, authz.ReasonAllowed)
				a := send(t, "/payments/1", "DPoP "+tok, proof)
				a.want(t, authz.ReasonDPoPProofInvalid)
				if !strings.Contains(a.www, `error="invalid_dpop_proof"`) {
					t.Errorf("www-authenticate %q lacks error=\"invalid_dpop_proof\"", a.www)
				}
			})
			t.Run("proof for another path", func(t *testing.T) {
				send(t, "/payments/1", "DPoP "+tok, key.Proof(t, "GET", "http://api.example.com/payments/2", tok, now, nil)).
					want(t, authz.ReasonDPoPProofInvalid)
			})
			t.Run("proof for another host", func(t *testing.T) {
				send(t, "/payments/1", "DPoP "+tok, key.Proof(t, "GET", "http://evil.example.com/payments/1", tok, now, nil)).
					want(t, authz.ReasonDPoPProofInvalid)
			})
			t.Run("proof by another key than cnf.jkt", func(t *testing.T) {
				send(t, "/payments/1", "DPoP "+tok, other.Proof(t, "GET", htu, tok, now, nil)).want(t, authz.ReasonDPoPProofInvalid)
			})
			t.Run("two DPoP headers", func(t *testing.T) {
				send(t, "/payments/1", "DPoP "+tok, key.Proof(t, "GET", htu, tok, now, nil), key.Proof(t, "GET", htu, tok, now, nil)).
					want(t, authz.ReasonDPoPProofInvalid)
			})
			t.Run("no proof", func(t *testing.T) {
				send(t, "/payments/1", "DPoP "+tok).want(t, authz.ReasonDPoPProofInvalid)
			})
			t.Run("unbound token with the DPoP scheme", func(t *testing.T) {
				plain := idp.Token(t)
				send(t, "/x", "DPoP "+plain, key.Proof(t, "GET", "http://api.example.com/x", plain, now, nil)).
					want(t, authz.ReasonDPoPRequired)
			})
			t.Run("plain bearer token on a route requiring dpop", func(t *testing.T) {
				send(t, "/payments/1", "Bearer "+idp.Token(t)).want(t, authz.ReasonBindingRequired)
			})
		})
	}
}

// TestHTTPDPoP sends a DPoP request through the HTTP listener: the proof's
// htu needs the request's scheme, which only a trusted proxy's
// X-Forwarded-Proto gives.
func TestHTTPDPoP(t *testing.T) {
	idp := testutil.NewIdP(t)
	key := testutil.NewDPoPKey(t, "ES256")
	tok := idp.Token(t, testutil.Confirmation(map[string]any{"jkt": key.JKT}))
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tt := range []struct {
		name    string
		trusted []netip.Prefix
		reason  authz.Reason
	}{
		{"X-Forwarded-Proto of a trusted proxy", loopback, authz.ReasonAllowed},
		{"X-Forwarded-Proto of an untrusted peer", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, authz.ReasonDPoPProofInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := serveHTTP(t, &envoy.HTTPServer{Authorizer: dpopAuthorizer(t, idp), TrustedProxies: tt.trusted})
			req, err := http.NewRequest(http.MethodGet, h.url+envoy.EnvoyPathPrefix+"/payments/1", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "api.example.com"
			req.Header.Set("Authorization", "DPoP "+tok)
			req.Header.Set("DPoP", key.Proof(t, "GET", "https://api.example.com/payments/1", tok, time.Now(), nil))
			req.Header.Set("X-Forwarded-Proto", "https")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			resp.Body.Close()
			dpopAnswer{status: resp.StatusCode, reason: resp.Header.Get("X-Scopegate-Reason"), www: resp.Header.Get("Www-Authenticate")}.want(t, tt.reason)
		})
	}
}

// TestDPoPNonce holds both listeners to use_dpop_nonce: a proof without a
// nonce is answered with use_dpop_nonce and a DPoP-Nonce header, and a
// proof carrying that nonce is accepted.
func TestDPoPNonce(t *testing.T) {
	idp := testutil.NewIdP(t)
	pol, err := policy.Parse("policy.yaml", []byte(dpopPolicy))
	if err != nil {
		t.Fatal(err)
	}
	v, err := authz.NewDPoPVerifier(authz.DPoP{UseNonce: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := authz.New(pol, jwtVerifierFor(t, idp), authz.Options{DPoP: v})
	key := testutil.NewDPoPKey(t, "EdDSA")
	tok := idp.Token(t, testutil.Confirmation(map[string]any{"jkt": key.JKT}))
	withNonce := func(nonce string) func(*testutil.DPoPProof) {
		return func(p *testutil.DPoPProof) { p.Claims["nonce"] = nonce }
	}
	t.Run("gRPC", func(t *testing.T) {
		client := serve(t, a)
		const htu = "http://api.example.com/payments/1"
		check := func(proof string) (status int, reason, nonce string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := client.Check(ctx, envoy.CheckRequest("GET", "api.example.com", "/payments/1",
				map[string]string{"authorization": "DPoP " + tok, "dpop": proof}))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			status = http.StatusOK
			if d := resp.GetDeniedResponse(); d != nil {
				status = int(d.GetStatus().GetCode())
				for _, hv := range d.GetHeaders() {
					if hv.GetHeader().GetKey() == "dpop-nonce" {
						nonce = hv.GetHeader().GetValue()
					}
				}
			}
			return status, resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue(), nonce
		}
		status, reason, nonce := check(key.Proof(t, "GET", htu, tok, time.Now(), nil))
		if status != http.StatusUnauthorized || reason != string(authz.ReasonDPoPNonceRequired) || nonce == "" {
			t.Fatalf("a proof without a nonce: status %d, reason %s, dpop-nonce %q; want 401 %s with a nonce", status, reason, nonce, authz.ReasonDPoPNonceRequired)
		}
		if status, reason, _ := check(key.Proof(t, "GET", htu, tok, time.Now(), withNonce(nonce))); status != http.StatusOK {
			t.Fatalf("a proof with the issued nonce: status %d, reason %s; want an allow", status, reason)
		}
	})
	t.Run("HTTP", func(t *testing.T) {
		h := serveHTTP(t, &envoy.HTTPServer{Authorizer: a,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
		check := func(proof string) *http.Response {
			req, err := http.NewRequest(http.MethodGet, h.url+envoy.EnvoyPathPrefix+"/payments/1", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "api.example.com"
			req.Header.Set("Authorization", "DPoP "+tok)
			req.Header.Set("DPoP", proof)
			req.Header.Set("X-Forwarded-Proto", "https")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			resp.Body.Close()
			return resp
		}
		const htu = "https://api.example.com/payments/1"
		resp := check(key.Proof(t, "GET", htu, tok, time.Now(), nil))
		nonce := resp.Header.Get("DPoP-Nonce")
		if resp.StatusCode != http.StatusUnauthorized || nonce == "" || !strings.Contains(resp.Header.Get("Www-Authenticate"), `error="use_dpop_nonce"`) {
			t.Fatalf("a proof without a nonce: status %d, DPoP-Nonce %q, WWW-Authenticate %q; want 401 use_dpop_nonce with a nonce",
				resp.StatusCode, nonce, resp.Header.Get("Www-Authenticate"))
		}
		if resp := check(key.Proof(t, "GET", htu, tok, time.Now(), withNonce(nonce))); resp.StatusCode != http.StatusOK {
			t.Fatalf("a proof with the issued nonce: status %d, reason %s; want an allow", resp.StatusCode, resp.Header.Get("X-Scopegate-Reason"))
		}
	})
}
