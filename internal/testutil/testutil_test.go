package testutil

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestIdPOutages(t *testing.T) {
	idp := NewIdP(t)
	client := &http.Client{Timeout: 5 * time.Second}
	get := func() (int, error) {
		resp, err := client.Get(idp.JWKSURL())
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(); code != http.StatusOK {
		t.Fatalf("GET JWKS = %d, %v; want 200", code, err)
	}
	idp.Fail()
	if code, err := get(); code != http.StatusInternalServerError {
		t.Errorf("GET JWKS while failing = %d, %v; want 500", code, err)
	}
	idp.Restore(t)
	idp.Refuse()
	if code, err := get(); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("GET JWKS while refusing = %d, %v; want connection refused", code, err)
	}
	idp.Restore(t)
	if code, err := get(); code != http.StatusOK {
		t.Errorf("GET JWKS after Restore = %d, %v; want 200", code, err)
	}
	if n := idp.JWKSFetches(); n != 3 {
		t.Errorf("JWKSFetches = %d, want 3", n)
	}
}

func TestTamperKeepsHeaderAndSignature(t *testing.T) {
	idp := NewIdP(t)
	tok := idp.Token(t, Scopes("a"))
	tampered := Tamper(t, tok, "scope", "a admin")
	p, q := strings.Split(tok, "."), strings.Split(tampered, ".")
	if p[0] != q[0] || p[2] != q[2] || p[1] == q[1] {
		t.Fatalf("Tamper changed more or less than the payload")
	}
	payload, err := base64.RawURLEncoding.DecodeString(q[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil || claims["scope"] != "a admin" {
		t.Errorf("tampered claims = %v, %v", claims, err)
	}
}

func TestPadded(t *testing.T) {
	idp := NewIdP(t)
	if tok := idp.Token(t, Padded(16<<10)); len(tok) < 16<<10 {
		t.Errorf("len(token) = %d, want at least %d", len(tok), 16<<10)
	}
}
