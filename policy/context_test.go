package policy

import (
	"strings"
	"testing"
)

func contextOf(kv ...string) *Context {
	var c Context
	for i := 0; i+1 < len(kv); i += 2 {
		c.Set(kv[i], kv[i+1])
	}
	return &c
}

func TestMatchContext(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		req    request
		ctx    *Context
		want   string // route name; "" for none
	}{
		{"context_route_beats_the_same_route_without",
			routes(`plain: {path: "/**"}`, `tagged: {path: "/**", context: {route: billing}}`),
			request{"GET", "h", "/x"}, contextOf("route", "billing"), "tagged"},
		{"context_route_needs_every_pair",
			routes(`plain: {path: "/**"}`, `tagged: {path: "/**", context: {route: billing, tier: gold}}`),
			request{"GET", "h", "/x"}, contextOf("route", "billing"), "plain"},
		{"context_value_compares_exactly",
			routes(`plain: {path: "/**"}`, `tagged: {path: "/**", context: {route: billing}}`),
			request{"GET", "h", "/x"}, contextOf("route", "Billing"), "plain"},
		{"later_value_of_a_key_wins_as_in_the_protobuf_map",
			routes(`plain: {path: "/**"}`, `tagged: {path: "/**", context: {route: billing}}`),
			request{"GET", "h", "/x"}, contextOf("route", "billing", "route", "orders"), "plain"},
		{"no_context_skips_context_routes",
			routes(`tagged: {path: "/**", context: {route: billing}}`),
			request{"GET", "h", "/x"}, nil, ""},
		{"extra_pairs_of_the_request_do_not_matter",
			routes(`tagged: {path: "/**", context: {route: billing}}`),
			request{"GET", "h", "/x"}, contextOf("tier", "gold", "route", "billing"), "tagged"},
		{"context_holding_another_beats_it",
			routes(`one: {path: "/**", context: {route: billing}}`, `two: {path: "/**", context: {route: billing, tier: gold}}`),
			request{"GET", "h", "/x"}, contextOf("route", "billing", "tier", "gold"), "two"},
		{"routes_whose_contexts_disagree_do_not_tie",
			routes(`a: {path: "/**", context: {route: a}}`, `b: {path: "/**", context: {route: b}}`),
			request{"GET", "h", "/x"}, contextOf("route", "b"), "b"},
		{"a_more_specific_path_beats_a_context",
			routes(`tagged: {path: "/**", context: {route: billing}}`, `health: {path: /healthz}`),
			request{"GET", "h", "/healthz"}, contextOf("route", "billing"), "health"},
		{"a_host_beats_a_context",
			routes(`tagged: {path: /x, context: {route: billing}}`, `host: {path: /x, hosts: [api.example.com]}`),
			request{"GET", "api.example.com", "/x"}, contextOf("route", "billing"), "host"},
		{"a_method_beats_a_context",
			routes(`tagged: {path: /x, context: {route: billing}}`, `get: {path: /x, methods: [GET]}`),
			request{"GET", "h", "/x"}, contextOf("route", "billing"), "get"},
		{"context_breaks_the_tie_of_routes_listing_a_method",
			routes(`get: {path: /x, methods: [GET]}`, `tagged: {path: /x, methods: [GET], context: {route: billing}}`),
			request{"GET", "h", "/x"}, contextOf("route", "billing"), "tagged"},
		{"unmet_context_backtracks_to_a_param",
			routes(`tagged: {path: /a/b, context: {route: billing}}`, `param: {path: /a/*}`),
			request{"GET", "h", "/a/b"}, contextOf("route", "orders"), "param"},
		{"context_route_listing_get_takes_head",
			routes(`plain: {path: /x, methods: [GET]}`, `tagged: {path: /x, methods: [GET], context: {route: billing}}`),
			request{"HEAD", "h", "/x"}, contextOf("route", "billing"), "tagged"},
		{"context_route_listing_head_beats_one_getting_it_from_get",
			routes(`get: {path: /x, methods: [GET], context: {route: billing}}`, `head: {path: /x, methods: [HEAD], context: {route: billing}}`),
			request{"HEAD", "h", "/x"}, contextOf("route", "billing"), "head"},
		{"head_without_context_still_goes_to_the_get_route",
			routes(`get: {path: /x, methods: [GET]}`, `head: {path: /x, methods: [HEAD], context: {route: billing}}`, `all: {path: "/**"}`),
			request{"HEAD", "h", "/x"}, contextOf("route", "orders"), "get"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.policy)
			got := p.Match(tt.req.method, tt.req.host, tt.req.path, tt.ctx)
			if name := routeName(got); name != tt.want {
				t.Errorf("Match(%q, %q, %q, %v) = %q, want %q", tt.req.method, tt.req.host, tt.req.path, tt.ctx, name, tt.want)
			}
			all := p.MatchAll(tt.req.method, tt.req.host, tt.req.path, tt.ctx)
			if len(all) > 0 && all[0] != got || len(all) == 0 && got != nil {
				t.Errorf("MatchAll = %v, whose first is not Match's %q", names(all), routeName(got))
			}
		})
	}
}

func TestMatchAllWithContext(t *testing.T) {
	p := mustParse(t, routes(
		`all: {path: "/**"}`,
		`all-billing: {path: "/**", context: {route: billing}}`,
		`all-gold: {path: "/**", context: {route: billing, tier: gold}}`,
		`all-other: {path: "/**", context: {route: orders}}`,
		`get-x: {path: /x, methods: [GET]}`,
		`get-x-billing: {path: /x, methods: [GET], context: {route: billing}}`,
	))
	got := names(p.MatchAll("GET", "h", "/x", contextOf("route", "billing", "tier", "gold")))
	want := "get-x-billing get-x all-gold all-billing all"
	if got != want {
		t.Errorf("MatchAll =\n%s\nwant\n%s", got, want)
	}
}

func TestContextTiesAreErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "" for a valid policy
	}{
		{"same_context_twice", routes(`a: {path: /x, context: {route: billing}}`, `b: {path: /x, context: {route: billing}}`),
			[]string{":6:", "routes[1].match", `route "b" matches exactly the same requests as route "a" at line 3`}},
		{"contexts_that_one_request_meets_and_neither_holds_the_other", routes(`a: {path: /x, context: {route: billing}}`, `b: {path: /x, context: {tier: gold}}`),
			[]string{":6:", "routes[1].match", `route "b" and route "a" at line 3 both match any method, any host, path /x, context {route: billing, tier: gold} with equal precedence`}},
		{"tie_on_a_shared_method", routes(`a: {path: /x, methods: [GET, POST], context: {a: "1"}}`, `b: {path: /x, methods: [PUT, POST], context: {b: "2"}}`),
			[]string{":6:", `both match POST, any host, path /x, context {a: 1, b: 2}`}},
		{"identical_but_for_context_is_no_tie", routes(`a: {path: /x}`, `b: {path: /x, context: {route: billing}}`), nil},
		{"nested_contexts_are_no_tie", routes(`a: {path: /x, context: {route: billing}}`, `b: {path: /x, context: {route: billing, tier: gold}}`), nil},
		{"disagreeing_contexts_are_no_tie", routes(`a: {path: /x, context: {route: billing, tier: gold}}`, `b: {path: /x, context: {route: orders, tier: gold}}`), nil},
		{"other_methods_are_no_tie", routes(`a: {path: /x, methods: [GET], context: {a: "1"}}`, `b: {path: /x, methods: [POST], context: {b: "2"}}`), nil},
		{"empty_context", routes(`a: {path: /x, context: {}}`), []string{":4:", "routes[0].match.context", "leave it out to match any context"}},
		{"empty_value", routes(`a: {path: /x, context: {route: ""}}`), []string{":4:", "routes[0].match.context.route", "is empty"}},
		{"list_for_a_context", routes(`a: {path: /x, context: [route]}`), []string{":4:", "routes[0].match", "want a mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("test.yaml", []byte(tt.src))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
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

func TestPrecedenceExplainsContext(t *testing.T) {
	p := mustParse(t, routes(
		`plain: {path: "/**"}`,
		`billing: {path: "/**", context: {route: billing}}`,
		`gold: {path: "/**", context: {route: billing, tier: gold}}`,
	))
	for _, tt := range []struct{ a, b, want string }{
		{"billing", "plain", `it matches the route context {route: billing} and "plain" matches none`},
		{"gold", "billing", `its route context {route: billing, tier: gold} holds "billing"'s {route: billing} and more`},
	} {
		if got := Precedence(routeByName(p, tt.a), routeByName(p, tt.b), "h"); got != tt.want {
			t.Errorf("Precedence(%s, %s) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMatchWithContextDoesNotAllocate(t *testing.T) {
	p := mustParse(t, routes(
		`all: {path: "/**"}`,
		`billing: {path: "/**", context: {route: billing}}`,
		`gold: {path: "/orders/*", methods: [GET], context: {route: billing, tier: gold}}`,
	))
	ctx := contextOf("route", "billing", "tier", "gold")
	for _, path := range []string{"/orders/1", "/x", "/orders/1/2"} {
		if n := testing.AllocsPerRun(100, func() { p.Match("GET", "h", path, ctx) }); n != 0 {
			t.Errorf("Match(%q) with a context made %v allocations, want 0", path, n)
		}
	}
}

// BenchmarkMatchContext measures what a route context costs: the same
// request against a policy without context routes, and against one where
// the context routes share the request's leaf.
func BenchmarkMatchContext(b *testing.B) {
	plain := generated(1_000)
	tagged := plain + "  - name: tagged\n    match: { methods: [GET], path: \"/svc996/orders/{id}/items\", context: {route: billing, tier: gold} }\n"
	ctx := contextOf("route", "billing", "tier", "gold")
	for _, bm := range []struct {
		name, policy, want string
		ctx                *Context
	}{
		{"no_context_routes", plain, "r996", nil},
		{"no_context_routes/request_with_context", plain, "r996", ctx},
		{"context_route_met", tagged, "tagged", ctx},
		{"context_route_unmet", tagged, "r996", nil},
	} {
		p := mustParse(b, bm.policy)
		b.Run(bm.name, func(b *testing.B) {
			if r := p.Match("GET", "api.example.com", "/svc996/orders/123/items", bm.ctx); routeName(r) != bm.want {
				b.Fatalf("Match = %q, want %q", routeName(r), bm.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				p.Match("GET", "api.example.com", "/svc996/orders/123/items", bm.ctx)
			}
		})
	}
}
