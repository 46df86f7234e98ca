package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scopegate/scopegate/internal/testutil"
)

// buildBinary builds scopegate into a temporary folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "scopegate")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestDevWalkthrough runs the README's walkthrough against the real binary:
// serve --dev, get a token from the dev issuer with the client-credentials
// grant, and check one allowed and one denied request.
func TestDevWalkthrough(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.Command(bin, "serve", "--dev", "--grpc", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--dev-issuer", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	welcome := readUntil(t, stdout, "--method POST", testutil.WaitTimeout)
	grpcAddr := field(t, welcome, `ext_authz gRPC:\s+(\S+)`)
	issuer := field(t, welcome, `dev issuer:\s+(\S+)`)
	client := field(t, welcome, `client:\s+(\S+)`)
	secret := field(t, welcome, `secret:\s+(\S+)`)
	for _, s := range []string{"TOKEN=$(curl", "--method GET --path /orders/42", "--method POST --path /orders"} {
		if !strings.Contains(welcome, s) {
			t.Errorf("welcome lacks %q:\n%s", s, welcome)
		}
	}

	req, _ := http.NewRequest("POST", issuer+"/dev/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("token endpoint: %s", resp.Status)
	}

	var out bytes.Buffer
	if code := run([]string{"check", "--addr", grpcAddr, "--method", "GET", "--path", "/orders/42", "--token", tok.AccessToken}, &out, io.Discard); code != 0 {
		t.Errorf("allowed request: exit %d\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "decision: allow") || !strings.Contains(out.String(), "x-scopegate-client-id: demo-client") {
		t.Errorf("allowed request output:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"check", "--addr", grpcAddr, "--method", "POST", "--path", "/orders", "--token", tok.AccessToken}, &out, io.Discard); code != 1 {
		t.Errorf("denied request: exit %d\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "status:   403") || !strings.Contains(out.String(), `error="insufficient_scope"`) {
		t.Errorf("denied request output:\n%s", out.String())
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := waitExit(t, cmd); err != nil {
		t.Errorf("after SIGTERM: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), tok.AccessToken) {
		t.Error("the server logged the token")
	}
}

func TestCheckExitsTwoWhenNoServerAnswers(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"check", "--addr", "127.0.0.1:1", "--timeout", "200ms"}, io.Discard, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "127.0.0.1:1") {
		t.Errorf("stderr does not name the address: %s", stderr.String())
	}
}

func TestServeRejectsBadConfigNamingTheField(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("issuers:\n  - issuer: https://idp.example.com\n    jwks_uri: https://idp.example.com/jwks\n    algorithms: [none]\npolicy: { file: policy.yaml }\n"), 0o600)
	var stderr bytes.Buffer
	if code := run([]string{"serve", "--config", cfg}, io.Discard, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if want := cfg + `:4:18: issuers[0].algorithms[0]: "none" is never accepted`; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q does not contain %q", stderr.String(), want)
	}
}

func TestServeDevRefusesNonLoopback(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"serve", "--dev", "--grpc", "0.0.0.0:0", "--dev-issuer", "127.0.0.1:0"}, io.Discard, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2 (%s)", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "loopback only") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// readUntil reads r until a line containing marker, and returns all read.
func readUntil(t *testing.T, r io.Reader, marker string, timeout time.Duration) string {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		var b strings.Builder
		s := bufio.NewScanner(r)
		for s.Scan() {
			b.WriteString(s.Text() + "\n")
			if strings.Contains(s.Text(), marker) {
				break
			}
		}
		done <- b.String()
		io.Copy(io.Discard, r)
	}()
	select {
	case s := <-done:
		return s
	case <-time.After(timeout):
		t.Fatalf("no %q within %v", marker, timeout)
		return ""
	}
}

func field(t *testing.T, s, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, s)
	}
	return m[1]
}
