package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/config"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

const opsPolicy = `version: 1
default: deny
routes:
  - name: health
    match: { path: /healthz }
    public: true
  - name: orders-read
    match: { methods: [GET], path: "/orders/**" }
    require: { scopes: { all_of: [orders:read] } }
  - name: beta
    match: { path: "/beta/**" }
    require: { scopes: { all_of: [beta:use] } }
    mode: dry_run
`

// server is a `scopegate serve` process.
type server struct {
	cmd              *exec.Cmd
	stdout, stderr   *syncBuffer
	grpc, admin, web string // listener addresses; web is listen.http's
}

// writeFiles writes files (name → content) into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// startServer runs bin with the config file and waits until it is ready.
func startServer(t *testing.T, bin, config string) *server {
	t.Helper()
	return startServerWithStdout(t, bin, config, nil)
}

// startServerWithStdout is startServer with stdout, if not nil, as the
// process's stdout instead of s.stdout.
func startServerWithStdout(t *testing.T, bin, config string, stdout io.Writer) *server {
	t.Helper()
	s := &server{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	s.cmd = exec.Command(bin, "serve", "--config", config)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if stdout != nil {
		s.cmd.Stdout = stdout
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	serving := regexp.MustCompile(`msg="scopegate serving" grpc=(\S+) admin=(\S+)`)
	web := regexp.MustCompile(`msg="serving ext_authz over HTTP" http=(\S+)`)
	for deadline := time.Now().Add(testutil.WaitTimeout); ; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start:\n%s", s.stderr.String())
		}
		m := serving.FindStringSubmatch(s.stderr.String())
		if m == nil {
			continue
		}
		s.grpc, s.admin = m[1], m[2]
		if m := web.FindStringSubmatch(s.stderr.String()); m != nil {
			s.web = m[1]
		}
		if resp, err := http.Get("http://" + s.admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
	}
}

// authClient returns an ext_authz client of addr over creds.
func authClient(t *testing.T, addr string, creds credentials.TransportCredentials) authv3.AuthorizationClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// checkStatus sends one check and returns the HTTP status of its answer.
func checkStatus(t *testing.T, c authv3.AuthorizationClient, method, path string, headers map[string]string) int {
	t.Helper()
	status, err := sendCheck(c, method, path, headers)
	if err != nil {
		t.Fatalf("Check %s %s: %v", method, path, err)
	}
	return status
}

func sendCheck(c authv3.AuthorizationClient, method, path string, headers map[string]string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, envoy.CheckRequest(method, "api.example.com", path, headers))
	if err != nil {
		return 0, err
	}
	if resp.GetOkResponse() != nil {
		return 200, nil
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode()), nil
}

// scrapeMetrics returns the admin listener's /metrics, as text and parsed.
func scrapeMetrics(t *testing.T, admin string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return string(body), mfs
}

// sample returns the value of the sample of family name with exactly the
// non-empty labels given as name=value, or -1 when there is none.
func sample(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	want := strings.Join(labels, ",")
	for _, m := range mfs[name].GetMetric() {
		var have []string
		for _, l := range m.GetLabel() {
			if l.GetValue() != "" {
				have = append(have, l.GetName()+"="+l.GetValue())
			}
		}
		if strings.Join(have, ",") != want {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestServeCountsAndAuditsRealChecks(t *testing.T) {
	bin := buildBinary(t)
	idp := testutil.NewIdP(t)
	insp := testutil.NewIntrospectionServer(t)
	opaque := "ory_at_" + strings.Repeat("q", 40)
	insp.Register(opaque, map[string]any{"active": true, "iss": idp.Issuer(), "aud": testutil.DefaultAudience, "client_id": "opaque-svc", "scope": "orders:read", "exp": time.Now().Add(time.Hour).Unix()})
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"policy.yaml": opsPolicy,
		"secret":      insp.ClientSecret,
		"config.yaml": fmt.Sprintf(`listen: { grpc: 127.0.0.1:0, admin: 127.0.0.1:0, http: 127.0.0.1:0 }
issuers:
  - issuer: %s
    jwks_uri: %s
    audiences: [%s]
introspection:
  endpoint: %s
  audiences: [%[3]s]
  client_id: %[5]s
  client_secret_file: secret
policy: { file: policy.yaml }
`, idp.Issuer(), idp.JWKSURL(), testutil.DefaultAudience, insp.URL, insp.ClientID),
	})
	pol, err := policy.Load(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, bin, filepath.Join(dir, "config.yaml"))
	c := authClient(t, s.grpc, insecure.NewCredentials())

	read := idp.Token(t, testutil.Scopes("orders:read"))
	none := idp.Token(t)
	tokens := []string{read, none, opaque}
	if got := checkStatus(t, c, "GET", "/orders/1", map[string]string{"authorization": "Bearer " + read, "x-request-id": "req-allow"}); got != 200 {
		t.Fatalf("allowed check: %d", got)
	}
	if got := checkStatus(t, c, "GET", "/orders/1", map[string]string{"authorization": "Bearer " + none}); got != 403 {
		t.Fatalf("check without the scope: %d", got)
	}
	if got := checkStatus(t, c, "GET", "/beta/1", map[string]string{"authorization": "Bearer " + read}); got != 200 {
		t.Fatalf("dry-run check: %d", got)
	}
	for range 2 {
		if got := checkStatus(t, c, "GET", "/orders/2", map[string]string{"authorization": "Bearer " + opaque}); got != 200 {
			t.Fatalf("opaque token: %d", got)
		}
	}
	for _, r := range []struct {
		path, token string
		want        int
	}{{"/orders/3", read, 200}, {"/orders/3", "", 401}} {
		req, _ := http.NewRequest("GET", "http://"+s.web+envoy.EnvoyPathPrefix+r.path, nil)
		req.Host = "api.example.com"
		if r.token != "" {
			req.Header.Set("Authorization", "Bearer "+r.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != r.want {
			t.Fatalf("HTTP check of %s: %d, want %d", r.path, resp.StatusCode, r.want)
		}
	}

	text, mfs := scrapeMetrics(t, s.admin)
	tests := []struct {
		name   string
		labels []string
		want   float64 // -2: any positive value
	}{
		{"scopegate_checks_total", []string{"decision=allow", "reason=allowed", "route=orders-read"}, 4},
		{"scopegate_checks_total", []string{"decision=deny", "reason=insufficient_scope", "route=orders-read"}, 1},
		{"scopegate_checks_total", []string{"decision=deny", "reason=token_missing", "route=orders-read"}, 1},
		{"scopegate_checks_total", []string{"decision=would_deny", "reason=insufficient_scope", "route=beta"}, 1},
		{"scopegate_check_duration_seconds", []string{"decision=allow"}, 4},
		{"scopegate_check_duration_seconds", []string{"decision=deny"}, 2},
		{"scopegate_jwks_fetches_total", []string{"issuer=" + idp.Issuer()}, -2},
		{"scopegate_jwks_fetch_failures_total", []string{"issuer=" + idp.Issuer()}, 0},
		{"scopegate_jwks_keys", []string{"issuer=" + idp.Issuer()}, -2},
		{"scopegate_introspection_requests_total", nil, 1},
		{"scopegate_introspection_request_duration_seconds", nil, 1},
		{"scopegate_introspection_cache_lookups_total", []string{"result=hit", "tier=memory"}, 1},
		{"scopegate_introspection_cache_lookups_total", []string{"result=miss", "tier=memory"}, 1},
		{"scopegate_policy_info", []string{"version=" + pol.Version}, 1},
		{"scopegate_policy_reloads_total", []string{"result=ok"}, 0},
		{"go_goroutines", nil, -2},
	}
	for _, tt := range tests {
		got := sample(mfs, tt.name, tt.labels...)
		if tt.want == -2 && got <= 0 || tt.want != -2 && got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}

	// The audit log writes its lines within auditFlushAfter.
	var audit []map[string]any
	for deadline := time.Now().Add(testutil.WaitTimeout); len(audit) < 7 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		audit = nil
		sc := bufio.NewScanner(strings.NewReader(s.stdout.String()))
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("audit line is not JSON: %v: %s", err, sc.Text())
			}
			audit = append(audit, line)
		}
	}
	if len(audit) != 7 {
		t.Fatalf("%d audit lines for 7 checks:\n%s", len(audit), s.stdout.String())
	}
	first := audit[0]
	sum := sha256.Sum256([]byte(read))
	for k, want := range map[string]any{
		"decision": "allow", "status": 200.0, "reason": "allowed", "route": "orders-read",
		"policy_version": pol.Version, "client_id": testutil.DefaultClientID, "subject": testutil.DefaultClientID,
		"issuer": idp.Issuer(), "method": "GET", "host": "api.example.com", "path": "/orders/1",
		"request_id": "req-allow", "source": "127.0.0.1:50000", "token_sha256": hex.EncodeToString(sum[:8]),
	} {
		if first[k] != want {
			t.Errorf("audit %s = %v, want %v", k, first[k], want)
		}
	}
	if d := audit[1]; d["decision"] != "deny" || fmt.Sprint(d["required_scopes"]) != "[orders:read]" {
		t.Errorf("deny line: %v", d)
	}
	if d := audit[2]; d["decision"] != "would_deny" || d["status"] != 403.0 {
		t.Errorf("dry-run line: %v", d)
	}

	// A policy reload is counted and changes the version.
	writeFiles(t, dir, map[string]string{"policy.yaml": opsPolicy + "  - name: added\n    match: { path: /added }\n    public: true\n"})
	next, err := policy.Load(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(testutil.WaitTimeout); ; time.Sleep(20 * time.Millisecond) {
		_, mfs := scrapeMetrics(t, s.admin)
		if sample(mfs, "scopegate_policy_reloads_total", "result=ok") == 1 && sample(mfs, "scopegate_policy_info", "version="+next.Version) == 1 &&
			sample(mfs, "scopegate_policy_info", "version="+pol.Version) == -1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload in the metrics:\n%s", s.stderr.String())
		}
	}

	for _, tok := range tokens {
		for where, out := range map[string]string{"the audit log": s.stdout.String(), "the logs": s.stderr.String(), "the metrics": text} {
			if strings.Contains(out, tok) {
				t.Errorf("a token appears in %s", where)
			}
		}
	}
}

func TestSIGTERMLetsChecksInFlightFinish(t *testing.T) {
	bin := buildBinary(t)
	insp := testutil.NewIntrospectionServer(t)
	const inFlight = 8
	var tokens []string
	for i := range inFlight {
		tok := fmt.Sprintf("opaque-%d-%s", i, strings.Repeat("x", 20))
		insp.Register(tok, map[string]any{"active": true, "client_id": "svc", "scope": "orders:read", "exp": time.Now().Add(time.Hour).Unix()})
		tokens = append(tokens, tok)
	}
	// Long enough that SIGTERM surely comes while every check waits.
	insp.SetDelay(2 * time.Second)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"policy.yaml": opsPolicy,
		"secret":      insp.ClientSecret,
		"config.yaml": fmt.Sprintf(`listen: { grpc: 127.0.0.1:0, admin: 127.0.0.1:0 }
introspection:
  endpoint: %s
  client_id: %s
  client_secret_file: secret
  timeout: 10s
policy: { file: policy.yaml }
audit: { enabled: false }
`, insp.URL, insp.ClientID),
	})
	s := startServer(t, bin, filepath.Join(dir, "config.yaml"))
	c := authClient(t, s.grpc, insecure.NewCredentials())

	type result struct {
		status int
		err    error
	}
	results := make(chan result, inFlight)
	for _, tok := range tokens {
		go func() {
			status, err := sendCheck(c, "GET", "/orders/1", map[string]string{"authorization": "Bearer " + tok})
			results <- result{status, err}
		}()
	}
	for deadline := time.Now().Add(testutil.WaitTimeout); insp.Calls() < inFlight; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d checks reached the provider", insp.Calls(), inFlight)
		}
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// While the checks drain: not ready, and no new connections.
	// Within the drain timeout, while the provider holds the checks.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		resp, err := http.Get("http://" + s.admin + "/readyz")
		if err != nil {
			t.Fatalf("the admin listener closed before the checks drained: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after SIGTERM", resp.StatusCode)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		conn, err := net.Dial("tcp", s.grpc)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the gRPC listener still accepts connections after SIGTERM")
		}
	}

	for range inFlight {
		if r := testutil.Recv(t, results, testutil.WaitTimeout, "the checks in flight at SIGTERM"); r.err != nil || r.status != 200 {
			t.Errorf("a check in flight at SIGTERM got %d, %v; want 200", r.status, r.err)
		}
	}
	if err := waitExit(t, s.cmd); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.stderr.String())
	}
}

func TestServeMutualTLS(t *testing.T) {
	bin := buildBinary(t)
	serverCA, clientCA := testutil.NewCA(t, "server CA"), testutil.NewCA(t, "client CA")
	cert, key := serverCA.Issue(t, "scopegate")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"policy.yaml": opsPolicy,
		"tls.crt":     string(cert),
		"tls.key":     string(key),
		"ca.crt":      string(clientCA.PEM),
		"config.yaml": fmt.Sprintf(`listen: { grpc: 127.0.0.1:0, admin: 127.0.0.1:0, http: 127.0.0.1:0 }
issuers:
  - issuer: %[1]s
    jwks_uri: %[1]s/jwks.json
policy: { file: policy.yaml }
tls: { cert_file: tls.crt, key_file: tls.key, client_ca_file: ca.crt }
`, testutil.NewIdP(t).Issuer()),
	})
	s := startServer(t, bin, filepath.Join(dir, "config.yaml"))
	envoyCert, envoyKey := clientCA.Issue(t, "envoy")
	pair, err := tls.X509KeyPair(envoyCert, envoyKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"client without a certificate", nil, false},
		{"client with a certificate of the client CA", []tls.Certificate{pair}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := &tls.Config{RootCAs: serverCA.Pool(), Certificates: tt.certs}
			c := authClient(t, s.grpc, credentials.NewTLS(conf))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := c.Check(ctx, envoy.CheckRequest("GET", "x", "/healthz", nil))
			if (err == nil) != tt.ok {
				t.Errorf("gRPC: err = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !tt.ok && status.Code(err) != codes.Unavailable {
				t.Errorf("gRPC: refused with %v, want Unavailable (no connection)", err)
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
			resp, err := client.Get("https://" + s.web + envoy.EnvoyPathPrefix + "/healthz")
			if err == nil {
				resp.Body.Close()
			}
			if (err == nil && resp.StatusCode == 200) != tt.ok {
				t.Errorf("HTTP: err = %v, want ok %v", err, tt.ok)
			}
		})
	}
	if strings.Contains(s.stderr.String(), "plaintext") {
		t.Errorf("a TLS server warns of plaintext:\n%s", s.stderr.String())
	}
	block, _ := pem.Decode(cert)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	_, mfs := scrapeMetrics(t, s.admin)
	if got, want := sample(mfs, "scopegate_tls_certificate_expiry_timestamp_seconds"), float64(leaf.NotAfter.Unix()); got != want {
		t.Errorf("certificate expiry %v, want the server certificate's, %v", got, want)
	}
}

func TestOpsCloseWritesTheAuditLinesThatWait(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.log")
	o, err := newOps(&config.Config{Audit: config.Audit{Output: file}}, io.Discard, io.Discard, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	o.observe(&authz.Request{Path: "/orders/1"}, &authz.Decision{Status: 401, Reason: authz.ReasonTokenMissing}, 0)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"reason":"token_missing"`) || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("audit log after Close: %q, want the deny's line", b)
	}
}
