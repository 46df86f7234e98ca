package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
)

// runBinary runs bin with args and returns its exit code and output.
func runBinary(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("running %s %q: %v", bin, args, err)
	}
	return code, out.String(), errOut.String()
}

// startIssuerServer writes the config file name in dir, trusting a fresh
// test IdP, with opsPolicy and the YAML of extra, and starts bin with it.
func startIssuerServer(t *testing.T, bin, dir, name, extra string) *server {
	t.Helper()
	writeFiles(t, dir, map[string]string{
		"policy.yaml": opsPolicy,
		name: fmt.Sprintf(`listen: { grpc: 127.0.0.1:0, admin: 127.0.0.1:0 }
issuers:
  - issuer: %[1]s
    jwks_uri: %[1]s/jwks.json
policy: { file: policy.yaml }
`, testutil.NewIdP(t).Issuer()) + extra,
	})
	return startServer(t, bin, filepath.Join(dir, name))
}

// TestCheckTLS runs `scopegate check` from the built binary against a real
// `scopegate serve` with tls, and one with mutual TLS, each with real
// certificates.
func TestCheckTLS(t *testing.T) {
	bin := buildBinary(t)
	serverCA, clientCA, otherCA := testutil.NewCA(t, "server CA"), testutil.NewCA(t, "client CA"), testutil.NewCA(t, "other CA")
	serverCert, serverKey := serverCA.Issue(t, "scopegate")
	clientCert, clientKey := clientCA.Issue(t, "envoy")
	_, otherKey := otherCA.Issue(t, "stranger")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"tls.crt":       string(serverCert),
		"tls.key":       string(serverKey),
		"client-ca.crt": string(clientCA.PEM),
		"server-ca.crt": string(serverCA.PEM),
		"client.crt":    string(clientCert),
		"client.key":    string(clientKey),
		"other.key":     string(otherKey),
	})
	tlsOnly := startIssuerServer(t, bin, dir, "tls.yaml", "tls: { cert_file: tls.crt, key_file: tls.key }\n")
	mutual := startIssuerServer(t, bin, dir, "mtls.yaml", "tls: { cert_file: tls.crt, key_file: tls.key, client_ca_file: client-ca.crt }\n")
	file := func(name string) string { return filepath.Join(dir, name) }

	tests := []struct {
		name   string
		srv    *server
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"TLS with the server's CA", tlsOnly, []string{"--ca-file", file("server-ca.crt")}, 0, "decision: allow", ""},
		{"TLS with the server's CA and --tls", tlsOnly, []string{"--tls", "--ca-file", file("server-ca.crt")}, 0, "decision: allow", ""},
		{"TLS verified against a name the certificate has", tlsOnly, []string{"--ca-file", file("server-ca.crt"), "--server-name", "localhost"}, 0, "decision: allow", ""},
		{"TLS verified against a name the certificate lacks", tlsOnly, []string{"--ca-file", file("server-ca.crt"), "--server-name", "scopegate.internal"}, 2, "", "scopegate.internal"},
		{"TLS against the system's CAs, which do not sign the server", tlsOnly, []string{"--tls"}, 2, "", "certificate"},
		{"plaintext to a TLS listener", tlsOnly, nil, 2, "", "if the listener serves TLS (tls in its config), add --tls and --ca-file"},
		{"mutual TLS with a client certificate", mutual, []string{"--ca-file", file("server-ca.crt"), "--cert-file", file("client.crt"), "--key-file", file("client.key")}, 0, "decision: allow", ""},
		{"mutual TLS without a client certificate", mutual, []string{"--ca-file", file("server-ca.crt")}, 2, "", "if the listener requires client certificates (tls.client_ca_file), add --cert-file and --key-file"},
		{"mutual TLS with a client certificate but not the server's CA", mutual, []string{"--cert-file", file("client.crt"), "--key-file", file("client.key")}, 2, "", "certificate"},

		{"a CA file that does not exist", tlsOnly, []string{"--ca-file", file("nothere.crt")}, 2, "", "scopegate check: --ca-file: open " + file("nothere.crt")},
		{"a CA file without a certificate", tlsOnly, []string{"--ca-file", file("client.key")}, 2, "", "scopegate check: --ca-file: " + file("client.key") + ": no PEM certificate in it"},
		{"a client certificate without its key", mutual, []string{"--ca-file", file("server-ca.crt"), "--cert-file", file("client.crt")}, 2, "", "scopegate check: --cert-file and --key-file go together"},
		{"a key without its certificate", mutual, []string{"--ca-file", file("server-ca.crt"), "--key-file", file("client.key")}, 2, "", "scopegate check: --cert-file and --key-file go together"},
		{"a certificate file that does not exist", mutual, []string{"--cert-file", file("nothere.crt"), "--key-file", file("client.key")}, 2, "", "scopegate check: --cert-file: open " + file("nothere.crt")},
		{"a key file that does not exist", mutual, []string{"--cert-file", file("client.crt"), "--key-file", file("nothere.key")}, 2, "", "scopegate check: --key-file: open " + file("nothere.key")},
		{"a key that is not the certificate's", mutual, []string{"--cert-file", file("client.crt"), "--key-file", file("other.key")}, 2, "", "scopegate check: --cert-file " + file("client.crt") + " and --key-file " + file("other.key") + ": tls: private key does not match public key"},
		{"TLS flags with --tls=false", tlsOnly, []string{"--tls=false", "--ca-file", file("server-ca.crt")}, 2, "", "scopegate check: --tls=false with --ca-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"check", "--addr", tt.srv.grpc, "--path", "/healthz", "--timeout", "5s"}, tt.args...)
			code, stdout, stderr := runBinary(t, bin, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr)
			}
		})
	}
}

// TestCheckSendsThePeer pins that --peer is the source address that the
// server sees: the audit log's source.
func TestCheckSendsThePeer(t *testing.T) {
	bin := buildBinary(t)
	s := startIssuerServer(t, bin, t.TempDir(), "config.yaml", "")
	for _, peer := range []string{"203.0.113.7:4242", "198.51.100.20:1"} {
		if code, stdout, stderr := runBinary(t, bin, "check", "--addr", s.grpc, "--path", "/orders/1", "--peer", peer); code != 1 {
			t.Fatalf("--peer %s: exit %d, want 1 (a deny without a token)\n%s%s", peer, code, stdout, stderr)
		}
		want := `"source":"` + peer + `"`
		for deadline := time.Now().Add(testutil.WaitTimeout); !strings.Contains(s.stdout.String(), want); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no audit line with %s within 10s:\n%s", want, s.stdout.String())
			}
		}
	}
	if code, _, stderr := runBinary(t, bin, "check", "--addr", s.grpc, "--peer", "client.example.com:80"); code != 2 || !strings.Contains(stderr, "--peer: want IP:PORT") {
		t.Errorf("--peer with a host name: exit %d, want 2 naming --peer:\n%s", code, stderr)
	}
}

// TestCheckRefusesWhatIsNotAToken pins what check says when handed the
// JSON of a failed token request, such as the one the walkthrough's
// command captures in $TOKEN when the secret is wrong, or other things
// that are not one token.
func TestCheckRefusesWhatIsNotAToken(t *testing.T) {
	bin := buildBinary(t)
	idp := testutil.NewIdP(t)
	req, err := http.NewRequest("POST", idp.TokenURL(), strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testutil.DefaultClientID, "SECRET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var failed bytes.Buffer
	failed.ReadFrom(resp.Body)
	resp.Body.Close()
	var answer struct {
		ErrorDescription string `json:"error_description"`
	}
	if err := json.Unmarshal(failed.Bytes(), &answer); resp.StatusCode != 401 || err != nil {
		t.Fatalf("the token request with a wrong secret: %s, %v: %s", resp.Status, err, failed.String())
	}
	const accessToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"failed.json": failed.String() + "\n",
		"token":       "opaque-token\n",
	})

	tests := []struct {
		name   string
		args   []string
		stderr []string
		never  []string
	}{
		{"the answer of a failed token request", []string{"--token", failed.String()},
			[]string{"scopegate check: --token: this is not a token; did the token request fail?", `error: "invalid_client"`, fmt.Sprintf("error_description: %q", answer.ErrorDescription)}, nil},
		{"the answer of a failed token request, from a file", []string{"--token-file", filepath.Join(dir, "failed.json")},
			[]string{"--token-file " + filepath.Join(dir, "failed.json") + ": this is not a token; did the token request fail?", `error: "invalid_client"`}, nil},
		{"JSON with other fields shows only error and error_description", []string{"--token", `  {"error":"invalid_scope","client_secret":"s3cr3t-value","error_uri":"https://idp/x"}`},
			[]string{"this is not a token", `error: "invalid_scope"`}, []string{"s3cr3t-value", "error_uri"}},
		{"a whole token response", []string{"--token", `{"access_token":"` + accessToken + `","token_type":"bearer","expires_in":300}`},
			[]string{"this is not a token", "pass its access_token alone"}, []string{accessToken, "bearer"}},
		{"JSON that does not parse", []string{"--token", `{"error": "invalid_client", `},
			[]string{"this is not a token; did the token request fail?"}, []string{"invalid_client"}},
		{"a JSON array", []string{"--token", `["x"]`}, []string{"this is not a token"}, nil},
		{"--token with --token-file", []string{"--token", "opaque-token", "--token-file", filepath.Join(dir, "token")},
			[]string{"scopegate check: --token and --token-file exclude each other"}, nil},
		{"an empty --token with --token-file", []string{"--token", "", "--token-file", filepath.Join(dir, "token")},
			[]string{"scopegate check: --token and --token-file exclude each other"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Nothing listens at port 1: these must fail before dialing.
			code, stdout, stderr := runBinary(t, bin, append([]string{"check", "--addr", "127.0.0.1:1", "--timeout", "2s"}, tt.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			for _, s := range tt.never {
				if strings.Contains(stderr+stdout, s) {
					t.Errorf("the output shows %q:\n%s%s", s, stdout, stderr)
				}
			}
			if strings.Contains(stderr, "127.0.0.1:1") {
				t.Errorf("check dialed the server:\n%s", stderr)
			}
		})
	}
}

// TestCheckSendsThePeersTLSAttributes pins that --principal reaches the
// server as the peer's principal (the audit log's), and that a
// --peer-cert that is not a certificate is refused before anything is
// sent.
func TestCheckSendsThePeersTLSAttributes(t *testing.T) {
	bin := buildBinary(t)
	s := startIssuerServer(t, bin, t.TempDir(), "config.yaml", "")
	certPEM, keyPEM := testutil.NewCA(t, "mesh").Issue(t, "billing")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "peer.crt"), filepath.Join(dir, "peer.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	const principal = "spiffe://cluster.local/ns/billing/sa/api"
	code, stdout, stderr := runBinary(t, bin, "check", "--addr", s.grpc, "--path", "/orders/1", "--principal", principal,
		"--peer-cert", certFile, "--sni", "orders.internal", "--scheme", "https", "--context", "tier=gold")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a deny without a token)\n%s%s", code, stdout, stderr)
	}
	want := `"principal":"` + principal + `"`
	for deadline := time.Now().Add(testutil.WaitTimeout); !strings.Contains(s.stdout.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no audit line with %s within 10s:\n%s", want, s.stdout.String())
		}
	}
	if strings.Contains(s.stdout.String(), "BEGIN") {
		t.Errorf("the audit log holds the peer certificate:\n%s", s.stdout.String())
	}
	for _, tt := range []struct{ args, stderr string }{
		{"--peer-cert " + keyFile, "--peer-cert " + keyFile + ": not a PEM certificate"},
		{"--peer-cert " + filepath.Join(dir, "absent.crt"), "--peer-cert: open "},
		{"--context tier", `want K=V, got "tier"`},
	} {
		if code, _, stderr := runBinary(t, bin, append([]string{"check", "--addr", s.grpc}, strings.Fields(tt.args)...)...); code != 2 || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("%s: exit %d, want 2 saying %q:\n%s", tt.args, code, tt.stderr, stderr)
		}
	}
}

func TestWithTLSSetsWhatEnvoySends(t *testing.T) {
	req := envoy.CheckRequest("GET", "h", "/", nil)
	cert := authz.Certificate("-----BEGIN%20CERTIFICATE-----%0A")
	withTLS(req, "https", "spiffe://td/a", cert, "sni.example", map[string]string{"Tier": "gold"})
	a := req.GetAttributes()
	if a.GetRequest().GetHttp().GetScheme() != "https" || a.GetRequest().GetHttp().GetHeaders()[":scheme"] != "https" ||
		a.GetSource().GetPrincipal() != "spiffe://td/a" || a.GetSource().GetCertificate() != string(cert) ||
		a.GetTlsSession().GetSni() != "sni.example" || a.GetContextExtensions()["Tier"] != "gold" {
		t.Errorf("the request lacks an attribute: %v", a)
	}
	bare := envoy.CheckRequest("GET", "h", "/", nil)
	withTLS(bare, "http", "", "", "", nil)
	if bare.GetAttributes().GetTlsSession() != nil || bare.GetAttributes().GetContextExtensions() != nil {
		t.Errorf("a request without TLS attributes carries some: %v", bare.GetAttributes())
	}
}
