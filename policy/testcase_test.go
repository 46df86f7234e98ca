package policy

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseTests(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want *Test
	}{
		{"words_for_token_and_expect",
			"tests:\n  - name: a\n    request: { method: GET, path: /x }\n    token: none\n    expect: would_deny\n",
			&Test{Name: "a", Method: "GET", Path: "/x", Expect: Expect{Decision: OutcomeWouldDeny}, File: "t.yaml", Line: 2}},
		{"claims_and_a_full_expectation",
			"tests:\n  - name: b\n    request: { method: post, host: api.example.com, path: \"/x?y=1\" }\n" +
				"    token: { issuer: https://idp, subject: s, client_id: c, audience: [aud], scopes: [a, b] }\n" +
				"    expect: { decision: would_deny, status: 403, reason: insufficient_scope, route: r }\n",
			&Test{Name: "b", Method: "post", Host: "api.example.com", Path: "/x?y=1",
				Token:  &Token{Issuer: "https://idp", Subject: "s", ClientID: "c", Audience: []string{"aud"}, Scopes: []string{"a", "b"}},
				Expect: Expect{Decision: OutcomeWouldDeny, Status: 403, Reason: "insufficient_scope", Route: "r"}, File: "t.yaml", Line: 2}},
		{"status_200_means_allow",
			"tests:\n  - name: c\n    request: { method: GET, path: /x }\n    token: {}\n    expect: { status: 200 }\n",
			&Test{Name: "c", Method: "GET", Path: "/x", Token: &Token{}, Expect: Expect{Decision: OutcomeAllow, Status: 200}, File: "t.yaml", Line: 2}},
		{"other_status_means_deny",
			"tests:\n  - name: d\n    request: { method: GET, path: /x }\n    token: none\n    expect: { status: 401, reason: token_missing }\n",
			&Test{Name: "d", Method: "GET", Path: "/x", Expect: Expect{Decision: OutcomeDeny, Status: 401, Reason: "token_missing"}, File: "t.yaml", Line: 2}},
		{"principal_and_context",
			"tests:\n  - name: g\n    request: { method: GET, path: /x, principal: \"spiffe://td/ns/a/sa/b\", context: { route: billing, tier: gold } }\n    token: none\n    expect: allow\n",
			&Test{Name: "g", Method: "GET", Path: "/x", Principal: "spiffe://td/ns/a/sa/b", Context: ContextOf(map[string]string{"route": "billing", "tier": "gold"}),
				Expect: Expect{Decision: OutcomeAllow}, File: "t.yaml", Line: 2}},
		{"anchors_share_a_token",
			"tests:\n  - name: e\n    request: { method: GET, path: /x }\n    token: &t { scopes: [a] }\n    expect: allow\n" +
				"  - name: f\n    request: { method: GET, path: /y }\n    token: *t\n    expect: deny\n",
			&Test{Name: "f", Method: "GET", Path: "/y", Token: &Token{Scopes: []string{"a"}}, Expect: Expect{Decision: OutcomeDeny}, File: "t.yaml", Line: 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTests("t.yaml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if last := got[len(got)-1]; !reflect.DeepEqual(last, tt.want) {
				t.Errorf("got  %+v\nwant %+v", last, tt.want)
			}
		})
	}
}

func TestPolicyTestsSection(t *testing.T) {
	p := mustParse(t, "version: 1\nroutes:\n  - name: r\n    match: { path: /x }\n"+
		"tests:\n  - name: a\n    request: { method: GET, path: /x }\n    token: none\n    expect: deny\n")
	if len(p.Tests) != 1 || p.Tests[0].Name != "a" || p.Tests[0].File != "test.yaml" || p.Tests[0].Line != 6 {
		t.Fatalf("Tests = %+v, want test a of test.yaml at line 6", p.Tests)
	}
}

func TestParseTestsErrors(t *testing.T) {
	const head = "tests:\n  - name: a\n    request: { method: GET, path: /x }\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"no_tests", "tests: []\n", []string{"t.yaml:1:", "tests", "at least one test case"}},
		{"unknown_claim_is_an_error_inside_the_union", head + "    token: { scope: [a] }\n    expect: allow\n",
			[]string{"t.yaml:4:", `unknown field "scope"`}},
		{"duplicate_claim", head + "    token: { client_id: a, client_id: b }\n    expect: allow\n",
			[]string{"t.yaml:4:", `"client_id" already defined`}},
		{"unknown_expect_field", head + "    token: none\n    expect: { status: 403, why: x }\n",
			[]string{"t.yaml:5:", `unknown field "why"`}},
		{"token_word_other_than_none", head + "    token: anonymous\n    expect: allow\n",
			[]string{"t.yaml:4:", "tests[0].token", `"anonymous"`, "want none"}},
		{"token_required", head + "    expect: allow\n",
			[]string{"t.yaml:2:", "tests[0].token", "is required"}},
		{"unknown_outcome", head + "    token: none\n    expect: allowed\n",
			[]string{"t.yaml:5:", "tests[0].expect", `"allowed"`, "would_deny"}},
		{"reason_alone_is_not_enough", head + "    token: none\n    expect: { reason: token_missing }\n",
			[]string{"t.yaml:5:", "tests[0].expect", "needs a decision"}},
		{"allow_with_a_deny_status", head + "    token: none\n    expect: { decision: allow, status: 403 }\n",
			[]string{"t.yaml:5:", "tests[0].expect.status", "an allow has status 200"}},
		{"would_deny_with_status_200", head + "    token: none\n    expect: { decision: would_deny, status: 200 }\n",
			[]string{"t.yaml:5:", "tests[0].expect.status", "status of the deny"}},
		{"status_out_of_range", head + "    token: none\n    expect: { status: 99 }\n",
			[]string{"t.yaml:5:", "tests[0].expect.status", "99 is not an HTTP status"}},
		{"bad_method", "tests:\n  - name: a\n    request: { method: \"GET /\", path: /x }\n    token: none\n    expect: deny\n",
			[]string{"t.yaml:3:", "tests[0].request.method", "not an HTTP method"}},
		{"path_required", "tests:\n  - name: a\n    request: { method: GET }\n    token: none\n    expect: deny\n",
			[]string{"t.yaml:3:", "tests[0].request.path", "is required"}},
		{"duplicate_test_name", head + "    token: none\n    expect: deny\n  - name: a\n    request: { method: GET, path: /y }\n    token: none\n    expect: deny\n",
			[]string{"t.yaml:6:", "tests[1].name", `duplicate test name "a"`, "line 2"}},
		{"other_top_level_field", "version: 1\n" + head + "    token: none\n    expect: deny\n",
			[]string{"t.yaml:1:", `unknown field "version"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTests("t.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("ParseTests succeeded with %d tests, want an error containing %q", len(got), tt.want)
			}
			errs := problems(t, err)
			if len(errs) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(errs), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs[0].Error(), w) {
					t.Errorf("error = %v\nwant it to contain %q", errs[0], w)
				}
			}
		})
	}
}
