package envoy_test

import (
	"context"
	"testing"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// BenchmarkServerCheck measures the adapter in process, without the
// network: CheckRequest → decision (verified-token cache warm) →
// CheckResponse, as the gRPC handler runs it.
func BenchmarkServerCheck(b *testing.B) {
	idp := testutil.NewIdP(b)
	pol, err := policy.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		b.Fatal(err)
	}
	s := &envoy.Server{Authorizer: authz.New(pol, jwtVerifierFor(b, idp), authz.Options{})}
	for _, bc := range []struct {
		name  string
		token string
	}{
		{"allow", idp.Token(b, testutil.Scopes("orders:read"))},
		{"deny", idp.Token(b, testutil.Scopes("orders:write"))},
	} {
		req := envoy.CheckRequest("GET", "api.example.com", "/orders/42", bearer(bc.token))
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Check(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
