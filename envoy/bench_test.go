package envoy_test

import (
	"context"
	"net"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// BenchmarkServerCheck measures the adapter in process, without the
// network: a CheckRequest's encoding → decision (verified-token cache
// warm) → a CheckResponse's encoding, as the gRPC handler runs it; with a
// certificate-bound token, the certificate's hash is cached.
func BenchmarkServerCheck(b *testing.B) {
	idp := testutil.NewIdP(b)
	pol, err := policy.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		b.Fatal(err)
	}
	s := &envoy.Server{Authorizer: authz.New(pol, jwtVerifierFor(b, idp), authz.Options{})}
	certPEM, _ := testutil.NewCA(b, "mesh").Issue(b, "billing")
	bound := testutil.Confirmation(map[string]any{"x5t#S256": testutil.CertificateThumbprint(b, certPEM)})
	for _, bc := range []struct {
		name  string
		token string
		cert  bool // the request carries the client certificate, as with include_peer_certificate
	}{
		{"allow", idp.Token(b, testutil.Scopes("orders:read")), false},
		{"deny", idp.Token(b, testutil.Scopes("orders:write")), false},
		{"allow_certificate_bound", idp.Token(b, testutil.Scopes("orders:read"), bound), true},
	} {
		req := envoy.CheckRequest("GET", "api.example.com", "/orders/42", bearer(bc.token))
		if bc.cert {
			req.Attributes.Source.Certificate = string(authz.CertificateFromPEM(certPEM))
		}
		msg, err := proto.Marshal(req)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if resp := s.CheckWire(context.Background(), msg); len(resp) == 0 {
					b.Fatal("no response")
				}
			}
		})
	}
}

// BenchmarkGRPCCheck measures a check through real gRPC on loopback, with
// the server settings of `scopegate serve` (envoy.ServerOptions): the
// client's encoding and the server's decoding of the request, the
// decision, and the encoding of the response as it goes on the wire.
func BenchmarkGRPCCheck(b *testing.B) {
	idp := testutil.NewIdP(b)
	pol, err := policy.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer(envoy.ServerOptions()...)
	(&envoy.Server{Authorizer: authz.New(pol, jwtVerifierFor(b, idp), authz.Options{})}).Register(g)
	go g.Serve(lis)
	b.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	client := authv3.NewAuthorizationClient(conn)
	for _, bc := range []struct {
		name  string
		token string
		code  codes.Code
	}{
		{"allow", idp.Token(b, testutil.Scopes("orders:read")), codes.OK},
		{"deny", idp.Token(b, testutil.Scopes("orders:write")), codes.PermissionDenied},
	} {
		req := envoy.CheckRequest("GET", "api.example.com", "/orders/42", bearer(bc.token))
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Check(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				if got := codes.Code(resp.GetStatus().GetCode()); got != bc.code {
					b.Fatalf("code %v, want %v", got, bc.code)
				}
			}
		})
	}
}
