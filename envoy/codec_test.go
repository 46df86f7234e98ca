package envoy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

const codecPolicy = `
version: 1
default: deny
routes:
  - name: health
    match: { path: /healthz }
    public: true
  - name: orders-read
    match: { methods: [GET, HEAD], path: "/orders/**" }
    require: { scopes: { all_of: [orders:read] } }
`

// swappedPolicy names the orders route otherwise, so that its allow
// responses differ from codecPolicy's.
const swappedPolicy = `
version: 1
default: deny
routes:
  - name: health
    match: { path: /healthz }
    public: true
  - name: orders-get
    match: { methods: [GET], path: "/orders/**" }
    require: { scopes: { any_of: [orders:read, orders:admin] } }
`

func parsePolicy(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newCodecAuthorizer returns an authorizer of codecPolicy that trusts a
// real IdP, and the IdP.
func newCodecAuthorizer(t *testing.T) (*authz.Authorizer, *testutil.IdP) {
	t.Helper()
	idp := testutil.NewIdP(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	jv, err := authz.NewJWTVerifier(ctx, []authz.Issuer{{Issuer: idp.Issuer(), JWKSURI: idp.JWKSURL(), Audiences: []string{testutil.DefaultAudience}}},
		authz.JWTOptions{RefetchCooldown: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(jv.Close)
	// NewJWTVerifier fetches the keys before it returns.
	if !jv.Ready() {
		t.Fatal("the verifier did not fetch the IdP's keys")
	}
	return authz.New(parsePolicy(t, codecPolicy), jv, authz.Options{}), idp
}

// serveWithOptions serves s, and grpc.health.v1, over real gRPC on
// loopback with ServerOptions, as `scopegate serve` does, and returns the
// address.
func serveWithOptions(t *testing.T, s *Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(ServerOptions()...)
	s.Register(g)
	healthpb.RegisterHealthServer(g, health.NewServer())
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// fresh is the response to req built anew, without any cache.
func fresh(a *authz.Authorizer, req *authv3.CheckRequest) *authv3.CheckResponse {
	r, ok := Request(req)
	var bad string
	if !ok {
		bad = "the check request carries no HTTP attributes"
	}
	d := check(context.Background(), a, nil, nil, r, bad)
	s := &Server{Authorizer: a}
	if d.Allow {
		return s.buildOK(&d)
	}
	return s.denied(&d)
}

func remoteCheck(t *testing.T, c authv3.AuthorizationClient, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp
}

func bearerOf(tok string) map[string]string {
	return map[string]string{"authorization": "Bearer " + tok}
}

// encoded returns the bytes the codec sends for v.
func encoded(t *testing.T, v any) []byte {
	t.Helper()
	bs, err := newCodec().Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bs.Materialize()
}

func TestReusedAllowResponsesAreSentAsBuilt(t *testing.T) {
	a, idp := newCodecAuthorizer(t)
	s := &Server{Authorizer: a}
	addr := serveWithOptions(t, s)
	var clients []authv3.AuthorizationClient
	for range 3 {
		clients = append(clients, authv3.NewAuthorizationClient(dial(t, addr)))
	}
	var reqs []*authv3.CheckRequest
	for i := range 4 {
		tok := idp.Token(t, testutil.Scopes("orders:read"), testutil.Client(fmt.Sprintf("svc-%d", i)))
		reqs = append(reqs, CheckRequest("GET", "api.example.com", fmt.Sprintf("/orders/%d", i), bearerOf(tok)))
	}
	reqs = append(reqs, CheckRequest("GET", "api.example.com", "/healthz", nil)) // public: no claims

	checkAll := func(t *testing.T) {
		for round := range 3 {
			for ci, c := range clients {
				for ri, req := range reqs {
					want := fresh(a, req)
					if want.GetOkResponse() == nil {
						t.Fatalf("request %d is not allowed: %v", ri, want)
					}
					got := remoteCheck(t, c, req)
					if !proto.Equal(got, want) {
						t.Fatalf("round %d, client %d, request %d:\ngot  %v\nwant %v", round, ci, ri, got, want)
					}
					// The cached response is the one sent, as encoded when
					// it was cached.
					r, _ := Request(req)
					d := check(context.Background(), a, nil, nil, r, "")
					cached := s.ok(&d)
					b, ok := encodedOKs.Load(cached)
					if !ok {
						t.Fatalf("request %d: the cached response has no encoding", ri)
					}
					sent := encoded(t, cached)
					if !bytes.Equal(sent, b.(mem.Buffer).ReadOnlyData()) {
						t.Fatalf("request %d: the codec did not send the cached encoding", ri)
					}
					var decoded authv3.CheckResponse
					if err := proto.Unmarshal(sent, &decoded); err != nil || !proto.Equal(&decoded, want) {
						t.Fatalf("request %d: cached encoding decodes to %v (%v), want %v", ri, &decoded, err, want)
					}
				}
			}
		}
	}
	checkAll(t)
	before := remoteCheck(t, clients[0], reqs[0])

	a.SetPolicy(parsePolicy(t, swappedPolicy))
	checkAll(t)
	after := remoteCheck(t, clients[0], reqs[0])
	if proto.Equal(before, after) {
		t.Fatal("the policy swap did not change the allow response")
	}
	if got := after.GetDynamicMetadata().GetFields()["route"].GetStringValue(); got != "orders-get" {
		t.Fatalf("route after the swap: %q", got)
	}
}

func TestCodecDelegatesForOtherMessages(t *testing.T) {
	a, idp := newCodecAuthorizer(t)
	s := &Server{Authorizer: a}
	conn := dial(t, serveWithOptions(t, s))
	client := authv3.NewAuthorizationClient(conn)

	// Denials are built for every check and marshaled as usual.
	for _, req := range []*authv3.CheckRequest{
		CheckRequest("GET", "api.example.com", "/orders/1", bearerOf(idp.Token(t, testutil.Scopes("orders:write")))),
		CheckRequest("GET", "api.example.com", "/orders/1", nil),
		CheckRequest("GET", "api.example.com", "/nowhere", nil),
		{}, // no HTTP attributes
	} {
		want := fresh(a, req)
		for range 2 {
			got := remoteCheck(t, client, req)
			if got.GetDeniedResponse() == nil || !proto.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		}
		resp, _ := s.Check(context.Background(), req)
		if _, ok := encodedOKs.Load(resp); ok {
			t.Fatal("a denial has a cached encoding")
		}
		var decoded authv3.CheckResponse
		if err := proto.Unmarshal(encoded(t, resp), &decoded); err != nil || !proto.Equal(&decoded, resp) {
			t.Fatalf("denial encodes to %v (%v), want %v", &decoded, err, resp)
		}
	}

	// Other services keep working.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", hr, err)
	}
	// Unmarshal is the default codec's.
	req := CheckRequest("GET", "h", "/p", map[string]string{"x": "y"})
	var back authv3.CheckRequest
	if err := newCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(encoded(t, req))}, &back); err != nil || !proto.Equal(&back, req) {
		t.Fatalf("round trip: %v (%v)", &back, err)
	}
	if got := newCodec().Name(); got != "proto" {
		t.Fatalf("codec name %q", got)
	}
}

// TestServerWithoutCodecAnswersInFull: a Server serves full messages to
// in-process callers and to a gRPC server without ServerOptions' codec.
func TestServerWithoutCodecAnswersInFull(t *testing.T) {
	a, idp := newCodecAuthorizer(t)
	var s Server
	s.Authorizer = a
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s.Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	client := authv3.NewAuthorizationClient(dial(t, lis.Addr().String()))
	req := CheckRequest("GET", "api.example.com", "/orders/1", bearerOf(idp.Token(t, testutil.Scopes("orders:read"))))
	want := fresh(a, req)
	for range 3 {
		got, err := s.Check(context.Background(), req)
		if err != nil || !proto.Equal(got, want) {
			t.Fatalf("in process: %v (%v), want %v", got, err, want)
		}
		if got := remoteCheck(t, client, req); !proto.Equal(got, want) || codes.Code(got.GetStatus().GetCode()) != codes.OK {
			t.Fatalf("over gRPC: %v, want %v", got, want)
		}
	}
}

// cachedEncodings counts the responses of resps that have an encoding.
func cachedEncodings(resps []*authv3.CheckResponse) int {
	n := 0
	for _, r := range resps {
		if _, ok := encodedOKs.Load(r); ok {
			n++
		}
	}
	return n
}

// fill checks n distinct tokens with s and returns the responses.
func fill(t *testing.T, s *Server, idp *testutil.IdP, n int) []*authv3.CheckResponse {
	t.Helper()
	var resps []*authv3.CheckResponse
	for i := range n {
		req := CheckRequest("GET", "api.example.com", "/orders/1",
			bearerOf(idp.Token(t, testutil.Scopes("orders:read"), testutil.Client(fmt.Sprintf("svc-%d", i)))))
		resp, err := s.Check(context.Background(), req)
		if err != nil || resp.GetOkResponse() == nil {
			t.Fatalf("check %d: %v %v", i, resp, err)
		}
		resps = append(resps, resp)
	}
	return resps
}

func TestEvictionForgetsTheEncoding(t *testing.T) {
	defer func(n int) { okCacheSize = n }(okCacheSize)
	okCacheSize = 8
	a, idp := newCodecAuthorizer(t)
	s := &Server{Authorizer: a}
	resps := fill(t, s, idp, 5*okCacheSize)

	for deadline := time.Now().Add(5 * time.Second); ; {
		s.oks.CleanUp()
		inCache := 0
		consistent := true
		for v := range s.oks.Values() {
			inCache++
			if _, ok := encodedOKs.Load(v); !ok {
				consistent = false
			}
		}
		n := cachedEncodings(resps)
		if consistent && n == inCache && n <= okCacheSize {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d encodings kept for %d cached responses (cache size %d, consistent %v)", n, inCache, okCacheSize, consistent)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDroppedServerForgetsItsEncodings(t *testing.T) {
	a, idp := newCodecAuthorizer(t)
	resps := fill(t, &Server{Authorizer: a}, idp, 5)
	if n := cachedEncodings(resps); n != len(resps) {
		t.Fatalf("%d of %d responses encoded", n, len(resps))
	}
	for deadline := time.Now().Add(10 * time.Second); cachedEncodings(resps) != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d encodings kept after their Server was dropped", cachedEncodings(resps))
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
