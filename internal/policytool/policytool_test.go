package policytool

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scopegate/scopegate/policy"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		o     CheckOptions
		code  int
		lines []string // lines the report must contain
	}{
		{"valid_policy_and_tests", []string{"testdata/shop.yaml", "testdata/shop_test.yaml"}, CheckOptions{}, 0, []string{
			"testdata/shop.yaml: ok (version ", ", 3 routes, 1 test)",
			"testdata/shop_test.yaml: ok (1 test)"}},
		{"warnings_pass", []string{"testdata/warn.yaml"}, CheckOptions{}, 0, []string{
			`testdata/warn.yaml:10:12: warning: routes[1].match: route "orders-export" and route "orders-read" at line 6 both match GET /orders/export`,
			`testdata/warn.yaml:11:34: warning: routes[1].require.scopes.all_of: route "orders-export" requires scope "orders:export", which no issuer in issuers grants [unknown_scope]`,
			"   11 |     require: { scopes: { all_of: [orders:export] } }",
			"ok: 0 errors, 2 warnings in 1 file"}},
		{"strict_warnings_fail", []string{"testdata/warn.yaml"}, CheckOptions{Strict: true}, 1, []string{
			"FAIL: 0 errors, 2 warnings in 1 file (--strict: warnings fail)"}},
		{"errors_fail_with_the_source_line", []string{"testdata/broken.yaml", "testdata/shop.yaml"}, CheckOptions{}, 1, []string{
			`testdata/broken.yaml:5:5: error: routes[0].publik: unknown field "publik"`,
			"    5 |     publik: true",
			"      |     ^",
			"testdata/shop.yaml: ok",
			"FAIL: 1 error, 0 warnings in 2 files"}},
		{"unreadable_file", []string{"testdata/absent.yaml"}, CheckOptions{}, 1, []string{
			"testdata/absent.yaml: error: open testdata/absent.yaml: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := Check(&out, tt.files, tt.o); code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			for _, l := range tt.lines {
				if !strings.Contains(out.String(), l) {
					t.Errorf("report lacks %q:\n%s", l, out.String())
				}
			}
		})
	}
}

func TestCheckJSON(t *testing.T) {
	var out bytes.Buffer
	code := Check(&out, []string{"testdata/broken.yaml", "testdata/warn.yaml"}, CheckOptions{Format: JSON})
	var r CheckReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if code != 1 || r.OK || r.Errors != 1 || r.Warnings != 2 || len(r.Files) != 2 {
		t.Fatalf("exit %d, report %+v", code, r)
	}
	e := r.Files[0].Problems[0]
	if e.Severity != "error" || e.File != "testdata/broken.yaml" || e.Line != 5 || e.Column != 5 || e.Field != "routes[0].publik" || e.Source == "" {
		t.Errorf("error = %+v", e)
	}
	w := r.Files[1].Problems[0]
	if w.Severity != "warning" || w.Check != "overlap" || w.Line != 10 || r.Files[1].Version == "" || r.Files[1].Routes != 2 {
		t.Errorf("warning = %+v in %+v", w, r.Files[1])
	}
}

func TestTest(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		files  []string
		code   int
		lines  []string
	}{
		{"inline_tests_and_the_sibling_file", "testdata/shop.yaml", nil, 0, []string{
			"PASS: testdata/shop.yaml (version ", "): 2 passed, 0 failed"}},
		{"failure_shows_expected_and_got_with_the_route", "testdata/shop.yaml", []string{"testdata/wrong_test.yaml"}, 1, []string{
			"--- FAIL: reader cancels (testdata/wrong_test.yaml:2)",
			`    request:  POST /orders/1/cancel on host api.example.com, token with client_id "orders-svc", scopes "orders:read"`,
			"    expected: allow",
			"    got:      deny 403 insufficient_scope, route orders-cancel (line 6)",
			"    why:      the token lacks one of orders:write, orders:admin",
			"FAIL: testdata/shop.yaml (version ", "): 2 passed, 1 failed"}},
		{"invalid_policy_runs_nothing", "testdata/broken.yaml", nil, 1, []string{
			`testdata/broken.yaml:5:5: error: routes[0].publik: unknown field "publik"`,
			"FAIL: 1 error: no test ran"}},
		{"no_tests_is_a_failure", "testdata/warn.yaml", nil, 1, []string{
			"testdata/warn.yaml: error: no test cases: add a tests section, or a file of test cases such as testdata/warn_test.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := Test(&out, tt.policy, tt.files, TestOptions{}); code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			for _, l := range tt.lines {
				if !strings.Contains(out.String(), l) {
					t.Errorf("report lacks %q:\n%s", l, out.String())
				}
			}
		})
	}
}

func TestTestJSONAndJUnit(t *testing.T) {
	junitFile := filepath.Join(t.TempDir(), "junit.xml")
	var out bytes.Buffer
	code := Test(&out, "testdata/shop.yaml", []string{"testdata/wrong_test.yaml"}, TestOptions{Format: JSON, JUnit: junitFile})
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	var r TestReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if r.Passed != 2 || r.Failed != 1 || len(r.Tests) != 3 {
		t.Fatalf("report %+v", r)
	}
	failed := r.Tests[1]
	want := TestResult{Name: "reader cancels", File: "testdata/wrong_test.yaml", Line: 2, Passed: false,
		Expect: Expected{Decision: policy.OutcomeAllow},
		Got:    Outcome{Decision: policy.OutcomeDeny, Status: 403, Reason: "insufficient_scope", Route: "orders-cancel", RouteLine: 6, Description: "the token lacks one of orders:write, orders:admin"}}
	failed.Request = ""
	if failed != want {
		t.Errorf("failed test\n got %+v\nwant %+v", failed, want)
	}

	data, err := os.ReadFile(junitFile)
	if err != nil {
		t.Fatal(err)
	}
	var suites junitSuites
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatalf("%v:\n%s", err, data)
	}
	if suites.Tests != 3 || suites.Failures != 1 || len(suites.Suites) != 2 {
		t.Fatalf("JUnit: %d tests, %d failures, %d suites; want 3, 1, 2:\n%s", suites.Tests, suites.Failures, len(suites.Suites), data)
	}
	s := suites.Suites[1]
	if s.Name != "testdata/wrong_test.yaml" || s.Failures != 1 || s.Cases[0].Failure == nil ||
		s.Cases[0].Failure.Message != "expected allow, got deny 403 insufficient_scope, route orders-cancel (line 6)" || s.Cases[1].Failure != nil {
		t.Errorf("suite %+v", s)
	}
}

func TestJUnitReportsInvalidFilesAsErrors(t *testing.T) {
	junitFile := filepath.Join(t.TempDir(), "junit.xml")
	Test(&bytes.Buffer{}, "testdata/broken.yaml", nil, TestOptions{JUnit: junitFile})
	data, err := os.ReadFile(junitFile)
	if err != nil {
		t.Fatal(err)
	}
	var suites junitSuites
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatal(err)
	}
	if suites.Errors != 1 || suites.Suites[0].Cases[0].Error == nil || !strings.Contains(suites.Suites[0].Cases[0].Error.Message, "publik") {
		t.Errorf("JUnit report of an invalid policy:\n%s", data)
	}
}

func TestExplain(t *testing.T) {
	tests := []struct {
		name  string
		q     Query
		code  int
		lines []string
	}{
		{"missing_scope_of_the_winner", Query{Method: "POST", Path: "/orders/7/cancel", ClientID: "orders-svc", Scopes: []string{"orders:read"}}, 1, []string{
			"request:   POST /orders/7/cancel, valid token of client orders-svc with scopes [orders:read]",
			"path:      /orders/7/cancel (normalized)",
			"  1. orders-cancel (line 6): POST /orders/{id}/cancel; requires scopes any_of [orders:write orders:admin]",
			"winner:    orders-cancel: it is the only route that matches",
			"lacks:     scope orders:write or orders:admin (any_of: orders:write, orders:admin)",
			"decision:  deny 403 insufficient_scope"}},
		{"allowed", Query{Method: "GET", Path: "/orders//7/./items", Scopes: []string{"orders:read"}}, 0, []string{
			"path:      /orders/7/items (normalized)",
			"decision:  allow 200 allowed"}},
		{"no_token", Query{Method: "GET", Path: "/orders/7", NoToken: true}, 1, []string{
			"lacks:     a token",
			"decision:  deny 401 token_missing"}},
		{"no_route", Query{Method: "DELETE", Path: "/orders/7"}, 1, []string{
			"winner:    none: no route matches, so the policy's default decides: deny",
			"decision:  deny 403 no_route"}},
		{"refused_path", Query{Method: "GET", Path: "/orders%2F7"}, 1, []string{
			`path:      refused: the request path is not allowed: bad request path "/orders%2F7": encoded slash "%2F" at byte 7`,
			"decision:  deny 400 bad_path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := Explain(&out, "testdata/shop.yaml", tt.q, Text); code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			for _, l := range tt.lines {
				if !strings.Contains(out.String(), l) {
					t.Errorf("explanation lacks %q:\n%s", l, out.String())
				}
			}
		})
	}
}

func TestExplainPrecedenceAndDryRun(t *testing.T) {
	var out bytes.Buffer
	code := Explain(&out, "../../policy/testdata/rollout.yaml", Query{Method: "POST", Path: "/billing/invoices/1/refunds", Host: "api.example.com", ClientID: "orders-svc", Scopes: []string{"billing:refund"}}, JSON)
	var e Explanation
	if err := json.Unmarshal(out.Bytes(), &e); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if code != 0 || !e.DryRun || e.Decision.Decision != policy.OutcomeWouldDeny || e.Decision.Reason != "client_not_allowed" {
		t.Errorf("exit %d, explanation %+v", code, e)
	}
	if len(e.Lacks) != 1 || e.Lacks[0] != `a client in [billing-svc] (the token's is "orders-svc")` {
		t.Errorf("lacks %q", e.Lacks)
	}

}

func TestExplainSaysWhyTheWinnerWins(t *testing.T) {
	var out bytes.Buffer
	Explain(&out, "testdata/warn.yaml", Query{Method: "GET", Path: "/orders/export", Scopes: []string{"orders:read"}}, Text)
	for _, l := range []string{
		"  1. orders-export (line 9): any method /orders/export; requires scopes all_of [orders:export]",
		"  2. orders-read (line 6): GET /orders/**; requires scopes all_of [orders:read]",
		`winner:    orders-export: it beats "orders-read" because its path /orders/export is more specific than "orders-read"'s /orders/**: segment 2 is the literal "export" where the other has **`,
		"lacks:     scope orders:export (all_of: orders:export)",
	} {
		if !strings.Contains(out.String(), l) {
			t.Errorf("explanation lacks %q:\n%s", l, out.String())
		}
	}
}

func TestExplainNamesTheIssuerARouteRequires(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	src := "version: 1\nroutes:\n  - name: refunds\n    match: { path: /refunds }\n    require: { issuers: [https://corp.example.com], clients: [billing-svc] }\n"
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	q := Query{Method: "POST", Path: "/refunds", Issuer: "https://partner.example.com", ClientID: "billing-svc"}
	if code := Explain(&out, file, q, Text); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out.String())
	}
	for _, want := range []string{`an issuer in [https://corp.example.com] (the token's is "https://partner.example.com")`, "issuer_not_allowed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

const workloadPolicy = "../../policy/testdata/workload.yaml"

func TestExplainPrincipalAndContext(t *testing.T) {
	billing := policy.ContextOf(map[string]string{"route": "billing"})
	admin := policy.ContextOf(map[string]string{"route": "billing", "tier": "internal"})
	tests := []struct {
		name  string
		q     Query
		code  int
		lines []string
	}{
		{"wrong_principal_on_a_tagged_route", Query{Method: "GET", Path: "/invoices", Principal: "spiffe://cluster.local/ns/shop/sa/api", Context: billing, Scopes: []string{"billing:read"}}, 1, []string{
			"request:   GET /invoices from peer spiffe://cluster.local/ns/shop/sa/api with route context {route: billing}, valid token of client (none) with scopes [billing:read]",
			"  1. billing-api (line 4): any method /** with route context {route: billing}; requires principals [spiffe://cluster.local/ns/orders/sa/* spiffe://cluster.local/ns/billing/**], scopes all_of [billing:read]",
			"  2. fallback (line 17): any method /**; requires scopes all_of [api]",
			`winner:    billing-api: it beats "fallback" because it matches the route context {route: billing} and "fallback" matches none`,
			`lacks:     a principal in [spiffe://cluster.local/ns/orders/sa/* spiffe://cluster.local/ns/billing/**] (the peer's is "spiffe://cluster.local/ns/shop/sa/api")`,
			"decision:  deny 403 principal_not_allowed"}},
		{"no_mutual_tls", Query{Method: "GET", Path: "/invoices", Context: billing, Scopes: []string{"billing:read"}}, 1, []string{
			"lacks:     a mutual TLS peer with a principal in [",
			"decision:  deny 403 principal_not_allowed"}},
		{"principal_only_route_without_a_token", Query{Method: "POST", Path: "/admin/rebuild", Principal: "spiffe://cluster.local/ns/ops/sa/console", Context: admin, NoToken: true}, 0, []string{
			"  1. billing-admin (line 9): any method /admin/** with route context {route: billing, tier: internal}; requires principals [spiffe://cluster.local/ns/ops/sa/console] and no token",
			"decision:  allow 200 allowed"}},
		{"without_the_tag_the_plain_route_decides", Query{Method: "GET", Path: "/invoices", Scopes: []string{"api"}}, 0, []string{
			"winner:    fallback: it is the only route that matches",
			"decision:  allow 200 allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := Explain(&out, workloadPolicy, tt.q, Text); code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			for _, l := range tt.lines {
				if !strings.Contains(out.String(), l) {
					t.Errorf("explanation lacks %q:\n%s", l, out.String())
				}
			}
		})
	}
}

func TestTestPrincipalAndContext(t *testing.T) {
	var own bytes.Buffer
	if code := Test(&own, workloadPolicy, nil, TestOptions{}); code != 0 || !strings.Contains(own.String(), "4 passed, 0 failed") {
		t.Errorf("the policy's own test cases: exit %d:\n%s", code, own.String())
	}
	file := filepath.Join(t.TempDir(), "peer_test.yaml")
	src := `tests:
  - name: the console, from the flags
    request: { method: POST, path: /admin/rebuild }
    token: none
    expect: { status: 200, route: billing-admin }
  - name: its own principal and context take precedence
    request: { method: GET, path: /invoices, principal: "spiffe://cluster.local/ns/shop/sa/api", context: { tier: public } }
    token: { scopes: [billing:read] }
    expect: { status: 403, reason: principal_not_allowed, route: billing-api }
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	// The policy without its tests section, whose cases the flags would
	// change too.
	data, err := os.ReadFile(workloadPolicy)
	if err != nil {
		t.Fatal(err)
	}
	routes, _, _ := strings.Cut(string(data), "\ntests:")
	pol := filepath.Join(t.TempDir(), "workload.yaml")
	if err := os.WriteFile(pol, []byte(routes), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := Test(&out, pol, []string{file}, TestOptions{}); code != 1 || !strings.Contains(out.String(), "--- FAIL: the console, from the flags") {
		t.Errorf("without the flags: exit %d, want the console's case to fail:\n%s", code, out.String())
	}
	out.Reset()
	o := TestOptions{Principal: "spiffe://cluster.local/ns/ops/sa/console", Context: policy.ContextOf(map[string]string{"route": "billing", "tier": "internal"})}
	if code := Test(&out, pol, []string{file}, o); code != 0 {
		t.Errorf("with the flags: exit %d, want 0:\n%s", code, out.String())
	}
	if want := "2 passed, 0 failed"; !strings.Contains(out.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, out.String())
	}
}
