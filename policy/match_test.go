package policy

import (
	"fmt"
	"strings"
	"testing"
)

// routes builds a policy file from routes written one per line as
// "name: flow mapping of the match", each open to any token.
func routes(lines ...string) string {
	var b strings.Builder
	b.WriteString("version: 1\nroutes:\n")
	for _, l := range lines {
		name, match, _ := strings.Cut(l, ": ")
		fmt.Fprintf(&b, "  - name: %s\n    match: %s\n", name, match)
	}
	return b.String()
}

type request struct{ method, host, path string }

func TestMatch(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		req    request
		want   string // route name; "" for none
	}{
		{"exact_host_beats_wildcard_host",
			routes(`wild: {hosts: ["*.example.com"], path: /x}`, `exact: {hosts: [api.example.com], path: /x}`),
			request{"GET", "api.example.com", "/x"}, "exact"},
		{"wildcard_host_beats_no_host",
			routes(`any: {path: /x}`, `wild: {hosts: ["*.example.com"], path: /x}`),
			request{"GET", "api.example.com", "/x"}, "wild"},
		{"longer_wildcard_suffix_beats_shorter",
			routes(`short: {hosts: ["*.example.com"], path: /x}`, `long: {hosts: ["*.eu.example.com"], path: /x}`),
			request{"GET", "api.eu.example.com", "/x"}, "long"},
		{"wildcard_matches_a_deeper_subdomain",
			routes(`any: {path: /x}`, `wild: {hosts: ["*.example.com"], path: /x}`),
			request{"GET", "a.b.example.com", "/x"}, "wild"},
		{"wildcard_does_not_match_the_bare_domain",
			routes(`any: {path: /x}`, `wild: {hosts: ["*.example.com"], path: /x}`),
			request{"GET", "example.com", "/x"}, "any"},
		{"wildcard_does_not_match_a_longer_label",
			routes(`wild: {hosts: ["*.example.com"], path: /x}`),
			request{"GET", "a.badexample.com", "/x"}, ""},
		{"host_ignores_case_port_and_trailing_dot",
			routes(`any: {path: /x}`, `exact: {hosts: [api.example.com], path: /x}`),
			request{"GET", "API.Example.COM.:8443", "/x"}, "exact"},
		{"host_with_a_port_that_is_not_a_number_matches_no_route",
			routes(`any: {path: /x}`, `exact: {hosts: [api.example.com], path: /x}`),
			request{"GET", "api.example.com:x", "/x"}, ""},
		{"ipv6_host_matches_routes_without_hosts",
			routes(`any: {path: /x}`, `exact: {hosts: [api.example.com], path: /x}`),
			request{"GET", "[::1]:8443", "/x"}, "any"},
		{"empty_host_matches_routes_without_hosts",
			routes(`any: {path: /x}`, `exact: {hosts: [api.example.com], path: /x}`),
			request{"GET", "", "/x"}, "any"},
		{"host_constraint_beats_a_more_specific_path",
			routes(`literal: {path: /orders/1}`, `host: {hosts: [api.example.com], path: "/**"}`),
			request{"GET", "api.example.com", "/orders/1"}, "host"},
		{"host_routes_fall_through_when_their_paths_do_not_match",
			routes(`any: {path: "/**"}`, `host: {hosts: [api.example.com], path: /orders}`),
			request{"GET", "api.example.com", "/admin"}, "any"},
		{"route_with_several_hosts_matches_each",
			routes(`two: {hosts: [a.example.com, b.example.com], path: /x}`),
			request{"GET", "b.example.com", "/x"}, "two"},

		{"literal_beats_param",
			routes(`param: {path: "/orders/{id}"}`, `literal: {path: /orders/new}`),
			request{"GET", "h", "/orders/new"}, "literal"},
		{"param_matches_what_no_literal_does",
			routes(`param: {path: "/orders/{id}"}`, `literal: {path: /orders/new}`),
			request{"GET", "h", "/orders/42"}, "param"},
		{"param_beats_rest",
			routes(`rest: {path: "/orders/**"}`, `param: {path: /orders/*}`),
			request{"GET", "h", "/orders/42"}, "param"},
		{"leftmost_difference_decides",
			routes(`late: {path: /*/b}`, `early: {path: /a/*}`),
			request{"GET", "h", "/a/b"}, "early"},
		{"pattern_ending_with_the_path_beats_rest",
			routes(`rest: {path: "/orders/**"}`, `end: {path: /orders}`),
			request{"GET", "h", "/orders"}, "end"},
		{"rest_matches_the_bare_prefix",
			routes(`rest: {path: "/orders/**"}`),
			request{"GET", "h", "/orders"}, "rest"},
		{"rest_matches_the_prefix_with_a_trailing_slash",
			routes(`rest: {path: "/orders/**"}`),
			request{"GET", "h", "/orders/"}, "rest"},
		{"rest_matches_any_depth",
			routes(`rest: {path: "/orders/**"}`),
			request{"GET", "h", "/orders/1/items/2"}, "rest"},
		{"rest_does_not_match_a_longer_segment",
			routes(`rest: {path: "/orders/**"}`),
			request{"GET", "h", "/ordersx"}, ""},
		{"root_rest_matches_the_root",
			routes(`all: {path: "/**"}`),
			request{"GET", "h", "/"}, "all"},
		{"root_pattern_matches_only_the_root",
			routes(`root: {path: /}`),
			request{"GET", "h", "/x"}, ""},
		{"param_does_not_match_an_empty_segment",
			routes(`param: {path: /orders/*}`),
			request{"GET", "h", "/orders/"}, ""},
		{"trailing_slash_in_the_path_is_insignificant",
			routes(`exact: {path: /orders}`),
			request{"GET", "h", "/orders/"}, "exact"},
		{"trailing_slash_in_the_pattern_is_insignificant",
			routes(`exact: {path: /orders/}`),
			request{"GET", "h", "/orders"}, "exact"},
		{"paths_are_case_sensitive",
			routes(`exact: {path: /orders}`),
			request{"GET", "h", "/Orders"}, ""},
		{"pattern_literals_are_normalized",
			routes(`cafe: {path: /caf%65/%c3%a9}`),
			request{"GET", "h", "/cafe/%C3%A9"}, "cafe"},

		{"method_beats_no_method",
			routes(`any: {path: /orders}`, `get: {methods: [GET], path: /orders}`),
			request{"GET", "h", "/orders"}, "get"},
		{"route_without_method_takes_other_methods",
			routes(`any: {path: /orders}`, `get: {methods: [GET], path: /orders}`),
			request{"DELETE", "h", "/orders"}, "any"},
		{"methods_ignore_case",
			routes(`any: {path: /orders}`, `delete: {methods: [DELETE], path: /orders}`),
			request{"delete", "h", "/orders"}, "delete"},
		{"path_beats_method",
			routes(`get: {methods: [GET], path: "/orders/**"}`, `param: {path: /orders/*}`),
			request{"GET", "h", "/orders/1"}, "param"},

		{"head_is_decided_by_the_route_listing_get",
			routes(`all: {path: "/**"}`, `secret: {methods: [GET], path: /secret}`),
			request{"HEAD", "h", "/secret"}, "secret"},
		{"head_from_get_ignores_case",
			routes(`all: {path: "/**"}`, `secret: {methods: [GET], path: /secret}`),
			request{"head", "h", "/secret"}, "secret"},
		{"head_from_get_beats_a_route_without_methods",
			routes(`any: {path: /x}`, `get: {methods: [GET], path: /x}`),
			request{"HEAD", "h", "/x"}, "get"},
		{"route_listing_head_beats_the_route_listing_get_for_head",
			routes(`get: {methods: [GET], path: /x}`, `head: {methods: [HEAD], path: /x}`),
			request{"HEAD", "h", "/x"}, "head"},
		{"route_listing_head_leaves_get_to_the_route_listing_get",
			routes(`get: {methods: [GET], path: /x}`, `head: {methods: [HEAD], path: /x}`),
			request{"GET", "h", "/x"}, "get"},
		{"head_from_get_follows_the_hosts",
			routes(`any: {path: /x}`, `get: {methods: [GET, POST], hosts: ["*.example.com"], path: /x}`),
			request{"HEAD", "a.example.com", "/x"}, "get"},
		{"head_from_get_does_not_apply_to_other_methods",
			routes(`all: {path: "/**"}`, `secret: {methods: [GET], path: /secret}`),
			request{"OPTIONS", "h", "/secret"}, "all"},
		{"head_is_not_taken_by_routes_without_get",
			routes(`all: {path: "/**"}`, `post: {methods: [POST], path: /x}`),
			request{"HEAD", "h", "/x"}, "all"},

		{"host_of_253_bytes_matches",
			routes(`any: {path: /x}`, `wild: {hosts: ["*.example.com"], path: /x}`),
			request{"GET", strings.Repeat("a.", 120) + "a.example.com.:443", "/x"}, "wild"},
		{"host_longer_than_253_bytes_matches_no_route",
			routes(`any: {path: /x}`, `wild: {hosts: ["*.example.com"], path: /x}`),
			request{"GET", strings.Repeat("a.", 120) + "aa.example.com", "/x"}, ""},
		{"host_with_many_trailing_dots_matches_no_route",
			routes(`any: {path: /x}`, `exact: {hosts: [api.example.com], path: /x}`),
			request{"GET", "api.example.com" + strings.Repeat(".", 300), "/x"}, ""},
		{"host_with_an_empty_label_before_a_wildcard_suffix_matches_no_route",
			routes(`any: {path: /x}`, `wild: {hosts: ["*.example.com"], path: /x}`),
			request{"GET", "a..example.com", "/x"}, ""},
		{"host_with_an_empty_label_in_a_wildcard_suffix_matches_no_route",
			routes(`any: {path: /x}`, `wild: {hosts: ["*.example.com"], path: /x}`),
			request{"GET", "a.example..com", "/x"}, ""},
		{"longest_of_many_wildcards_wins",
			routes(`w1: {hosts: ["*.com"], path: /x}`, `w3: {hosts: ["*.eu.example.com", "*.a.b.c.d"], path: /x}`,
				`w4: {hosts: ["*.x.eu.example.com"], path: /x}`, `w2: {hosts: ["*.example.com"], path: /x}`),
			request{"GET", "a.b.x.eu.example.com", "/x"}, "w4"},

		{"unmatched_method_falls_through_to_rest",
			routes(`all: {path: "/**"}`, `get: {methods: [GET], path: /orders}`),
			request{"POST", "h", "/orders"}, "all"},
		{"dead_end_literal_backtracks_to_param",
			routes(`deep: {path: /a/b/c}`, `param: {path: /a/*/d}`, `rest: {path: "/a/**"}`),
			request{"GET", "h", "/a/b/d"}, "param"},
		{"literal_without_the_method_backtracks_to_param",
			routes(`literal: {methods: [GET], path: /a/b}`, `param: {path: /a/*}`),
			request{"PUT", "h", "/a/b"}, "param"},
		{"backtracking_reaches_a_shallower_rest",
			routes(`root: {path: "/**"}`, `a: {path: "/a/b/**", methods: [GET]}`, `c: {path: /a/*/c}`),
			request{"POST", "h", "/a/b/x"}, "root"},
		{"nothing_matches",
			routes(`orders: {path: /orders}`),
			request{"GET", "h", "/admin"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.policy)
			got := p.Match(tt.req.method, tt.req.host, tt.req.path, nil)
			if name := routeName(got); name != tt.want {
				t.Errorf("Match(%q, %q, %q) = %q, want %q", tt.req.method, tt.req.host, tt.req.path, name, tt.want)
			}
			all := p.MatchAll(tt.req.method, tt.req.host, tt.req.path, nil)
			if len(all) > 0 && all[0] != got || len(all) == 0 && got != nil {
				t.Errorf("MatchAll = %v, whose first is not Match's %q", names(all), routeName(got))
			}
		})
	}
}

func TestMatchAll(t *testing.T) {
	p := mustParse(t, routes(
		`all: {path: "/**"}`,
		`orders-rest: {path: "/orders/**"}`,
		`orders-param: {path: "/orders/{id}"}`,
		`orders-param-get: {path: "/orders/{id}", methods: [GET]}`,
		`orders-1: {path: /orders/1}`,
		`orders-1-post: {path: /orders/1, methods: [POST]}`,
		`host-rest: {path: "/**", hosts: [api.example.com]}`,
		`wild-param: {path: "/orders/*", hosts: ["*.example.com", api.example.com]}`,
		`other-host: {path: "/**", hosts: [other.example.com]}`,
	))
	got := names(p.MatchAll("GET", "api.example.com:443", "/orders/1", nil))
	// wild-param lists the host itself and a wildcard covering it: it
	// appears once, at its exact-host place.
	want := "wild-param host-rest orders-1 orders-param-get orders-param orders-rest all"
	if got != want {
		t.Errorf("MatchAll =\n%s\nwant\n%s", got, want)
	}
}

func routeName(r *Route) string {
	if r == nil {
		return ""
	}
	return r.Name
}

func names(rs []*Route) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Name)
	}
	return strings.Join(s, " ")
}

func TestMatchDoesNotAllocate(t *testing.T) {
	p := mustParse(t, routes(
		`all: {path: "/**"}`,
		`orders: {path: "/orders/{id}/items", methods: [GET, POST]}`,
		`host: {path: "/admin/**", hosts: [api.example.com]}`,
		`wild: {path: "/users/*", hosts: ["*.example.com"]}`,
	))
	for _, req := range []request{
		{"GET", "h", "/orders/1/items"},
		{"get", "API.example.com:8443", "/orders/1/items/"},
		{"PATCH", "a.b.example.com", "/users/1"},
		{"GET", "x.example.com", "/not/there"},
		{"HEAD", "h", "/orders/1/items"},
		{"GET", strings.Repeat("a.", 30<<10), "/users/1"},
		{"GET", "api.example.com:x", "/admin/x"},
		{"GET", "[2001:db8::1]:443", "/orders/1/items"},
		{"GET", "[zz]", "/orders/1/items"},
	} {
		if n := testing.AllocsPerRun(100, func() { p.Match(req.method, req.host, req.path, nil) }); n != 0 {
			t.Errorf("Match(%q, %q, %q) made %v allocations, want 0", req.method, req.host, req.path, n)
		}
	}
}

// TestEverySpellingOfASubDelimMatchesTheSameRoute pins that a pattern and
// a request path agree however each spells a character allowed raw in a
// path, as upstreams that decode it before routing see it.
func TestEverySpellingOfASubDelimMatchesTheSameRoute(t *testing.T) {
	spellings := []string{"/v1/jobs/nightly:run", "/v1/jobs/nightly%3Arun", "/v1/jobs/nightly%3arun"}
	for _, pattern := range spellings {
		p := mustParse(t, routes(`jobs: {path: "/v1/jobs/**"}`, fmt.Sprintf("run: {path: %q}", pattern)))
		for _, raw := range spellings {
			path, err := NormalizePath(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := routeName(p.Match("POST", "h", path, nil)); got != "run" {
				t.Errorf("pattern %s, request %s: Match = %q, want run", pattern, raw, got)
			}
		}
	}
}

func TestMatchOnZeroPolicy(t *testing.T) {
	var p Policy
	if r := p.Match("GET", "h", "/", nil); r != nil {
		t.Errorf("Match on a zero Policy = %q, want nil", r.Name)
	}
	if rs := p.MatchAll("GET", "h", "/", nil); rs != nil {
		t.Errorf("MatchAll on a zero Policy = %v, want nil", names(rs))
	}
}

// generated returns a policy of n routes in the shapes a real one has:
// literal, param and rest segments, methods and hosts.
func generated(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nroutes:\n  - name: fallback\n    match: { path: \"/**\" }\n")
	for i := range n - 1 {
		var match string
		switch i % 4 {
		case 0:
			match = fmt.Sprintf(`{ methods: [GET, HEAD], path: "/svc%d/orders/{id}/items" }`, i)
		case 1:
			match = fmt.Sprintf(`{ methods: [POST], path: "/svc%d/orders" }`, i)
		case 2:
			match = fmt.Sprintf(`{ hosts: [h%d.example.com], path: "/svc%d/**" }`, i%50, i)
		case 3:
			match = fmt.Sprintf(`{ hosts: ["*.t%d.example.com"], path: "/svc%d/admin/*" }`, i%20, i)
		}
		fmt.Fprintf(&b, "  - name: r%d\n    match: %s\n    require: { scopes: { all_of: [\"s%d:read\"] } }\n", i, match, i)
	}
	return b.String()
}

// BenchmarkMatchHostileHost measures Match with a Host header of the
// largest size Envoy accepts by default (60 KiB, all dots), against more
// wildcard hosts than a small map holds.
func BenchmarkMatchHostileHost(b *testing.B) {
	var hosts []string
	for i := range 10 {
		hosts = append(hosts, fmt.Sprintf(`"*.a%d.com"`, i))
	}
	p := mustParse(b, routes(`all: {path: "/**"}`, fmt.Sprintf("api: {hosts: [%s], path: /x}", strings.Join(hosts, ", "))))
	for _, bm := range []struct{ name, host string }{
		{"dots_60KiB", strings.Repeat("a.", 30<<10)},
		{"dots_253B", strings.Repeat("a.", 126) + "a"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Match("GET", bm.host, "/x", nil)
			}
		})
	}
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1_000, 10_000} {
		p := mustParse(b, generated(n))
		// The last route of each shape, so that a route list scanned
		// from the top would pay for all of them.
		last := (n - 2) / 4 * 4
		for _, bm := range []struct {
			name string
			req  request
			want string
		}{
			{"param", request{"GET", "api.example.com", fmt.Sprintf("/svc%d/orders/123/items", last)}, fmt.Sprint("r", last)},
			{"wildcard_host", request{"PUT", fmt.Sprintf("a.t%d.example.com:443", (last-5)%20), fmt.Sprintf("/svc%d/admin/x", last-5)}, fmt.Sprint("r", last-5)},
			{"fallthrough", request{"DELETE", "api.example.com", fmt.Sprintf("/svc%d/orders", last-3)}, "fallback"},
		} {
			b.Run(fmt.Sprintf("routes=%d/%s", n, bm.name), func(b *testing.B) {
				if r := p.Match(bm.req.method, bm.req.host, bm.req.path, nil); routeName(r) != bm.want {
					b.Fatalf("Match = %q, want %q", routeName(r), bm.want)
				}
				b.ReportAllocs()
				for b.Loop() {
					p.Match(bm.req.method, bm.req.host, bm.req.path, nil)
				}
			})
		}
	}
}
