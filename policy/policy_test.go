package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/scopegate/scopegate/internal/yamlfile"
)

func TestLoad(t *testing.T) {
	p, err := Load("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.File != "testdata/policy.yaml" {
		t.Errorf("File = %q", p.File)
	}
	if p.Default != DefaultAuthenticated {
		t.Errorf("Default = %q, want %q", p.Default, DefaultAuthenticated)
	}
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(p.Version) {
		t.Errorf("Version = %q, want 12 hex digits", p.Version)
	}
	want := []Route{
		{Name: "health", Public: true, Path: "/healthz", Line: 4},
		{Name: "read-orders", Methods: []string{"GET", "HEAD"}, Path: "/orders/**", Line: 7,
			Require: Requirement{AllOf: []string{"orders:read"}}},
		{Name: "create-order", Methods: []string{"POST"}, Hosts: []string{"api.example.com"}, Path: "/orders", Line: 10,
			Require: Requirement{AnyOf: []string{"orders:write", "orders:admin"}, Clients: []string{"billing-svc"}, Audiences: []string{"orders-api"}}},
		{Name: "admin", Deny: true, Path: "/admin/**", Line: 16},
		{Name: "profile", Hosts: []string{"*.example.com"}, Path: "/users/{id}/profile", Line: 19},
	}
	if len(p.Routes) != len(want) {
		t.Fatalf("got %d routes, want %d", len(p.Routes), len(want))
	}
	for i, r := range p.Routes {
		got := *r
		got.Require.required = nil // checked by TestRequirement
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("route %d:\n got %+v\nwant %+v", i, got, want[i])
		}
	}
}

func TestParse(t *testing.T) {
	t.Run("version_is_a_hash_of_the_bytes", func(t *testing.T) {
		a := mustParse(t, "version: 1\n")
		b := mustParse(t, "version: 1\n# a comment\n")
		if a.Version == b.Version {
			t.Errorf("different files have the same version %q", a.Version)
		}
		if again := mustParse(t, "version: 1\n"); again.Version != a.Version {
			t.Errorf("same file: versions %q and %q", a.Version, again.Version)
		}
	})
	t.Run("default_is_deny_when_absent", func(t *testing.T) {
		if p := mustParse(t, "version: 1\n"); p.Default != DefaultDeny {
			t.Errorf("Default = %q, want %q", p.Default, DefaultDeny)
		}
	})
	t.Run("route_with_neither_public_deny_nor_require_asks_for_any_token", func(t *testing.T) {
		p := mustParse(t, "version: 1\nroutes:\n  - name: any\n    match: { path: /x }\n")
		r := p.Routes[0]
		if r.Public || r.Deny || !reflect.DeepEqual(r.Require, Requirement{}) {
			t.Errorf("route = %+v, want neither public nor deny and an empty requirement", *r)
		}
	})
	t.Run("pattern_is_written_canonically", func(t *testing.T) {
		p := mustParse(t, "version: 1\nroutes:\n  - name: x\n    match: { path: \"//caf%65/%c3%a9//{id}/**/\" }\n")
		if got, want := p.Routes[0].Path, "/cafe/%C3%A9/{id}/**"; got != want {
			t.Errorf("Path = %q, want %q", got, want)
		}
	})
	t.Run("pattern_literals_decode_escaped_sub_delims", func(t *testing.T) {
		p := mustParse(t, "version: 1\nroutes:\n  - name: x\n    match: { path: \"/v1/jobs/nightly%3arun/%40me%2C%21\" }\n")
		if got, want := p.Routes[0].Path, "/v1/jobs/nightly:run/@me,!"; got != want {
			t.Errorf("Path = %q, want %q", got, want)
		}
	})
	t.Run("methods_stay_as_written_when_get_also_matches_head", func(t *testing.T) {
		p := mustParse(t, "version: 1\nroutes:\n  - name: x\n    match: { path: /x, methods: [get] }\n")
		if got := p.Routes[0].Methods; !reflect.DeepEqual(got, []string{"GET"}) {
			t.Errorf("Methods = %q, want [GET]", got)
		}
	})
	t.Run("route_listing_head_and_route_listing_get_do_not_tie", func(t *testing.T) {
		mustParse(t, "version: 1\nroutes:\n  - name: get\n    match: { path: /x, methods: [GET] }\n  - name: head\n    match: { path: /x, methods: [HEAD] }\n")
	})
	t.Run("required_issuers_keep_their_order", func(t *testing.T) {
		p := mustParse(t, "version: 1\nroutes:\n  - name: x\n    match: { path: /x }\n    require: { issuers: [https://b.example.com, https://a.example.com] }\n")
		if got, want := p.Routes[0].Require.Issuers, []string{"https://b.example.com", "https://a.example.com"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Issuers = %q, want %q", got, want)
		}
	})
	t.Run("list_items_are_strings_as_written", func(t *testing.T) {
		p := mustParse(t, "version: 1\nroutes:\n  - name: x\n    match: { path: /x }\n    require: { scopes: { all_of: [orders:read, 1e3] }, clients: [0123, true] }\n")
		r := p.Routes[0].Require
		if !reflect.DeepEqual(r.AllOf, []string{"orders:read", "1e3"}) || !reflect.DeepEqual(r.Clients, []string{"0123", "true"}) {
			t.Errorf("AllOf = %q, Clients = %q", r.AllOf, r.Clients)
		}
	})
	t.Run("routes_take_the_policy_mode_unless_they_set_their_own", func(t *testing.T) {
		p := mustParse(t, "version: 1\nmode: dry_run\nroutes:\n"+
			"  - name: inherits\n    match: { path: /a }\n"+
			"  - name: enforced\n    match: { path: /b }\n    mode: enforce\n"+
			"  - name: open\n    match: { path: /c }\n    public: true\n")
		if !p.DryRun {
			t.Error("policy DryRun = false, want true")
		}
		for _, want := range []struct {
			name   string
			dryRun bool
		}{{"inherits", true}, {"enforced", false}, {"open", false}} {
			if r := routeByName(p, want.name); r.DryRun != want.dryRun {
				t.Errorf("route %s: DryRun = %v, want %v", want.name, r.DryRun, want.dryRun)
			}
		}
	})
	t.Run("mode_is_enforce_when_absent", func(t *testing.T) {
		p := mustParse(t, "version: 1\nroutes:\n  - name: r\n    match: { path: /a }\n    deny: true\n")
		if p.DryRun || p.Routes[0].DryRun {
			t.Errorf("DryRun = %v, route DryRun = %v, want both false", p.DryRun, p.Routes[0].DryRun)
		}
	})
	t.Run("issuers_list_their_scopes", func(t *testing.T) {
		p := mustParse(t, "version: 1\nissuers:\n  - issuer: https://idp.example.com\n    scopes: [a, b, a]\n")
		want := []*Issuer{{Issuer: "https://idp.example.com", Scopes: []string{"a", "b"}, Line: 3}}
		if !reflect.DeepEqual(p.Issuers, want) {
			t.Errorf("Issuers = %+v, want %+v", p.Issuers, want)
		}
	})
	t.Run("duplicates_in_lists_are_dropped", func(t *testing.T) {
		p := mustParse(t, "version: 1\nroutes:\n  - name: x\n    match: { path: /x, methods: [GET, get], hosts: [a.example.com, A.example.com.] }\n")
		r := p.Routes[0]
		if !reflect.DeepEqual(r.Methods, []string{"GET"}) || !reflect.DeepEqual(r.Hosts, []string{"a.example.com"}) {
			t.Errorf("Methods = %q, Hosts = %q", r.Methods, r.Hosts)
		}
	})
}

func routeByName(p *Policy, name string) *Route {
	for _, r := range p.Routes {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return p
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/absent.yaml")
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "testdata/absent.yaml") {
		t.Errorf("err = %v, want a not-exist error naming the file", err)
	}
}

// loadErrors returns the problems Load reports for a file.
func loadErrors(t *testing.T, name string) []*yamlfile.Error {
	t.Helper()
	p, err := Load(name)
	if err == nil {
		t.Fatalf("Load(%s) succeeded with %d routes, want an error", name, len(p.Routes))
	}
	return problems(t, err)
}

func problems(t *testing.T, err error) []*yamlfile.Error {
	t.Helper()
	var list yamlfile.Errors
	if errors.As(err, &list) {
		return list
	}
	var one *yamlfile.Error
	if errors.As(err, &one) {
		return []*yamlfile.Error{one}
	}
	t.Fatalf("error %T is neither yamlfile.Errors nor *yamlfile.Error: %v", err, err)
	return nil
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // one per problem: substrings of its message
	}{
		{"unknown_field", "unknown_field.yaml", []string{
			"unknown_field.yaml:5:", `unknown field "publik"`}},
		{"wrong_type", "wrong_type.yaml", []string{
			"wrong_type.yaml:5:", "routes[0].public", `got a string ("sometimes"), want true or false`}},
		{"duplicate_route_name_names_both_lines", "duplicate_name.yaml", []string{
			"duplicate_name.yaml:7:", "routes[2].name", `duplicate route name "orders"`, "line 3"}},
		{"rest_in_the_middle_of_a_pattern", "bad_pattern.yaml", []string{
			"bad_pattern.yaml:7:", "routes[1].match.path", "** is allowed only as the last segment"}},
		{"public_route_with_require", "public_require.yaml", []string{
			"public_require.yaml:7:", "routes[0].require", "public route"}},
		{"identical_routes_name_both", "identical.yaml", []string{
			"identical.yaml:8:", "routes[2].match", `"fetch-order" matches exactly the same requests as route "get-order" at line 3`}},
		{"every_problem_is_reported_at_once", "many_errors.yaml", []string{
			"many_errors.yaml:1:", "version", "is 2",
			"many_errors.yaml:2:", "default", `"allow"`,
			"many_errors.yaml:4:", "routes[0].name", `"bad name"`,
			"many_errors.yaml:5:", "routes[0].match.path", `"orders" does not start with /`,
			"many_errors.yaml:7:", "routes[1].match.methods[0]", `"GET /" is not an HTTP method`,
			"many_errors.yaml:9:", "routes[1].deny", "both public and deny",
			"many_errors.yaml:10:", "routes[2].name", "is required",
			"many_errors.yaml:10:", "routes[2].match.hosts[0]", "port",
			"many_errors.yaml:11:", "routes[2].require.scopes.all_of[0]", "is empty",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := loadErrors(t, filepath.Join("testdata", tt.file))
			// The wants are grouped per problem: each group starts with
			// the file name.
			var groups [][]string
			for _, w := range tt.want {
				if strings.HasPrefix(w, tt.file) {
					groups = append(groups, nil)
				}
				groups[len(groups)-1] = append(groups[len(groups)-1], w)
			}
			if len(errs) != len(groups) {
				t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(groups), yamlfile.Errors(errs))
			}
			for i, e := range errs {
				msg := e.Error()
				if !strings.HasPrefix(msg, "testdata/") {
					t.Errorf("problem %d does not start with the file path: %s", i, msg)
				}
				for _, w := range groups[i] {
					if !strings.Contains(msg, w) {
						t.Errorf("problem %d = %s\nwant it to contain %q", i, msg, w)
					}
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const head = "version: 1\nroutes:\n  - name: r\n"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"missing_version", "routes: []\n", []string{"test.yaml", "version", "is required"}},
		{"duplicate_key", "version: 1\nversion: 1\n", []string{"test.yaml:2:", `"version" already defined`}},
		{"not_yaml", "version: [1\n", []string{"test.yaml:1:"}},
		{"mapping_for_a_list", "version: 1\nroutes: !!map {}\n", []string{"test.yaml:2:", "routes", "got a mapping, want a list"}},
		{"match_required", head, []string{"test.yaml:3:", "routes[0].match", "is required"}},
		{"path_required", head + "    match: { methods: [GET] }\n", []string{"test.yaml:4:", "routes[0].match.path", "is required"}},
		{"pattern_with_query", head + "    match: { path: \"/x?y=1\" }\n", []string{":4:", "routes[0].match.path", "query"}},
		{"pattern_with_encoded_slash", head + "    match: { path: /a%2Fb }\n", []string{":4:", "routes[0].match.path", `encoded slash "%2F" at byte 2`}},
		{"pattern_with_dot_segment", head + "    match: { path: /a/%2e%2e/b }\n", []string{":4:", "routes[0].match.path", "dot segment"}},
		{"pattern_with_semicolon", head + "    match: { path: \"/a;v=1/b\" }\n", []string{":4:", "routes[0].match.path", "semicolon at byte 2"}},
		{"pattern_with_encoded_semicolon", head + "    match: { path: /a%3bb }\n", []string{":4:", "routes[0].match.path", "encoded semicolon %3B at byte 2"}},
		{"pattern_with_encoded_asterisk", head + "    match: { path: /a/%2A }\n", []string{":4:", "routes[0].match.path", "%2A is *"}},
		{"pattern_with_partial_wildcard", head + "    match: { path: /a/b* }\n", []string{":4:", "routes[0].match.path", "whole segment"}},
		{"pattern_with_bad_param_name", head + "    match: { path: \"/a/{1x}\" }\n", []string{":4:", "routes[0].match.path", "{1x}"}},
		{"public_and_deny", head + "    match: { path: /x }\n    public: true\n    deny: true\n", []string{":6:", "routes[0].deny", "both public and deny"}},
		{"deny_with_require", head + "    match: { path: /x }\n    deny: true\n    require: {}\n", []string{":6:", "routes[0].require", "deny route"}},
		{"bad_default", "version: 1\ndefault: allow\n", []string{":2:", "default", `"allow"`}},
		{"bad_route_name", "version: 1\nroutes:\n  - name: a/b\n    match: { path: /x }\n", []string{":3:", "routes[0].name", `"a/b"`}},
		{"empty_method_list", head + "    match: { path: /x, methods: [] }\n", []string{":4:", "routes[0].match.methods", "leave it out to match any method"}},
		{"empty_client_list", head + "    match: { path: /x }\n    require: { clients: [] }\n", []string{":5:", "routes[0].require.clients", "allow any client"}},
		{"empty_audience", head + "    match: { path: /x }\n    require: { audiences: [a, \"\"] }\n", []string{":5:", "routes[0].require.audiences[1]", "is empty"}},
		{"empty_issuer_list", head + "    match: { path: /x }\n    require: { issuers: [] }\n", []string{":5:", "routes[0].require.issuers", "allow any issuer"}},
		{"empty_issuer", head + "    match: { path: /x }\n    require: { issuers: [\"\"] }\n", []string{":5:", "routes[0].require.issuers[0]", "is empty"}},
		{"issuer_required_twice", head + "    match: { path: /x }\n    require: { issuers: [https://a, https://b, https://a] }\n", []string{":5:", "routes[0].require.issuers[2]", `issuer "https://a" is listed twice; the first is issuers[0]`}},
		{"host_any", head + "    match: { path: /x, hosts: [\"*\"] }\n", []string{":4:", "routes[0].match.hosts[0]", "leave hosts out"}},
		{"host_inner_wildcard", head + "    match: { path: /x, hosts: [\"a.*.com\"] }\n", []string{":4:", "routes[0].match.hosts[0]", "leading"}},
		{"scope_with_quote", head + "    match: { path: /x }\n    require: { scopes: { any_of: ['a\"b'] } }\n", []string{":5:", "routes[0].require.scopes.any_of[0]", "not a scope"}},
		{"mapping_in_a_list", head + "    match: { path: /x }\n    require: { clients: [{a: b}] }\n", []string{":5:", "routes[0].require", "got a mapping, want a string"}},
		{"string_for_a_list", head + "    match: { path: /x, methods: GET }\n", []string{":4:", "routes[0].match", `got a string ("GET"), want a list`}},
		{"version_as_a_string", "version: \"1\"\n", []string{":1:", "version", "want a number"}},
		{"bad_policy_mode", "version: 1\nmode: shadow\n", []string{":2:", "mode", `"shadow"`, `"dry_run"`}},
		{"bad_route_mode", head + "    match: { path: /x }\n    mode: dryrun\n", []string{":5:", "routes[0].mode", `"dryrun"`}},
		{"public_route_with_a_mode", head + "    match: { path: /x }\n    public: true\n    mode: dry_run\n", []string{":6:", "routes[0].mode", "public route denies nothing"}},
		{"issuer_without_scopes", "version: 1\nissuers:\n  - issuer: https://a\n", []string{":3:", "issuers[0].scopes", "is required"}},
		{"issuer_listed_twice", "version: 1\nissuers:\n  - { issuer: https://a, scopes: [x] }\n  - { issuer: https://a, scopes: [y] }\n", []string{":4:", "issuers[1].issuer", "listed twice", "line 3"}},
		{"issuer_with_a_bad_scope", "version: 1\nissuers:\n  - { issuer: https://a, scopes: [\"a b\"] }\n", []string{":3:", "issuers[0].scopes[0]", "not a scope"}},
		{"overlapping_routes", "version: 1\nroutes:\n" +
			"  - name: a\n    match: { path: /x, methods: [GET, POST], hosts: [a.example.com, b.example.com] }\n" +
			"  - name: b\n    match: { path: /x, methods: [GET], hosts: [b.example.com] }\n",
			[]string{":6:", "routes[1].match", `route "b" and route "a" at line 3 both match GET, b.example.com, path /x`}},
		{"routes_for_any_method_tie", "version: 1\nroutes:\n" +
			"  - name: a\n    match: { path: /x/* }\n" +
			"  - name: b\n    match: { path: \"/x/{id}\", hosts: [a.example.com] }\n" +
			"  - name: c\n    match: { path: \"/x/{id}/\" }\n",
			[]string{":8:", "routes[2].match", `route "c" matches exactly the same requests as route "a" at line 3`}},
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

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(""))
	f.Add([]byte("version: 1\nroutes: [{name: a, match: {path: /**}}]\n"))
	f.Add([]byte("version: 1\nroutes:\n- name: a\n  match: {path: \"/a/{x}/**\", hosts: [\"*.a.b\"]}\n  require: {scopes: {all_of: [x], any_of: [y]}}\n"))
	f.Add([]byte("version: 1\nroutes:\n- {name: a, match: {path: \"/a/**\", context: {a: \"1\"}}}\n- {name: b, match: {path: \"/a/**\", methods: [GET], context: {a: \"1\", b: \"2\"}}}\n" +
		"- {name: c, match: {path: /a, methods: [HEAD], context: {b: \"2\"}}, require: {principals: [\"spiffe://td/**\"], token: false}}\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("version: 1\nroutes: !!map {}\n"))
	f.Add([]byte("version: 1\nroutes:\n- {name: a, match: {path: \"/a/**\"}}\n- {name: b, match: {path: \"/a/{x}\", hosts: [\"*.b\"]}, deny: true, mode: dry_run}\n" +
		"tests:\n- {name: t, request: {method: GET, path: /a}, token: none, expect: {status: 401}}\n- {name: u, request: {method: GET, path: /a}, token: {scopes: [x]}, expect: allow}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			var list yamlfile.Errors
			var one *yamlfile.Error
			if !errors.As(err, &list) && !errors.As(err, &one) {
				t.Fatalf("error %T is neither yamlfile.Errors nor *yamlfile.Error: %v", err, err)
			}
			return
		}
		for _, ctx := range []*Context{nil, contextOf("a", "1"), contextOf("a", "1", "b", "2")} {
			for _, path := range []string{"/", "/a", "/a/b/c/"} {
				all := p.MatchAll("GET", "x.a.b", path, ctx)
				for _, r := range all {
					if !slices.Contains(p.Routes, r) {
						t.Fatalf("MatchAll returned route %q that is not in the policy", r.Name)
					}
					if len(r.Context) > 0 && !r.contextMet(ctx) {
						t.Fatalf("MatchAll returned route %q, whose context %v the request's %v does not meet", r.Name, r.Context, ctx)
					}
				}
				got := p.Match("get", "X.A.B:80", path, ctx)
				if len(all) == 0 && got != nil || len(all) > 0 && got != all[0] {
					t.Fatalf("Match(%q) = %v, but MatchAll = %v", path, got, all)
				}
			}
		}
		for _, w := range Lint(p) {
			if w.Line == 0 {
				t.Fatalf("warning without a line: %s", w)
			}
		}
		// Lint's example requests must match both routes they were built
		// for.
		for i, a := range p.Routes {
			for _, b := range p.Routes[i+1:] {
				ex, ok := overlap(a, b, patternSegments(a.Path), patternSegments(b.Path))
				if !ok {
					continue
				}
				ctx := ContextOf(ex.context)
				all := p.MatchAll(ex.method, ex.host, ex.path, &ctx)
				if !slices.Contains(all, a) || !slices.Contains(all, b) {
					t.Fatalf("overlap(%q, %q) = %s, which MatchAll matches to %v", a.Name, b.Name, ex, names(all))
				}
			}
		}
	})
}
