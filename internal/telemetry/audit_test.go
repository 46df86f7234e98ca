package telemetry_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/telemetry"
)

// lines returns the JSON lines written to b.
func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	s := bufio.NewScanner(b)
	for s.Scan() {
		var m map[string]any
		if err := json.Unmarshal(s.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %v: %s", err, s.Text())
		}
		out = append(out, m)
	}
	return out
}

const token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiaWxsaW5nLXN2YyJ9.c2lnbmF0dXJl"

func request() *authz.Request {
	return &authz.Request{
		Method: "POST", Host: "api.example.com", Path: "/orders?x=1", Peer: "10.0.0.7:50123",
		Authorization: "Bearer " + token, RequestID: "req-42", Principal: "spiffe://cluster.local/ns/billing/sa/api",
		Certificate: authz.Certificate("-----BEGIN%20CERTIFICATE-----%0AMIIBcertificatebytes%0A-----END%20CERTIFICATE-----%0A"),
	}
}

func TestAuditLineHasTheDecisionAndNeverTheToken(t *testing.T) {
	var b bytes.Buffer
	a := telemetry.NewAudit(&b, 1)
	d := &authz.Decision{
		Status: 403, Reason: authz.ReasonInsufficientScope, Error: "insufficient_scope",
		Description: "the token lacks one of orders:write, orders:admin",
		Route:       "orders-create", Path: "/orders", PolicyVersion: "0123456789ab",
		Required: []string{"orders:write", "orders:admin"},
		Claims:   &authz.Claims{Issuer: "https://idp.example.com", Subject: "billing-svc", ClientID: "billing-svc", Scopes: []string{"orders:read"}},
	}
	a.Record(request(), d, 1500*time.Microsecond)
	if strings.Contains(b.String(), token) || strings.Contains(b.String(), "c2lnbmF0dXJl") {
		t.Fatalf("the audit line holds the token: %s", b.String())
	}
	if strings.Contains(b.String(), "certificatebytes") {
		t.Fatalf("the audit line holds the peer certificate: %s", b.String())
	}
	got := lines(t, &b)
	if len(got) != 1 {
		t.Fatalf("%d lines, want 1", len(got))
	}
	sum := sha256.Sum256([]byte(token))
	want := map[string]any{
		"msg": "decision", "decision": "deny", "status": 403.0, "reason": "insufficient_scope",
		"description": d.Description, "route": "orders-create", "policy_version": "0123456789ab",
		"client_id": "billing-svc", "subject": "billing-svc", "issuer": "https://idp.example.com",
		"scopes": []any{"orders:read"}, "required_scopes": []any{"orders:write", "orders:admin"},
		"method": "POST", "host": "api.example.com", "path": "/orders", "request_id": "req-42",
		"source": "10.0.0.7:50123", "principal": "spiffe://cluster.local/ns/billing/sa/api", "token_sha256": hex.EncodeToString(sum[:8]), "latency_ms": 1.5,
	}
	line := got[0]
	for k, v := range want {
		if gj, _ := json.Marshal(line[k]); string(gj) != mustJSON(v) {
			t.Errorf("%s = %s, want %s", k, gj, mustJSON(v))
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, line["time"].(string)); err != nil {
		t.Errorf("time: %v", err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAuditWritesEveryDenyAndSamplesAllows(t *testing.T) {
	allow := &authz.Decision{Allow: true, Status: 200, Reason: authz.ReasonAllowed}
	deny := &authz.Decision{Status: 401, Reason: authz.ReasonTokenMissing}
	wouldDeny := &authz.Decision{Allow: true, WouldDeny: true, Status: 403, Reason: authz.ReasonClientNotAllowed}
	tests := []struct {
		name string
		rate float64
		d    *authz.Decision
		want int // lines of 1000 checks
	}{
		{"deny at rate 0", 0, deny, 1000},
		{"would-be deny at rate 0", 0, wouldDeny, 1000},
		{"allow at rate 0", 0, allow, 0},
		{"allow at rate 1", 1, allow, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			a := telemetry.NewAudit(&b, tt.rate)
			for range 1000 {
				a.Record(request(), tt.d, time.Millisecond)
			}
			if got := lines(t, &b); len(got) != tt.want {
				t.Fatalf("%d lines, want %d", len(got), tt.want)
			}
		})
	}

	t.Run("allow at rate 0.25", func(t *testing.T) {
		var b bytes.Buffer
		a := telemetry.NewAudit(&b, 0.25)
		for range 4000 {
			a.Record(request(), allow, time.Millisecond)
		}
		// 1000 expected, with a standard deviation of about 27.
		if n := len(lines(t, &b)); n < 800 || n > 1200 {
			t.Fatalf("%d of 4000 allows written, want about 1000", n)
		}
	})
}

func TestAuditNamesWouldBeDenies(t *testing.T) {
	var b bytes.Buffer
	telemetry.NewAudit(&b, 0).Record(request(), &authz.Decision{Allow: true, WouldDeny: true, Status: 403, Reason: authz.ReasonRouteDenied}, 0)
	if got := lines(t, &b); len(got) != 1 || got[0]["decision"] != "would_deny" || got[0]["status"] != 403.0 {
		t.Fatalf("lines %v, want one would_deny with the deny's status", got)
	}
}

func TestAuditClipsWhatTheRequestSupplies(t *testing.T) {
	var b bytes.Buffer
	r := request()
	r.Host = strings.Repeat("h", 5000)
	r.RequestID = strings.Repeat("r", 5000)
	telemetry.NewAudit(&b, 1).Record(r, &authz.Decision{Status: 403, Reason: authz.ReasonNoRoute, Path: "/" + strings.Repeat("p", 5000)}, 0)
	line := lines(t, &b)[0]
	for _, k := range []string{"host", "request_id", "path"} {
		if n := len(line[k].(string)); n != 1024 {
			t.Errorf("%s is %d bytes, want 1024", k, n)
		}
	}
}

func TestNilAuditWritesNothing(t *testing.T) {
	var a *telemetry.Audit
	a.Record(request(), &authz.Decision{Status: 403}, 0)
}
