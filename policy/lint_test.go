package policy

import (
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	type want struct {
		check string
		line  int
		has   []string // substrings of the message
	}
	tests := []struct {
		name   string
		routes string
		want   []want
	}{
		{"more_specific_path_with_another_requirement_is_reported_at_the_winner", `
  - name: read
    match: { methods: [GET], path: "/orders/**" }
    require: { scopes: { all_of: [orders:read] } }
  - name: cancel
    match: { path: "/orders/{id}/cancel" }
    require: { scopes: { all_of: [orders:write] } }
`, []want{{"overlap", 7, []string{
			`route "cancel" and route "read" at line 3 both match GET /orders/1/cancel`,
			`"cancel" decides it because its path /orders/{id}/cancel is more specific than "read"'s /orders/**: segment 2 is the parameter {id} where the other has **`,
			`"cancel" requires scopes all_of [orders:write], while "read" requires scopes all_of [orders:read]`}}}},
		{"same_outcome_is_not_reported", `
  - name: a
    match: { path: "/orders/**" }
    require: { scopes: { all_of: [x] } }
  - name: b
    match: { path: "/orders/{id}" }
    require: { scopes: { all_of: [x] } }
`, nil},
		{"disjoint_methods_do_not_overlap", `
  - name: a
    match: { methods: [GET], path: "/orders/**" }
  - name: b
    match: { methods: [POST], path: "/orders/{id}" }
    deny: true
`, nil},
		{"disjoint_hosts_do_not_overlap", `
  - name: a
    match: { hosts: [a.example.com], path: /x }
  - name: b
    match: { hosts: ["*.b.example.com"], path: /x }
    deny: true
`, nil},
		{"disjoint_literals_do_not_overlap", `
  - name: a
    match: { path: /x/** }
  - name: b
    match: { path: /y/** }
    deny: true
`, nil},
		{"exact_host_beats_no_host", `
  - name: any
    match: { path: /x }
    require: { scopes: { all_of: [a] } }
  - name: api
    match: { hosts: [api.example.com], path: "/**" }
    public: true
`, []want{{"overlap", 7, []string{"both match GET /x on host api.example.com",
			`because its exact host api.example.com beats "any"'s lack of a host constraint`, `"api" is public`}}}},
		{"longer_wildcard_beats_shorter", `
  - name: short
    match: { hosts: ["*.example.com"], path: /x }
  - name: long
    match: { hosts: ["*.eu.example.com"], path: /x }
    deny: true
`, []want{{"overlap", 6, []string{"on host x.eu.example.com",
			`its host wildcard *.eu.example.com beats "short"'s host wildcard *.example.com`, `"long" denies every request`, `"short" admits any valid token`}}}},
		{"method_list_beats_none", `
  - name: any
    match: { path: /x }
    deny: true
  - name: get
    match: { methods: [GET, HEAD], path: /x }
`, []want{{"overlap", 7, []string{"both match GET /x", `it lists methods and "any" lists none`}}}},
		{"ending_path_beats_rest", `
  - name: rest
    match: { path: /orders/** }
    deny: true
  - name: list
    match: { path: /orders }
`, []want{{"overlap", 7, []string{"both match GET /orders", "it ends where the other goes on with /**"}}}},
		{"dry_run_winner_says_it_loosens", `
  - name: old
    match: { path: /orders/** }
    require: { scopes: { all_of: [orders:read] } }
  - name: new
    match: { path: "/orders/{id}" }
    require: { scopes: { all_of: [orders:read, orders:audit] } }
    mode: dry_run
`, []want{{"overlap", 7, []string{`(dry run)`, `while "new" is in dry run, requests that "old" would deny are allowed`}}}},
		{"catch_all_is_a_default_and_not_reported", `
  - name: everything
    match: { path: "/**" }
    deny: true
  - name: orders
    match: { path: /orders }
`, nil},
		{"scope_no_issuer_grants", `
  - name: a
    match: { path: /a }
    require: { scopes: { all_of: [orders:read], any_of: [orders:wirte, orders:admin] } }
issuers:
  - issuer: https://idp.example.com
    scopes: [orders:read, orders:write, orders:admin]
`, []want{{"unknown_scope", 5, []string{`route "a" requires scope "orders:wirte", which no issuer in issuers grants`}}}},
		{"head_from_get_overlaps_a_route_listing_head", `
  - name: probes
    match: { methods: [HEAD], path: "/orders/**" }
    public: true
  - name: order
    match: { methods: [GET], path: "/orders/{id}" }
    require: { scopes: { all_of: [orders:read] } }
`, []want{{"overlap", 7, []string{`route "order" and route "probes" at line 3 both match HEAD /orders/1`, `"probes" is public`}}}},
		{"route_listing_head_takes_head_from_the_route_listing_get", `
  - name: get
    match: { methods: [GET], path: /x }
    require: { scopes: { all_of: [a] } }
  - name: head
    match: { methods: [HEAD], path: /x }
    public: true
`, nil},
		{"different_issuers_are_different_outcomes", `
  - name: corp
    match: { path: "/orders/**" }
    require: { issuers: [https://idp.example.com] }
  - name: partner
    match: { path: "/orders/{id}" }
    require: { issuers: [https://partner.example.com] }
`, []want{{"overlap", 7, []string{`"partner" requires issuers [https://partner.example.com], while "corp" requires issuers [https://idp.example.com]`}}}},
		{"issuer_the_issuers_section_lacks", `
  - name: a
    match: { path: /a }
    require:
      issuers: [https://idp.example.com, https://idp.exmaple.com]
issuers:
  - issuer: https://idp.example.com
    scopes: [orders:read]
`, []want{{"unknown_issuer", 6, []string{`route "a" requires issuer "https://idp.exmaple.com", which issuers does not list`}}}},
		{"scope_none_of_the_route_issuers_grants", `
  - name: a
    match: { path: /a }
    require: { issuers: [https://partner.example.com], scopes: { all_of: [orders:read] } }
issuers:
  - issuer: https://idp.example.com
    scopes: [orders:read]
  - issuer: https://partner.example.com
    scopes: [partner:read]
`, []want{{"unknown_scope", 5, []string{`route "a" requires scope "orders:read", which none of its issuers grants`}}}},
		{"scopes_are_not_checked_against_an_unknown_issuer", `
  - name: a
    match: { path: /a }
    require: { issuers: [https://other.example.com], scopes: { all_of: [anything] } }
issuers:
  - issuer: https://idp.example.com
    scopes: [orders:read]
`, []want{{"unknown_issuer", 5, []string{`"https://other.example.com"`}}}},
		{"issuers_are_not_checked_without_issuers", `
  - name: a
    match: { path: /a }
    require: { issuers: [https://anything.example.com] }
`, nil},
		{"principal_only_route_is_reported", `
  - name: internal
    match: { path: "/internal/**" }
    require:
      principals: ["spiffe://cluster.local/ns/ops/sa/*"]
      token: false
`, []want{{"principal_only", 7, []string{`route "internal" admits the peers [spiffe://cluster.local/ns/ops/sa/*] on their mTLS principal alone, without a token`}}}},
		{"principals_with_a_token_are_not_reported", `
  - name: internal
    match: { path: "/internal/**" }
    require: { principals: ["spiffe://cluster.local/ns/ops/sa/*"], token: true }
`, nil},
		{"overlap_with_context_shows_the_context", `
  - name: read
    match: { path: "/orders/**" }
    require: { scopes: { all_of: [orders:read] } }
  - name: billing
    match: { path: "/orders/**", context: { route: billing } }
    require: { scopes: { all_of: [billing] } }
`, []want{{"overlap", 7, []string{
			`route "billing" and route "read" at line 3 both match GET /orders with route context {route: billing}`,
			`because it matches the route context {route: billing} and "read" matches none`}}}},
		{"routes_whose_contexts_disagree_do_not_overlap", `
  - name: a
    match: { path: "/orders/**", context: { route: a } }
    require: { scopes: { all_of: [a] } }
  - name: b
    match: { path: "/orders/**", context: { route: b } }
    require: { scopes: { all_of: [b] } }
`, nil},
		{"scopes_are_not_checked_without_issuers", `
  - name: a
    match: { path: /a }
    require: { scopes: { all_of: [anything] } }
`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Lint(mustParse(t, "version: 1\nroutes:"+tt.routes))
			if len(got) != len(tt.want) {
				var msgs []string
				for _, w := range got {
					msgs = append(msgs, w.String())
				}
				t.Fatalf("got %d warnings, want %d:\n%s", len(got), len(tt.want), strings.Join(msgs, "\n"))
			}
			for i, w := range got {
				if w.Check != tt.want[i].check || w.Line != tt.want[i].line || w.File != "test.yaml" {
					t.Errorf("warning %d: check %q at %s:%d, want %q at test.yaml:%d", i, w.Check, w.File, w.Line, tt.want[i].check, tt.want[i].line)
				}
				for _, s := range tt.want[i].has {
					if !strings.Contains(w.Msg, s) {
						t.Errorf("warning %d = %s\nwant it to contain %s", i, w.Msg, s)
					}
				}
				if w.Source == "" {
					t.Errorf("warning %d has no source line", i)
				}
			}
		})
	}
}

func TestLintOnAPolicyNotFromParse(t *testing.T) {
	if got := Lint(&Policy{Routes: []*Route{{Name: "a", Path: "/a"}, {Name: "b", Path: "/a", Deny: true}}}); got != nil {
		t.Errorf("Lint = %v, want nil: without the file there is nothing to point at", got)
	}
}

func TestWarningString(t *testing.T) {
	w := &Warning{File: "p.yaml", Line: 3, Column: 5, Field: "routes[0].match", Msg: "m"}
	if got, want := w.String(), "p.yaml:3:5: routes[0].match: m"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
