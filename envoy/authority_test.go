package envoy_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// hostPolicy has a route for one host that needs a scope, and a public
// catch-all: a request for the admin host that the catch-all decides is a
// bypass.
const hostPolicy = `
version: 1
default: deny
routes:
  - name: admin
    match: { hosts: [admin.example.com], path: "/**" }
    require: { scopes: { all_of: [admin:write] } }
  - name: public
    match: { path: "/**" }
    public: true
`

// userinfoSecret is a password in a userinfo that no answer may echo.
const userinfoSecret = "pw-s3cr3t-value"

// badAuthorities are spellings of the admin host that RFC 3986 does not
// allow as host [":" port], or that upstreams read in different ways.
// goRefuses marks those that Go's HTTP server refuses in a Host header
// before any handler sees them.
var badAuthorities = []struct {
	authority string
	goRefuses bool
}{
	{"admin.example.com:x", false},
	{"admin.example.com:443.", false},
	{"admin.example.com:443x", false},
	{"admin.example.com: 443", true},
	{"admin.example.com:+443", false},
	{"admin.example.com:-1", false},
	{"admin.example.com:80:80", false},
	{"admin.example.com:", false},
	{"admin.example.com:65536", false},
	{"user:" + userinfoSecret + "@admin.example.com", true},
	{"%61dmin.example.com", false},
	{"admin.example.com,public.example.com", false},
	{"admin.example.com;x", false},
	{"admin..example.com", false},
	{"[admin.example.com]", false},
	{"[::1", false},
	{":443", false},
	{"admin.example.com\tx", true},
	{"admín.example.com", true},
}

func startHostPolicy(t *testing.T, idp *testutil.IdP) *authz.Authorizer {
	t.Helper()
	pol, err := policy.Parse("policy.yaml", []byte(hostPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return authz.New(pol, jwtVerifierFor(t, idp), authz.Options{})
}

// verdict is what the tests of this file look at in an answer.
type verdict struct {
	status       int
	reason, body string
}

// grpcAnswer sends req to client and returns the HTTP status, reason and
// body of the answer.
func grpcAnswer(t *testing.T, client authv3.AuthorizationClient, req *authv3.CheckRequest) verdict {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := client.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v (scopegate must never answer with a gRPC error)", err)
	}
	reason := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
	if resp.GetOkResponse() != nil {
		return verdict{200, reason, ""}
	}
	d := resp.GetDeniedResponse()
	return verdict{int(d.GetStatus().GetCode()), reason, d.GetBody()}
}

// wantBadRequest fails t unless the answer is 400 bad_request with a body
// that does not echo the authority's password.
func wantBadRequest(t *testing.T, v verdict) {
	t.Helper()
	if v.status != 400 || v.reason != string(authz.ReasonBadRequest) {
		t.Fatalf("got %d %s (body %s), want 400 bad_request and never the catch-all's allow", v.status, v.reason, v.body)
	}
	if strings.Contains(v.body, userinfoSecret) {
		t.Errorf("the deny echoes the authority's userinfo: %s", v.body)
	}
}

func TestBadAuthorityIsRefusedOverGRPC(t *testing.T) {
	idp := testutil.NewIdP(t)
	client := serve(t, startHostPolicy(t, idp))
	for _, tt := range badAuthorities {
		t.Run(tt.authority, func(t *testing.T) {
			// As Envoy sends it: in HttpRequest.host and :authority.
			wantBadRequest(t, grpcAnswer(t, client, envoy.CheckRequest("GET", tt.authority, "/x", nil)))
			// In :authority alone, which the decoder falls back to.
			req := envoy.CheckRequest("GET", "", "/x", nil)
			req.Attributes.Request.Http.Headers[":authority"] = tt.authority
			wantBadRequest(t, grpcAnswer(t, client, req))
		})
	}
}

func TestEverySpellingOfTheHostReachesItsRouteOverGRPC(t *testing.T) {
	idp := testutil.NewIdP(t)
	client := serve(t, startHostPolicy(t, idp))
	admin := bearer(idp.Token(t, testutil.Scopes("admin:write")))
	for _, host := range []string{"admin.example.com", "ADMIN.Example.com", "admin.example.com.", "admin.example.com:443", "Admin.example.com.:8443"} {
		t.Run(host, func(t *testing.T) {
			if v := grpcAnswer(t, client, envoy.CheckRequest("GET", host, "/x", nil)); v.status != 401 || v.reason != string(authz.ReasonTokenMissing) {
				t.Fatalf("without a token: got %+v, want the admin route's 401 token_missing", v)
			}
			if v := grpcAnswer(t, client, envoy.CheckRequest("GET", host, "/x", admin)); v.status != 200 || v.reason != string(authz.ReasonAllowed) {
				t.Fatalf("with the scope: got %+v, want 200 allowed", v)
			}
		})
	}
	// Hosts no route lists, IPv6 literals included, go to the catch-all.
	for _, host := range []string{"other.example.com", "[::1]:8443", "10.0.0.1"} {
		if v := grpcAnswer(t, client, envoy.CheckRequest("GET", host, "/x", nil)); v.status != 200 || v.reason != string(authz.ReasonPublic) {
			t.Errorf("host %s: got %+v, want 200 public", host, v)
		}
	}
}

func TestRequestWithoutHostIsRefusedOverGRPC(t *testing.T) {
	idp := testutil.NewIdP(t)
	client := serve(t, startHostPolicy(t, idp))
	v := grpcAnswer(t, client, envoy.CheckRequest("GET", "", "/x", nil))
	wantBadRequest(t, v)
	if !strings.Contains(v.body, "no host") {
		t.Errorf("body %s does not say the host is missing", v.body)
	}
}

// rawHTTP sends request as written to addr and returns the answer's
// status, X-Scopegate-Reason and body. Go's HTTP client refuses to send
// some of the Host headers under test, so the request goes out raw.
func rawHTTP(t *testing.T, addr, request string) verdict {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", request, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return verdict{resp.StatusCode, resp.Header.Get("X-Scopegate-Reason"), string(b)}
}

func startHostPolicyHTTP(t *testing.T, idp *testutil.IdP) string {
	t.Helper()
	srv := httptest.NewServer(&envoy.HTTPServer{Authorizer: startHostPolicy(t, idp)})
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestHTTPBadAuthorityIsRefusedForEveryProxy(t *testing.T) {
	idp := testutil.NewIdP(t)
	addr := startHostPolicyHTTP(t, idp)
	proxies := []struct {
		name    string
		request func(authority string) string
		viaHost bool // the authority goes in the Host header
	}{
		{"envoy http_service", func(a string) string {
			return "GET " + envoy.EnvoyPathPrefix + "/x HTTP/1.1\r\nHost: " + a + "\r\nConnection: close\r\n\r\n"
		}, true},
		{"nginx auth_request", func(a string) string {
			return "GET " + envoy.NginxPath + " HTTP/1.1\r\nHost: " + a + "\r\nX-Original-Method: GET\r\nX-Original-URI: /x\r\nConnection: close\r\n\r\n"
		}, true},
		{"traefik forwardAuth", func(a string) string {
			return "GET " + envoy.TraefikPath + " HTTP/1.1\r\nHost: scopegate\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Host: " + a +
				"\r\nX-Forwarded-Uri: /x\r\nConnection: close\r\n\r\n"
		}, false},
	}
	for _, p := range proxies {
		t.Run(p.name, func(t *testing.T) {
			for _, tt := range badAuthorities {
				t.Run(tt.authority, func(t *testing.T) {
					v := rawHTTP(t, addr, p.request(tt.authority))
					if p.viaHost && tt.goRefuses {
						// Go's server answers before scopegate decides.
						if v.status != 400 || v.reason != "" {
							t.Fatalf("got %+v, want Go's own 400", v)
						}
						return
					}
					wantBadRequest(t, v)
				})
			}
			if v := rawHTTP(t, addr, p.request("ADMIN.example.com.:443")); v.status != 401 || v.reason != string(authz.ReasonTokenMissing) {
				t.Errorf("admin host with a port and a trailing dot: got %+v, want the admin route's 401", v)
			}
		})
	}
}

// TestHTTPRequestWithoutHostIsRefused pins the decisions on a request that
// does not say which host it was for: Traefik always sends
// X-Forwarded-Host, and an HTTP/1.0 request may come without a Host.
func TestHTTPRequestWithoutHostIsRefused(t *testing.T) {
	idp := testutil.NewIdP(t)
	addr := startHostPolicyHTTP(t, idp)
	const traefik = "GET " + envoy.TraefikPath + " HTTP/1.1\r\nHost: scopegate\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /x\r\nConnection: close\r\n"
	tests := []struct {
		name, request, says string
	}{
		{"traefik without X-Forwarded-Host", traefik + "\r\n", "X-Forwarded-Host"},
		{"traefik with an empty X-Forwarded-Host", traefik + "X-Forwarded-Host: \r\n\r\n", "X-Forwarded-Host"},
		{"traefik with X-Forwarded-Host twice", traefik + "X-Forwarded-Host: public.example.com\r\nX-Forwarded-Host: admin.example.com\r\n\r\n", "more than once"},
		{"envoy http_service over HTTP/1.0 without Host", "GET " + envoy.EnvoyPathPrefix + "/x HTTP/1.0\r\n\r\n", "no host"},
		{"nginx over HTTP/1.0 without Host", "GET " + envoy.NginxPath + " HTTP/1.0\r\nX-Original-Method: GET\r\nX-Original-URI: /x\r\n\r\n", "no host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := rawHTTP(t, addr, tt.request)
			wantBadRequest(t, v)
			if !strings.Contains(v.body, tt.says) {
				t.Errorf("body %s does not say %q", v.body, tt.says)
			}
		})
	}
}

// hashPaths put a raw '#' in the request-target of testPolicy's requests:
// cut there as a fragment, each would be a public path, while an upstream
// that takes '#' for a path byte serves /admin.
var hashPaths = []string{"/public#/../admin/x", "/public/x#/../../admin/users", "/public/x?a=1#/../../admin"}

func TestRawHashInThePathIsRefusedOverGRPC(t *testing.T) {
	h := start(t, authz.Options{})
	for _, path := range hashPaths {
		t.Run(path, func(t *testing.T) {
			if a := h.check(t, "GET", "api.example.com", path, nil); a.status != 400 || a.reason != string(authz.ReasonBadPath) {
				t.Fatalf("got %d %s (body %s), want 400 bad_path", a.status, a.reason, a.body)
			}
		})
	}
	if a := h.check(t, "GET", "api.example.com", "/public/a%23b", nil); a.status != 200 || a.reason != string(authz.ReasonPublic) {
		t.Errorf("encoded '#': got %d %s, want 200 public", a.status, a.reason)
	}
}

func TestHTTPRawHashInThePathIsRefusedForEveryProxy(t *testing.T) {
	idp := testutil.NewIdP(t)
	h := startHTTP(t, authz.Options{}, jwtVerifierFor(t, idp))
	addr := strings.TrimPrefix(h.url, "http://")
	for _, path := range hashPaths {
		t.Run(path, func(t *testing.T) {
			// Raw, so that the '#' reaches the request line as sent.
			if v := rawHTTP(t, addr, "GET "+envoy.EnvoyPathPrefix+path+" HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n"); v.status != 400 || v.reason != string(authz.ReasonBadPath) {
				t.Fatalf("envoy http_service: got %+v, want 400 bad_path", v)
			}
			for _, p := range conventions[1:] {
				if a := h.do(t, p.request(h.url, "GET", "api.example.com", path), nil); a.status != 400 || a.reason != string(authz.ReasonBadPath) {
					t.Fatalf("%s: got %d %s (body %s), want 400 bad_path", p.name, a.status, a.reason, a.body)
				}
			}
		})
	}
}
