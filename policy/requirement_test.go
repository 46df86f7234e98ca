package policy

import (
	"reflect"
	"testing"
)

func TestRequirementScopes(t *testing.T) {
	both := Requirement{AllOf: []string{"a", "b"}, AnyOf: []string{"x", "y"}}
	tests := []struct {
		name    string
		req     Requirement
		granted []string
		met     bool
		missing []string
	}{
		{"nothing_required_is_met_by_nothing", Requirement{}, nil, true, nil},
		{"all_of_needs_every_scope", Requirement{AllOf: []string{"a", "b"}}, []string{"b", "c"}, false, []string{"a"}},
		{"all_of_met", Requirement{AllOf: []string{"a", "b"}}, []string{"b", "a"}, true, nil},
		{"any_of_needs_one_scope", Requirement{AnyOf: []string{"x", "y"}}, []string{"y"}, true, nil},
		{"any_of_unmet_lists_all_of_any_of", Requirement{AnyOf: []string{"x", "y"}}, []string{"a"}, false, []string{"x", "y"}},
		{"both_met", both, []string{"a", "b", "y"}, true, nil},
		{"both_need_all_of", both, []string{"a", "x"}, false, []string{"b"}},
		{"both_need_any_of", both, []string{"a", "b"}, false, []string{"x", "y"}},
		{"both_unmet", both, nil, false, []string{"a", "b", "x", "y"}},
		{"scopes_compare_exactly", Requirement{AllOf: []string{"orders:read"}}, []string{"Orders:read", "orders:read:all"}, false, []string{"orders:read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.req.ScopesMet(tt.granted); got != tt.met {
				t.Errorf("ScopesMet(%q) = %v, want %v", tt.granted, got, tt.met)
			}
			got, anyOf := tt.req.MissingScopes(tt.granted)
			if anyOf {
				got = append(got, tt.req.AnyOf...)
			}
			if !reflect.DeepEqual(got, tt.missing) {
				t.Errorf("MissingScopes(%q) = %q, want %q", tt.granted, got, tt.missing)
			}
		})
	}
}

func TestRequirementScopesMetDoesNotAllocate(t *testing.T) {
	r := Requirement{AllOf: []string{"a", "b"}, AnyOf: []string{"x", "y"}}
	granted := []string{"a", "b", "y"}
	if n := testing.AllocsPerRun(100, func() { r.ScopesMet(granted) }); n != 0 {
		t.Errorf("ScopesMet made %v allocations, want 0", n)
	}
}

func TestRequirementRequired(t *testing.T) {
	p := mustParse(t, `version: 1
routes:
  - name: r
    match: { path: /x }
    require: { scopes: { all_of: [a, b], any_of: [x] } }
  - name: none
    match: { path: /y }
`)
	r := &p.Routes[0].Require
	if got, want := r.Required(), []string{"a", "b", "x"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Required() = %q, want %q", got, want)
	}
	if &r.Required()[0] != &r.Required()[0] {
		t.Error("Required returns a new slice on each call, want the one computed by Parse")
	}
	if n := testing.AllocsPerRun(100, func() { r.Required() }); n != 0 {
		t.Errorf("Required made %v allocations, want 0", n)
	}
	if got := p.Routes[1].Require.Required(); got != nil {
		t.Errorf("Required() with no scopes = %q, want nil", got)
	}
	handmade := Requirement{AllOf: []string{"a"}, AnyOf: []string{"x"}}
	if got, want := handmade.Required(), []string{"a", "x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Required() of a hand-built Requirement = %q, want %q", got, want)
	}
}

func TestRequirementClientAllowed(t *testing.T) {
	if !(&Requirement{}).ClientAllowed("anyone") {
		t.Error("empty Clients refuses a client, want any allowed")
	}
	r := Requirement{Clients: []string{"billing-svc", "ops"}}
	if !r.ClientAllowed("ops") {
		t.Error(`ClientAllowed("ops") = false, want true`)
	}
	for _, id := range []string{"", "OPS", "billing"} {
		if r.ClientAllowed(id) {
			t.Errorf("ClientAllowed(%q) = true, want false", id)
		}
	}
}

func TestRequirementIssuerAllowed(t *testing.T) {
	if !(&Requirement{}).IssuerAllowed("") {
		t.Error("empty Issuers refuses a token, want any issuer allowed")
	}
	r := Requirement{Issuers: []string{"https://idp.example.com", "https://partner.example.com"}}
	tests := []struct {
		iss  string
		want bool
	}{
		{"https://partner.example.com", true},
		{"https://idp.example.com", true},
		{"https://idp.example.com/", false}, // iss compares exactly (RFC 7519 section 4.1.1)
		{"https://IDP.example.com", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := r.IssuerAllowed(tt.iss); got != tt.want {
			t.Errorf("IssuerAllowed(%q) = %v, want %v", tt.iss, got, tt.want)
		}
	}
}

func TestRequirementAudienceAllowed(t *testing.T) {
	if !(&Requirement{}).AudienceAllowed(nil) {
		t.Error("empty Audiences refuses a token, want any allowed")
	}
	r := Requirement{Audiences: []string{"orders-api", "billing-api"}}
	tests := []struct {
		aud  []string
		want bool
	}{
		{[]string{"other", "billing-api"}, true},
		{[]string{"orders-api"}, true},
		{[]string{"other"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := r.AudienceAllowed(tt.aud); got != tt.want {
			t.Errorf("AudienceAllowed(%q) = %v, want %v", tt.aud, got, tt.want)
		}
	}
}
