package envoy_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/telemetry"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// echoRig is both listeners of scopegate on loopback, wired as serve
// wires them: each check is counted in real metrics and written to a
// real buffered audit log, and the servers log to a real logger.
type echoRig struct {
	grpc     authv3.AuthorizationClient
	http     string // the HTTP listener's base URL
	metrics  string // the metrics endpoint's URL
	audit    *telemetry.Audit
	auditOut testutil.SyncBuffer
	log      testutil.SyncBuffer
	checks   atomic.Int64
}

func startEcho(t *testing.T, v authz.Verifier) *echoRig {
	t.Helper()
	pol, err := policy.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	a := authz.New(pol, v, authz.Options{})
	rig := &echoRig{}
	logger := slog.New(slog.NewTextHandler(&rig.log, nil))
	m := telemetry.NewMetrics()
	rig.audit = telemetry.NewBufferedAudit(&rig.auditOut, 1, time.Millisecond, logger)
	m.CollectAuditDropped(rig.audit.Dropped)
	t.Cleanup(func() { rig.audit.Close() })
	observe := func(r *authz.Request, d *authz.Decision, took time.Duration) {
		m.ObserveCheck(d, took)
		rig.audit.Record(r, d, took)
		rig.checks.Add(1)
	}

	rig.grpc = serveServer(t, &envoy.Server{Authorizer: a, Observe: observe, Logger: logger})

	web := httptest.NewServer(&envoy.HTTPServer{Authorizer: a, Observe: observe, Logger: logger})
	t.Cleanup(web.Close)
	rig.http = web.URL
	admin := httptest.NewServer(m.Handler())
	t.Cleanup(admin.Close)
	rig.metrics = admin.URL
	return rig
}

// checkGRPC sends a check over gRPC and returns its whole answer, as text
// and as it was on the wire.
func (rig *echoRig) checkGRPC(t *testing.T, host, path string, headers map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := rig.grpc.Check(ctx, envoy.CheckRequest("GET", host, path, headers))
	if err != nil {
		t.Fatalf("Check %s: %v", path, err)
	}
	wire, err := proto.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	return prototext.Format(resp) + "\n" + string(wire)
}

// checkHTTP sends r and returns its whole answer: status, headers and
// body.
func checkHTTP(t *testing.T, r *http.Request, headers map[string]string) string {
	t.Helper()
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(r.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(resp.Status + "\n")
	resp.Header.Write(&b)
	b.Write(body)
	return b.String()
}

// leak returns a piece of token, 16 bytes long, that s holds, or "".
// Looking for pieces, not for the whole token, also catches a token cut
// short, as a clipped quote of a path would show it.
func leak(s, token string) string {
	const piece = 16
	for i := 0; i+piece <= len(token); i++ {
		if strings.Contains(s, token[i:i+piece]) {
			return token[i : i+piece]
		}
	}
	return ""
}

func TestNoTokenIsEchoedLoggedOrCounted(t *testing.T) {
	idp := testutil.NewIdP(t)
	rig := startEcho(t, jwtVerifierFor(t, idp))
	tok := idp.Token(t, testutil.Scopes("orders:read"))
	other := idp.Token(t, testutil.Scopes("orders:read"), testutil.Client("other-svc"))
	opaque := "ory_at_" + strings.Repeat("Zq7", 15)
	secrets := map[string]string{"the token": tok, "the other token": other, "the opaque token": opaque,
		"the token's signature": tok[strings.LastIndexByte(tok, '.')+1:]}

	tests := []struct {
		name, host, path string
		headers          map[string]string
	}{
		{"token in access_token of a bad path", "api.example.com", "/a;b?access_token=" + tok, bearer(tok)},
		{"token in another parameter of a bad path", "api.example.com", "/a;b?x=1&id_token=" + tok, bearer(other)},
		{"token in the fragment of a bad path", "api.example.com", "/a;b#access_token=" + tok, nil},
		{"token in the query of a good path", "api.example.com", "/orders/1?access_token=" + tok, bearer(tok)},
		{"token in a bad path", "api.example.com", "/files;x/" + tok, bearer(tok)},
		{"token right after the bad byte", "api.example.com", "/;" + tok, nil},
		{"token in a good path, the request's own", "api.example.com", "/orders/" + tok, bearer(tok)},
		{"token in a good path, another's", "api.example.com", "/orders/" + other + "/items", bearer(tok)},
		{"token in a public path, no bearer", "api.example.com", "/public/" + tok, nil},
		{"opaque bearer in the path", "api.example.com", "/orders/" + opaque, bearer(opaque)},
		{"opaque bearer in the quoted part of a bad path", "api.example.com", "/x;/" + opaque + "/y", bearer(opaque)},
		{"token in the request id", "api.example.com", "/orders/1", map[string]string{"authorization": "Bearer " + tok, "x-request-id": tok}},
		{"token in the host", tok + ".example.com", "/orders/1", bearer(other)},
	}
	var answers []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{"gRPC": rig.checkGRPC(t, tt.host, tt.path, tt.headers)}
			for _, p := range conventions {
				got[p.name] = checkHTTP(t, p.request(rig.http, "GET", tt.host, tt.path), tt.headers)
			}
			for listener, answer := range got {
				for what, secret := range secrets {
					if l := leak(answer, secret); l != "" {
						t.Errorf("the %s answer holds %q of %s:\n%s", listener, l, what, answer)
					}
				}
				if strings.Contains(answer, "access_token=") || strings.Contains(answer, "&id_token=") {
					t.Errorf("the %s answer quotes the query or fragment:\n%s", listener, answer)
				}
				answers = append(answers, answer)
			}
		})
	}

	if err := rig.audit.Close(); err != nil {
		t.Fatal(err)
	}
	scrape, err := http.NewRequest("GET", rig.metrics, nil)
	if err != nil {
		t.Fatal(err)
	}
	metrics := checkHTTP(t, scrape, nil)
	for where, out := range map[string]string{"the audit log": rig.auditOut.String(), "the process log": rig.log.String(), "the metrics": metrics} {
		for what, secret := range secrets {
			if l := leak(out, secret); l != "" {
				t.Errorf("%s holds %q of %s:\n%s", where, l, what, out)
			}
		}
	}

	// What was looked through is what the checks wrote.
	audit := rig.auditOut.String()
	if n, want := strings.Count(audit, "\n"), int(rig.checks.Load()); n != want || want != 4*len(tests) {
		t.Fatalf("%d audit lines for %d checks, want %d", n, want, 4*len(tests))
	}
	for _, s := range []string{`"path":"/orders/[token]"`, `"path":"/orders/[token]/items"`, `"path":"/public/[token]"`, `"request_id":"[token]"`, `"host":"[token]`} {
		if !strings.Contains(audit, s) {
			t.Errorf("the audit log has no %s:\n%s", s, audit)
		}
	}
	for _, s := range []string{`bad request path \"/a;b...\"`, `bad request path \"/files;x...\"`, `bad request path \"/x;/[token]/y\"`} {
		if !strings.Contains(strings.Join(answers, "\n"), s) {
			t.Errorf("no answer quotes the bad path as %s", s)
		}
	}
	if !strings.Contains(metrics, "scopegate_checks_total") {
		t.Errorf("the metrics count no checks:\n%s", metrics)
	}
}
