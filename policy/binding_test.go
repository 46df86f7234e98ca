package policy

import (
	"strings"
	"testing"
)

func TestRequireBinding(t *testing.T) {
	p := mustParse(t, `version: 1
routes:
  - name: payments
    match: { path: "/payments/**" }
    require: { binding: mtls }
  - name: dpop
    match: { path: /d }
    require: { binding: dpop, scopes: { all_of: [a] } }
  - name: either
    match: { path: /e }
    require: { binding: any }
  - name: bearer
    match: { path: /b }
    require: { scopes: { all_of: [a] } }
`)
	want := map[string]Binding{"payments": BindingMTLS, "dpop": BindingDPoP, "either": BindingAny, "bearer": BindingNone}
	for _, r := range p.Routes {
		if r.Require.Binding != want[r.Name] {
			t.Errorf("route %s: binding %q, want %q", r.Name, r.Require.Binding, want[r.Name])
		}
	}
}

func TestRequireBindingRefusesAnUnknownBinding(t *testing.T) {
	_, err := Parse("p.yaml", []byte("version: 1\nroutes:\n  - name: r\n    match: { path: /x }\n    require: { binding: x509 }\n"))
	const want = `p.yaml:5:25: routes[0].require.binding: is "x509"; it must be "mtls", "dpop" or "any"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func TestBindingMetBy(t *testing.T) {
	tests := []struct {
		b          Binding
		mtls, dpop bool
		met        bool
	}{
		{BindingNone, false, false, true},
		{BindingNone, true, false, true},
		{BindingMTLS, false, false, false},
		{BindingMTLS, true, false, true},
		{BindingMTLS, false, true, false},
		{BindingDPoP, true, false, false},
		{BindingDPoP, false, true, true},
		{BindingAny, false, false, false},
		{BindingAny, true, false, true},
		{BindingAny, false, true, true},
		{"x509", true, true, false},
	}
	for _, tt := range tests {
		if got := tt.b.MetBy(tt.mtls, tt.dpop); got != tt.met {
			t.Errorf("%q.MetBy(mtls %v, dpop %v) = %v, want %v", tt.b, tt.mtls, tt.dpop, got, tt.met)
		}
	}
}

func TestTestCaseTokenBinding(t *testing.T) {
	tests, err := ParseTests("t.yaml", []byte("tests:\n  - name: a\n    request: { method: GET, path: /x }\n    token: { binding: mtls }\n    expect: allow\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := tests[0].Token.Binding; got != BindingMTLS {
		t.Errorf("token binding %q, want mtls", got)
	}
	_, err = ParseTests("t.yaml", []byte("tests:\n  - name: a\n    request: { method: GET, path: /x }\n    token: { binding: any }\n    expect: allow\n"))
	const want = `t.yaml:4:23: tests[0].token.binding: is "any"; a token is bound to "mtls" or "dpop"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %s", err, want)
	}
}
