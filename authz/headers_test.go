package authz_test

import (
	"context"
	"slices"
	"testing"

	"github.com/scopegate/scopegate/authz"
)

// TestNamesListEveryIdentityHeaderUpstreamTouches pins that
// HeaderNames.Names, which the proxy snippets of the docs are checked
// against, is exactly the set of headers an allow sets or removes: a
// header added to Upstream but not to Names would reach a proxy
// configuration that neither copies nor clears it.
func TestNamesListEveryIdentityHeaderUpstreamTouches(t *testing.T) {
	p := mustPolicy(t, `version: 1
routes:
  - name: health
    match: { path: /healthz }
    public: true
  - name: orders
    match: { path: "/orders/**" }
`)
	tests := []struct {
		name    string
		headers authz.HeaderNames
		want    []string
	}{
		{"defaults", authz.HeaderNames{}, []string{"x-scopegate-client-id", "x-scopegate-subject", "x-scopegate-scopes", "x-scopegate-issuer", "x-scopegate-principal"}},
		{"renamed, claims sorted by header", authz.HeaderNames{ClientID: "X-Client", Issuer: "X-Iss", Principal: "X-Peer", Claims: map[string]string{"tenant": "X-Tenant-Id", "region": "x-region"}},
			[]string{"x-client", "x-scopegate-subject", "x-scopegate-scopes", "x-iss", "x-peer", "x-region", "x-tenant-id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := tt.headers.Names()
			if !slices.Equal(names, tt.want) {
				t.Fatalf("Names() = %v, want %v", names, tt.want)
			}
			for _, remove := range []bool{false, true} {
				h := tt.headers
				h.RemoveAuthorization = remove
				a := authz.New(p, tokens, authz.Options{Headers: h})
				want := names
				if remove {
					want = append(slices.Clone(names), "authorization")
				}
				for _, path := range []string{"/orders/1", "/healthz"} {
					d := a.Check(context.Background(), request("GET", path, "reader"))
					if !d.Allow {
						t.Fatalf("%s: %+v, want an allow", path, d)
					}
					var got []string
					for name := range a.Upstream(&d) {
						got = append(got, name)
					}
					if !slices.Equal(got, want) {
						t.Errorf("remove_authorization %v, %s: Upstream touches %v, want %v", remove, path, got, want)
					}
				}
			}
		})
	}
}
