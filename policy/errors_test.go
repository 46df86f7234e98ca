package policy

import (
	"strings"
	"testing"
)

// TestParseReportsEveryProblemOfAFileAtOnce pins that no kind of problem
// hides another: a duplicate key, an unknown field or a wrong type does not
// stop validation, and a route with an error outside its match still ties.
func TestParseReportsEveryProblemOfAFileAtOnce(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // one per problem, in order: "line:col: field: message"
	}{
		{
			name: "decoding, validation and ties together",
			src: `version: 1
routes:
  - name: a
    match: { path: "/orders/**" }
    require: { scopes: { all_of: ["bad scope"] } }
    publik: true
  - name: b
    match: { path: "/orders/**" }
    name: c
  - name: d
    match: { path: /x, methods: GET }
    mode: sometimes
`,
			want: []string{
				`5:35: routes[0].require.scopes.all_of[0]: "bad scope" is not a scope`,
				`6:5: routes[0].publik: unknown field "publik"`,
				`8:12: routes[1].match: route "b" matches exactly the same requests as route "a" at line 3`,
				`9:5: routes[1].name: mapping key "name" already defined at line 7`,
				`11:5: routes[2].match: got a string ("GET"), want a list`,
				`12:11: routes[2].mode: is "sometimes"`,
			},
		},
		{
			name: "a duplicate top-level key hides nothing",
			src:  "version: 1\ndefault: allow\nroutes:\n  - name: a\n    match: { path: a }\nversion: 2\n",
			want: []string{
				`2:10: default: is "allow"`,
				`5:20: routes[0].match.path: "a" does not start with /`,
				`6:1: version: mapping key "version" already defined at line 1`,
			},
		},
		{
			name: "a field that did not decode is not also reported missing",
			src:  "version: one\nroutes:\n  - name: a\n    match: /a\n",
			want: []string{
				`1:1: version: got a string ("one"), want a number`,
				`4:5: routes[0].match: got a string ("/a"), want a mapping`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("policy.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("parsed, want errors")
			}
			errs := problems(t, err)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, e := range errs {
				if want := "policy.yaml:" + tt.want[i]; !strings.HasPrefix(e.Error(), want) {
					t.Errorf("problem %d = %s\nwant prefix     %s", i, e.Error(), want)
				}
			}
		})
	}
}
