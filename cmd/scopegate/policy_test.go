package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyCommands runs `scopegate policy` through the built binary, on
// the example policy and its tests and on broken copies of them.
func TestPolicyCommands(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	put := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const example, exampleTests = "../../examples/policy.yaml", "../../examples/policy_test.yaml"
	broken := put("broken.yaml", "version: 1\nroutes:\n  - name: orders\n    match: { path: \"/orders/**\" }\n    require: { scopes: { all_of: [orders:read] } }\n    public: true\n")
	overlapping := put("overlapping.yaml", "version: 1\nroutes:\n"+
		"  - name: orders\n    match: { path: \"/orders/**\" }\n    require: { scopes: { all_of: [orders:read] } }\n"+
		"  - name: export\n    match: { path: /orders/export }\n    public: true\n")
	wrong := put("wrong_test.yaml", "tests:\n"+
		"  - name: anyone may delete\n    request: { method: DELETE, path: /orders/42 }\n    token: { client_id: orders-svc, scopes: [orders:read] }\n    expect: allow\n")
	junit := filepath.Join(dir, "junit.xml")
	const workload = "../../policy/testdata/workload.yaml"
	workloadSrc, err := os.ReadFile(workload)
	if err != nil {
		t.Fatal(err)
	}
	workloadRoutes, _, _ := strings.Cut(string(workloadSrc), "\ntests:")
	workloadRoutes = put("workload.yaml", workloadRoutes)
	peerTests := put("peer_test.yaml", "tests:\n  - name: the console\n    request: { method: POST, path: /admin/rebuild }\n    token: none\n    expect: { status: 200, route: billing-admin }\n")

	tests := []struct {
		name  string
		args  []string
		code  int
		lines []string // in stdout
	}{
		{"check_example_is_clean_even_strict", []string{"check", "--strict", example, exampleTests}, 0, []string{
			"../../examples/policy.yaml: ok (version ", ", 13 routes, 0 tests)",
			"../../examples/policy_test.yaml: ok (30 tests)"}},
		{"check_error_shows_file_line_and_source", []string{"check", broken}, 1, []string{
			broken + ":5:14: error: routes[0].require: a public route admits requests without a token",
			"    5 |     require: { scopes: { all_of: [orders:read] } }",
			"FAIL: 1 error, 0 warnings in 1 file"}},
		{"check_warning_passes", []string{"check", overlapping}, 0, []string{
			overlapping + ":7:12: warning: routes[1].match: route \"export\" and route \"orders\" at line 3 both match GET /orders/export",
			"[overlap]",
			"ok: 0 errors, 1 warning in 1 file"}},
		{"check_strict_fails_on_a_warning", []string{"check", "--strict", overlapping}, 1, []string{
			"FAIL: 0 errors, 1 warning in 1 file (--strict: warnings fail)"}},
		{"check_json", []string{"check", "--format", "json", example}, 0, []string{`"ok": true`, `"routes": 13`}},
		{"test_example_passes", []string{"test", example}, 0, []string{"PASS: ../../examples/policy.yaml (version ", "30 passed, 0 failed"}},
		{"test_failure_is_expected_vs_got", []string{"test", "--junit", junit, example, wrong}, 1, []string{
			"--- FAIL: anyone may delete (" + wrong + ":2)",
			"    expected: allow",
			"    got:      deny 403 insufficient_scope, route orders-delete (line ",
			"    why:      the token lacks scope orders:admin",
			"FAIL: ../../examples/policy.yaml (version ", "0 passed, 1 failed"}},
		{"test_json", []string{"test", "--format", "json", example, exampleTests}, 0, []string{`"passed": 30`, `"failed": 0`}},
		{"explain_shows_what_the_token_lacks", []string{"explain", "--method", "POST", "--path", "/orders/42/cancel", "--scopes", "orders:read", "--client", "orders-svc", example}, 1, []string{
			"path:      /orders/42/cancel (normalized)",
			"  1. orders-cancel (line ",
			"winner:    orders-cancel: it is the only route that matches",
			"lacks:     scope orders:write or orders:admin (any_of: orders:write, orders:admin)",
			"decision:  deny 403 insufficient_scope"}},
		{"explain_allowed", []string{"explain", "--method", "GET", "--path", "/orders/42?x=1", "--scopes", "orders:read,inventory:read", example}, 0, []string{
			"decision:  allow 200 allowed"}},
		{"explain_without_token", []string{"explain", "--path", "/healthz", "--no-token", example}, 0, []string{
			"decision:  allow 200 public"}},
		{"explain_with_principal_and_context", []string{"explain", "--method", "POST", "--path", "/admin/rebuild", "--no-token",
			"--principal", "spiffe://cluster.local/ns/ops/sa/console", "--context", "route=billing", "--context", "tier=internal", workload}, 0, []string{
			"request:   POST /admin/rebuild from peer spiffe://cluster.local/ns/ops/sa/console with route context {route: billing, tier: internal}, no token",
			"winner:    billing-admin: it beats \"billing-api\" because its path /admin/** is more specific",
			"decision:  allow 200 allowed"}},
		{"explain_with_the_wrong_principal", []string{"explain", "--path", "/invoices", "--scopes", "billing:read",
			"--principal", "spiffe://cluster.local/ns/shop/sa/api", "--context", "route=billing", workload}, 1, []string{
			"decision:  deny 403 principal_not_allowed"}},
		{"test_with_principal_and_context", []string{"test", "--principal", "spiffe://cluster.local/ns/ops/sa/console", "--context", "route=billing", "--context", "tier=internal", workloadRoutes, peerTests}, 0, []string{
			"1 passed, 0 failed"}},
		{"test_without_principal_and_context", []string{"test", workloadRoutes, peerTests}, 1, []string{
			"0 passed, 1 failed", "got:      deny 401 token_missing, route fallback"}},
		{"explain_invalid_policy", []string{"explain", "--path", "/", broken}, 2, []string{"error: routes[0].require"}},
		{"help", []string{"--help"}, 0, []string{"scopegate policy SUBCOMMAND"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"policy"}, tt.args...)...)
			if tt.name == "help" {
				cmd = exec.Command(bin, tt.args...)
			}
			out, err := cmd.Output()
			if code := exitCode(t, err); code != tt.code {
				t.Errorf("exit %d, want %d; stdout:\n%s", code, tt.code, out)
			}
			for _, l := range tt.lines {
				if !strings.Contains(string(out), l) {
					t.Errorf("stdout lacks %q:\n%s", l, out)
				}
			}
		})
	}

	var data []byte
	data, err = os.ReadFile(junit)
	if err != nil {
		t.Fatalf("--junit wrote no report: %v", err)
	}
	for _, s := range []string{`<testsuites name="scopegate policy test ../../examples/policy.yaml" tests="1" failures="1" errors="0">`, `<testcase name="anyone may delete"`, `<failure message="expected allow, got deny 403 insufficient_scope`} {
		if !strings.Contains(string(data), s) {
			t.Errorf("JUnit report lacks %q:\n%s", s, data)
		}
	}
}

func TestPolicyCommandUsageErrors(t *testing.T) {
	bin := buildBinary(t)
	for _, args := range [][]string{
		{"policy"},
		{"policy", "lint"},
		{"policy", "check"},
		{"policy", "check", "--format", "xml", "p.yaml"},
		{"policy", "test"},
		{"policy", "explain", "../../examples/policy.yaml"},
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			cmd := exec.Command(bin, args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if code := exitCode(t, err); code != 2 || !strings.Contains(stderr.String(), "Usage:") || len(out) > 0 {
				t.Errorf("exit %d, want 2 with the usage on stderr and nothing on stdout; stderr:\n%s", code, stderr.String())
			}
		})
	}
}

func TestPolicyCheckJSONIsMachineReadable(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "policy", "check", "--format", "json", "../../examples/policy.yaml", "../../examples/policy_test.yaml").Output()
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var r struct {
		OK    bool `json:"ok"`
		Files []struct {
			File  string `json:"file"`
			Kind  string `json:"kind"`
			Tests int    `json:"tests"`
		} `json:"files"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if !r.OK || len(r.Files) != 2 || r.Files[1].Kind != "tests" || r.Files[1].Tests != 30 {
		t.Errorf("report %+v", r)
	}
}

// exitCode returns the exit status of a command that returned err.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}
