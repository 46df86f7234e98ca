package envoy_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// wildcardPolicy guards every host under admin.example.com with a scope,
// and makes every other request public: a host under admin.example.com
// that the catch-all decides is a bypass, since an upstream routing
// *.admin.example.com (an Envoy virtual host, an nginx server_name) serves
// it whatever its length.
const wildcardPolicy = `
version: 1
default: deny
routes:
  - name: admin
    match: { hosts: ["*.admin.example.com"], path: "/**" }
    require: { scopes: { all_of: [admin:write] } }
  - name: public
    match: { path: "/**" }
    public: true
`

// longAdminHosts are hosts under admin.example.com longer than the 253
// bytes of the longest DNS name, in labels of at most 63 bytes.
func longAdminHosts() []string {
	label := strings.Repeat("a", 63)
	long := strings.Repeat(label+".", 4) + "admin.example.com" // 273 bytes
	return []string{long, long + ".", strings.ToUpper(long) + ":443", long + ".:8443"}
}

func startWildcardPolicy(t *testing.T, idp *testutil.IdP) *authz.Authorizer {
	t.Helper()
	pol, err := policy.Parse("policy.yaml", []byte(wildcardPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return authz.New(pol, jwtVerifierFor(t, idp), authz.Options{})
}

// notPublic fails t when the catch-all's public allow decided a request
// for a host under the wildcard route.
func notPublic(t *testing.T, v verdict) {
	t.Helper()
	if v.status == 200 || v.reason == string(authz.ReasonPublic) {
		t.Fatalf("got %d %s: the catch-all decided a host under *.admin.example.com; want the admin route's 401 or 400 bad_request", v.status, v.reason)
	}
}

func TestRedteamLongHostDoesNotSkipAWildcardRouteOverGRPC(t *testing.T) {
	idp := testutil.NewIdP(t)
	client := serve(t, startWildcardPolicy(t, idp))
	if v := grpcAnswer(t, client, envoy.CheckRequest("GET", "x.admin.example.com", "/x", nil)); v.status != 401 {
		t.Fatalf("a short host under the wildcard: got %+v, want the admin route's 401", v)
	}
	for _, host := range longAdminHosts() {
		t.Run(host[len(host)-24:], func(t *testing.T) {
			notPublic(t, grpcAnswer(t, client, envoy.CheckRequest("GET", host, "/x", nil)))
		})
	}
}

func TestRedteamLongHostDoesNotSkipAWildcardRouteOverHTTP(t *testing.T) {
	idp := testutil.NewIdP(t)
	srv := httptest.NewServer(&envoy.HTTPServer{Authorizer: startWildcardPolicy(t, idp)})
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	requests := map[string]func(host string) string{
		"envoy http_service": func(h string) string {
			return "GET " + envoy.EnvoyPathPrefix + "/x HTTP/1.1\r\nHost: " + h + "\r\nConnection: close\r\n\r\n"
		},
		"nginx auth_request": func(h string) string {
			return "GET " + envoy.NginxPath + " HTTP/1.1\r\nHost: " + h + "\r\nX-Original-Method: GET\r\nX-Original-URI: /x\r\nConnection: close\r\n\r\n"
		},
		"traefik forwardAuth": func(h string) string {
			return "GET " + envoy.TraefikPath + " HTTP/1.1\r\nHost: scopegate\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Host: " + h +
				"\r\nX-Forwarded-Uri: /x\r\nConnection: close\r\n\r\n"
		},
	}
	for name, request := range requests {
		t.Run(name, func(t *testing.T) {
			for _, host := range longAdminHosts() {
				notPublic(t, rawHTTP(t, addr, request(host)))
			}
		})
	}
}
