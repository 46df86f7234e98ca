package policy

import (
	"strings"
	"testing"
)

func TestPrincipalPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		in      []string // principals that meet it
		out     []string // principals that do not
	}{
		{"spiffe://cluster.local/ns/billing/sa/api",
			[]string{"spiffe://cluster.local/ns/billing/sa/api"},
			[]string{"spiffe://cluster.local/ns/billing/sa/api2", "spiffe://cluster.local/ns/billing/sa/api/x", "spiffe://other.local/ns/billing/sa/api", "SPIFFE://cluster.local/ns/billing/sa/api", ""}},
		{"spiffe://cluster.local/ns/billing/sa/*",
			[]string{"spiffe://cluster.local/ns/billing/sa/api", "spiffe://cluster.local/ns/billing/sa/worker"},
			[]string{"spiffe://cluster.local/ns/billing/sa", "spiffe://cluster.local/ns/billing/sa/api/x", "spiffe://cluster.local/ns/billing/saxx/api",
				"spiffe://cluster.local/ns/orders/sa/api", "spiffe://evil.local/ns/billing/sa/api",
				// Not SPIFFE IDs: a dot segment, a percent sign, a trailing slash, an upper-case trust domain.
				"spiffe://cluster.local/ns/billing/sa/..", "spiffe://cluster.local/ns/billing/sa/a%2Fb", "spiffe://cluster.local/ns/billing/sa/api/",
				"spiffe://Cluster.local/ns/billing/sa/api"}},
		{"spiffe://cluster.local/ns/billing/**",
			[]string{"spiffe://cluster.local/ns/billing", "spiffe://cluster.local/ns/billing/sa/api", "spiffe://cluster.local/ns/billing/sa/api/x"},
			[]string{"spiffe://cluster.local/ns/billingx", "spiffe://cluster.local/ns/billing/../orders/sa/x", "spiffe://cluster.local.evil/ns/billing/sa/api"}},
		{"spiffe://cluster.local/**",
			[]string{"spiffe://cluster.local/ns/a/sa/b", "spiffe://cluster.local"},
			[]string{"spiffe://cluster.localx/ns/a", "spiffe://other/ns/a", "cluster.local"}},
		{"orders.internal",
			[]string{"orders.internal"},
			[]string{"ORDERS.internal", "orders.internal.", "spiffe://orders.internal/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			p := mustParse(t, "version: 1\nroutes:\n  - name: r\n    match: { path: /x }\n    require: { principals: [\""+tt.pattern+"\"] }\n")
			req := &p.Routes[0].Require
			for _, s := range tt.in {
				if !req.PrincipalAllowed(s) {
					t.Errorf("%q does not meet %q", s, tt.pattern)
				}
			}
			for _, s := range tt.out {
				if req.PrincipalAllowed(s) {
					t.Errorf("%q meets %q", s, tt.pattern)
				}
			}
			byHand := Requirement{Principals: []string{tt.pattern}}
			for _, s := range append(tt.in, tt.out...) {
				if byHand.PrincipalAllowed(s) != req.PrincipalAllowed(s) {
					t.Errorf("a Requirement built by hand decides %q otherwise", s)
				}
			}
		})
	}
}

func TestPrincipalAllowedWithoutPrincipalsAdmitsEveryPeer(t *testing.T) {
	var r Requirement
	for _, s := range []string{"", "spiffe://a/b", "anything"} {
		if !r.PrincipalAllowed(s) {
			t.Errorf("%q refused by a route without principals", s)
		}
	}
}

func TestPrincipalAllowedDoesNotAllocate(t *testing.T) {
	p := mustParse(t, `version: 1
routes:
  - name: r
    match: { path: /x }
    require: { principals: ["spiffe://td/ns/a/sa/*", "spiffe://td/ns/b/**", "spiffe://td/ns/c/sa/d", dns.example] }
`)
	req := &p.Routes[0].Require
	for _, s := range []string{"spiffe://td/ns/a/sa/x", "spiffe://td/ns/b/sa/x/y", "spiffe://td/ns/z/sa/x", "dns.example", "spiffe://bad/%"} {
		if n := testing.AllocsPerRun(100, func() { req.PrincipalAllowed(s) }); n != 0 {
			t.Errorf("PrincipalAllowed(%q) made %v allocations, want 0", s, n)
		}
	}
}

func TestParsePrincipalsAndTokenErrors(t *testing.T) {
	const head = "version: 1\nroutes:\n  - name: r\n    match: { path: /x }\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"wildcard_inside", head + "    require: { principals: [\"spiffe://td/ns/*/sa/api\"] }\n", []string{"test.yaml:5:", "routes[0].require.principals[0]", "wildcard before its end"}},
		{"partial_wildcard", head + "    require: { principals: [\"spiffe://td/ns/a*\"] }\n", []string{":5:", "principals[0]", "wildcard before its end"}},
		{"wildcard_trust_domain", head + "    require: { principals: [\"spiffe://*/ns/a\"] }\n", []string{":5:", "principals[0]", "wildcard before its end"}},
		{"bad_trust_domain", head + "    require: { principals: [\"spiffe://Cluster.Local/ns/a\"] }\n", []string{":5:", "principals[0]", "is not a SPIFFE ID", "trust domain characters"}},
		{"dot_segment", head + "    require: { principals: [\"spiffe://td/ns/../a\"] }\n", []string{":5:", "principals[0]", "is not a SPIFFE ID", "dot segment"}},
		{"upper_case_scheme", head + "    require: { principals: [\"SPIFFE://td/ns/a\"] }\n", []string{":5:", "principals[0]", "is not a SPIFFE ID", "scheme"}},
		{"trust_domain_alone", head + "    require: { principals: [\"spiffe://td\"] }\n", []string{":5:", "principals[0]", "names a trust domain", "spiffe://td/**"}},
		{"wildcard_in_a_dns_name", head + "    require: { principals: [\"*.example.com\"] }\n", []string{":5:", "principals[0]", "only a SPIFFE ID may end in"}},
		{"second_principal_bad", "version: 1\nroutes:\n  - name: r\n    match: { path: /x }\n    require:\n      principals:\n        - spiffe://td/a\n        - spiffe://td/b/\n",
			[]string{":8:", "routes[0].require.principals[1]", "is not a SPIFFE ID"}},
		{"empty_principals", head + "    require: { principals: [] }\n", []string{":5:", "principals", "allow any peer"}},
		{"token_false_without_principals", head + "    require: { token: false }\n", []string{":5:", "routes[0].require.token", "needs principals"}},
		{"token_false_with_scopes", head + "    require:\n      principals: [spiffe://td/a]\n      token: false\n      scopes: { all_of: [a] }\n",
			[]string{":7:", "routes[0].require.token", "cannot also require scopes"}},
		{"token_false_with_clients", head + "    require: { principals: [spiffe://td/a], token: false, clients: [c] }\n", []string{":5:", "require.token", "cannot also require"}},
		{"token_false_with_a_binding", head + "    require: { principals: [spiffe://td/a], token: false, binding: mtls }\n", []string{":5:", "require.token", "or a binding"}},
		{"token_not_a_bool", head + "    require: { principals: [spiffe://td/a], token: maybe }\n", []string{":5:", "require", "want true or false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("test.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded with routes %v, want an error containing %q", p.Routes, tt.want)
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

func TestParsePrincipalOnly(t *testing.T) {
	p := mustParse(t, `version: 1
routes:
  - name: internal
    match: { path: "/internal/**" }
    require: { principals: ["spiffe://td/ns/ops/**"], token: false }
  - name: both
    match: { path: "/orders/**" }
    require: { principals: ["spiffe://td/ns/ops/**"], token: true, scopes: { all_of: [a] } }
`)
	if r := routeByName(p, "internal"); !r.Require.PrincipalOnly || r.Require.Principals[0] != "spiffe://td/ns/ops/**" {
		t.Errorf("internal: %+v, want principal-only", r.Require)
	}
	if r := routeByName(p, "both"); r.Require.PrincipalOnly {
		t.Errorf("both: token: true made the route principal-only")
	}
	if got, want := routeByName(p, "internal").Effect(), "requires principals [spiffe://td/ns/ops/**] and no token"; got != want {
		t.Errorf("Effect() = %q, want %q", got, want)
	}
}
