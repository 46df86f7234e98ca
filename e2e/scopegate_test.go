//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/scopegate/scopegate/envoy"
)

// policy is the policy of every scopegate the suite starts.
const policy = `
version: 1
default: deny
routes:
  - name: orders-read
    match: { methods: [GET], path: "/orders/**" }
    require: { scopes: { all_of: [orders:read] } }
  - name: orders-create
    match: { methods: [POST], path: /orders }
    require:
      scopes: { any_of: [orders:write] }
      clients: [orders-svc]
`

// scopegate is a running scopegate binary and a gRPC client of its
// ext_authz service.
type scopegate struct {
	proc   *process
	admin  string // the admin URL
	http   string // the URL of the HTTP ext_authz listener
	client authv3.AuthorizationClient
}

// startScopegate starts scopegate with the configuration config, to which
// it adds the listeners and the policy, and waits until it is ready: until
// it has fetched the keys of every issuer.
func startScopegate(t *testing.T, config string) *scopegate {
	t.Helper()
	grpcAddr, adminAddr, httpAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	config = "listen: {grpc: " + grpcAddr + ", admin: " + adminAddr + ", http: " + httpAddr + "}\npolicy: {file: policy.yaml}\n" + config
	for name, data := range map[string]string{"config.yaml": config, "policy.yaml": policy} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sg := &scopegate{admin: "http://" + adminAddr, http: "http://" + httpAddr}
	sg.proc = start(t, "scopegate", scopegateBin, nil, "serve", "--config", filepath.Join(dir, "config.yaml"))
	sg.proc.waitReady(t, sg.admin+"/readyz", 15*time.Second)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sg.client = authv3.NewAuthorizationClient(conn)
	return sg
}

// answer is the part of a CheckResponse the tests look at.
type answer struct {
	status  int               // the HTTP status: 200 on allow
	reason  string            // the reason code in the dynamic metadata
	headers map[string]string // set upstream on allow, sent back on deny
}

// check asks scopegate, as Envoy would, whether a request from a client
// holding token may pass.
func (sg *scopegate) check(t *testing.T, method, path, token string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := envoy.CheckRequest(method, "api.example.com", path, map[string]string{"authorization": "Bearer " + token})
	resp, err := sg.client.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v (scopegate must never answer with a gRPC error)", err)
	}
	a := answer{reason: resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue(), headers: map[string]string{}}
	if ok := resp.GetOkResponse(); ok != nil {
		a.status = 200
		for _, hv := range ok.GetHeaders() {
			a.headers[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
		}
	}
	if d := resp.GetDeniedResponse(); d != nil {
		a.status = int(d.GetStatus().GetCode())
		for _, hv := range d.GetHeaders() {
			a.headers[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
		}
	}
	if allowed := codes.Code(resp.GetStatus().GetCode()) == codes.OK; allowed != (a.status == 200) {
		t.Fatalf("gRPC status %v disagrees with HTTP status %d", codes.Code(resp.GetStatus().GetCode()), a.status)
	}
	return a
}

// expect checks that a request with token gets status and reason.
func (sg *scopegate) expect(t *testing.T, method, path, token string, status int, reason string) answer {
	t.Helper()
	a := sg.check(t, method, path, token)
	if a.status != status || a.reason != reason {
		t.Fatalf("%s %s: got %d %s, want %d %s (headers %v)", method, path, a.status, a.reason, status, reason, a.headers)
	}
	return a
}

// checkHTTP asks scopegate's HTTP listener whether a request from a client
// holding token may pass, in the header convention of proxy: "envoy"
// (http_service), "nginx" (auth_request) or "traefik" (forwardAuth). It
// returns the status and the x-scopegate-reason of a deny.
func (sg *scopegate) checkHTTP(t *testing.T, proxy, method, path, token string) (int, string) {
	t.Helper()
	var req *http.Request
	var err error
	switch proxy {
	case "envoy":
		req, err = http.NewRequest(method, sg.http+envoy.EnvoyPathPrefix+path, nil)
	case "nginx":
		req, err = http.NewRequest("GET", sg.http+envoy.NginxPath, nil)
		if err == nil {
			req.Header.Set("X-Original-Method", method)
			req.Header.Set("X-Original-URI", path)
		}
	case "traefik":
		req, err = http.NewRequest("GET", sg.http+envoy.TraefikPath, nil)
		if err == nil {
			req.Header.Set("X-Forwarded-Method", method)
			req.Header.Set("X-Forwarded-Host", "api.example.com")
			req.Header.Set("X-Forwarded-Uri", path)
		}
	default:
		t.Fatalf("no proxy %q", proxy)
	}
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "api.example.com"
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("HTTP check: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Scopegate-Reason")
}
