package envoy

// Adversarial tests of the hand-written CheckRequest decoder, the
// pass-through codec and the Check handler, from a review written as an
// attacker. Each test says whether it pins a bug the review found, and
// which the code now fixes, or holds a defence in place.

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

const attackPolicy = `
version: 1
default: deny
routes:
  - name: health
    match: { path: /healthz }
    public: true
  - name: orders-read
    match: { path: "/orders/**" }
    require: { scopes: { all_of: [orders:read] } }
`

// stubVerifier accepts the tokens "good" and "good-<n>", and remembers
// every token it was asked about, as a singleflight or cache that
// outlives the call would.
type stubVerifier struct {
	mu   sync.Mutex
	seen []string
}

func (v *stubVerifier) Verify(_ context.Context, token string) (*authz.Claims, error) {
	v.mu.Lock()
	v.seen = append(v.seen, token) // the view, not a copy
	v.mu.Unlock()
	if token == "good" || strings.HasPrefix(token, "good-") {
		return &authz.Claims{Issuer: "https://idp.example", Subject: token, ClientID: token, Scopes: []string{"orders:read"}}, nil
	}
	return nil, &authz.TokenError{Reason: authz.ReasonTokenInvalid, Description: "bad token"}
}

// rawServer serves a Server over real gRPC on loopback and returns a
// connection to it, on which raw CheckRequest encodings can be sent.
func rawServer(t *testing.T, v authz.Verifier, opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	pol, err := policy.Parse("policy.yaml", []byte(attackPolicy))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(append(ServerOptions(), opts...)...)
	(&Server{Authorizer: authz.New(pol, v, authz.Options{})}).Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rawCheck sends msg as a CheckRequest and decodes the answer with the
// generated code, which enforces UTF-8 as Envoy's parser does.
func rawCheck(t *testing.T, conn *grpc.ClientConn, msg []byte) (*authv3.CheckResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := new(message)
	if err := conn.Invoke(ctx, authv3.Authorization_Check_FullMethodName, &message{b: msg}, out); err != nil {
		return nil, err
	}
	var resp authv3.CheckResponse
	if err := proto.Unmarshal(out.b, &resp); err != nil {
		t.Fatalf("the CheckResponse does not parse (Envoy would fail the call, and fail open with failure_mode_allow): %v", err)
	}
	return &resp, nil
}

func httpStatusOf(resp *authv3.CheckResponse) int {
	if resp.GetOkResponse() != nil {
		return 200
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode())
}

// listRequest is a CheckRequest as Envoy sends it with
// encode_raw_headers: true, its headers in header_map.
func listRequest(path string, kv ...string) *authv3.CheckRequest {
	return httpRequest(&authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api.example.com", Path: path, HeaderMap: rawHeaders(kv...)})
}

// FIXED (divergence): in the list form, a repeated header whose
// first occurrence is empty is not joined with ",": the decoder skips the
// separator when what it has so far is "". Envoy's map form, the old
// generated-code path and want() all read ",Bearer good" for
// "Authorization:" followed by "Authorization: Bearer good", which
// bearer refuses as malformed; the hand decoder reads "Bearer good" and
// allows. Two authorization headers pass for one, and the upstream,
// reading the first, sees an empty credential while scopegate vouched
// for another.
func TestAttackEmptyFirstAuthorizationLetsTwoHeadersPassForOne(t *testing.T) {
	req := listRequest("/orders/1", "authorization", "", "authorization", "Bearer good")
	msg := marshal(t, req)

	var parsed authv3.CheckRequest
	if err := proto.Unmarshal(msg, &parsed); err != nil {
		t.Fatal(err)
	}
	wantReq, _ := want(&parsed)
	got, bad := decodeCheck(msg)
	if bad != "" {
		t.Fatal(bad)
	}
	if got.Authorization != wantReq.Authorization {
		t.Errorf("decodeCheck reads authorization %q; proto.Unmarshal and Envoy's map form read %q", got.Authorization, wantReq.Authorization)
	}

	conn := rawServer(t, &stubVerifier{})
	// The same HTTP request in Envoy's map form: Envoy joins the two.
	mapForm := marshal(t, httpRequest(&authv3.AttributeContext_HttpRequest{Method: "GET", Host: "api.example.com", Path: "/orders/1",
		Headers: map[string]string{"authorization": ",Bearer good"}}))
	for name, m := range map[string][]byte{"map form": mapForm, "list form": msg} {
		resp, err := rawCheck(t, conn, m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s := httpStatusOf(resp); s != 401 {
			t.Errorf("%s: two authorization headers, the first empty: got %d, want 401 token_malformed", name, s)
		}
	}
}

// FIXED (DoS, in the generated-code path too): every
// repeated header in the list form is joined by copying what was joined
// so far, so N occurrences copy O(N²) bytes. A 4 MiB CheckRequest of
// ~116k "authorization: <17 bytes>" entries took 51 s of CPU in
// decodeCheck (proto.Unmarshal of it: 0.17 s). Anyone who can reach the
// gRPC port can pin every core with a few such calls, and the checks
// Envoy sends meanwhile time out: errors, which failure_mode_allow lets
// through. Through Envoy itself max_request_headers_count (100 by
// default) keeps N small.
func TestAttackRepeatedHeadersAreJoinedInLinearTime(t *testing.T) {
	val := strings.Repeat("a", 17)
	var kv []string
	for range (512 << 10) / (len(val) + 19) {
		kv = append(kv, "authorization", val)
	}
	msg := marshal(t, listRequest("/orders/1", kv...))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	r, _ := decodeCheck(msg)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d entries, %d bytes: decodeCheck took %v, allocated %d bytes, authorization %d bytes", len(kv)/2, len(msg), took, allocated, len(r.Authorization))
	if allocated > 16*uint64(len(msg)) {
		t.Errorf("decoding a %d-byte CheckRequest allocated %d bytes (%dx): joining repeated headers is quadratic", len(msg), allocated, allocated/uint64(len(msg)))
	}
}

// FIXED IN PART (fail-open, in the generated-code path too): the Server
// never answers with a gRPC error, but gRPC refuses a CheckRequest over
// its receive limit with RESOURCE_EXHAUSTED before the handler runs, and
// failure_mode_allow lets that through. Envoy sends one past gRPC's
// default 4 MiB when with_request_body allows large bodies or
// max_request_headers_kb is raised; ServerOptions now receives up to
// MaxCheckRequestSize (16 MiB), and the README says to stay below.
func TestAttackOversizedCheckRequestIsADenyNotAGRPCError(t *testing.T) {
	conn := rawServer(t, &stubVerifier{})
	req := listRequest("/orders/1", "x-big", strings.Repeat("a", 5<<20))
	resp, err := rawCheck(t, conn, marshal(t, req))
	if err != nil {
		t.Fatalf("a 5 MiB CheckRequest got a gRPC error, which failure_mode_allow turns into an allow: %v", err)
	}
	if s := httpStatusOf(resp); s == 200 {
		t.Errorf("a 5 MiB CheckRequest without a token was allowed")
	}
}

// FIXED (hardening, in the generated-code path too): list-form header
// names were lower-cased with Unicode case mapping, so "authorİzation" (U+0130,
// whose lower case is ASCII 'i') is read as the authorization header.
// Envoy and every upstream compare header names ASCII case-insensitively:
// upstream, it is not an authorization header. Envoy's HTTP codecs refuse
// non-token header names, so a client cannot send it directly, but a
// filter that adds headers, or a raw gRPC caller, can.
func TestAttackNonASCIIHeaderNameIsNotAuthorization(t *testing.T) {
	for _, name := range []string{"authorİzation", "AUTHORİZATİON"} {
		msg := marshal(t, listRequest("/orders/1", name, "Bearer good"))
		r, bad := decodeCheck(msg)
		if bad != "" {
			t.Fatal(bad)
		}
		if r.Authorization != "" {
			t.Errorf("header %q is read as authorization %q; Envoy forwards it upstream as another header", name, r.Authorization)
		}
	}
}

// DEFENCE (passes): the codec copies what gRPC received, so the views
// that decodeCheck returns do not change when gRPC recycles its buffers.
func TestAttackCodecCopiesWhatItReceived(t *testing.T) {
	c := encoding.GetCodecV2("proto")
	if _, ok := c.(codec); !ok {
		t.Fatalf("the process-wide proto codec is %T, not scopegate's", c)
	}
	msg := marshal(t, CheckRequest("GET", "api.example.com", "/orders/1", map[string]string{"authorization": "Bearer good", "x-request-id": "r1"}))
	b1, b2 := append([]byte(nil), msg[:len(msg)/2]...), append([]byte(nil), msg[len(msg)/2:]...)
	data := mem.BufferSlice{mem.SliceBuffer(b1), mem.SliceBuffer(b2)}
	var m message
	if err := c.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	r, bad := decodeCheck(m.b)
	if bad != "" {
		t.Fatal(bad)
	}
	want := r
	want.Authorization, want.RequestID, want.Path = strings.Clone(r.Authorization), strings.Clone(r.RequestID), strings.Clone(r.Path)
	// gRPC frees the data once Unmarshal returns, and the next message
	// reuses its buffers.
	for _, b := range [][]byte{b1, b2} {
		for i := range b {
			b[i] = 'X'
		}
	}
	if !sameRequest(r, want) {
		t.Fatalf("the request changed when gRPC's buffers were reused: %+v, want %+v", r, want)
	}
}

// DEFENCE (passes): tokens that a verifier keeps past the call (as an
// introspection flight does) keep their value while other calls reuse
// gRPC's buffers, with many calls in flight.
func TestAttackTokenViewsOutliveTheCall(t *testing.T) {
	v := &stubVerifier{}
	conn := rawServer(t, v)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := fmt.Sprintf("good-%04d", i)
			resp, err := rawCheck(t, conn, marshal(t, CheckRequest("GET", "api.example.com", "/orders/1", map[string]string{"authorization": "Bearer " + tok})))
			if err != nil {
				errs <- err.Error()
				return
			}
			for _, h := range resp.GetOkResponse().GetHeaders() {
				if h.GetHeader().GetKey() == "x-scopegate-client-id" && h.GetHeader().GetValue() != tok {
					errs <- fmt.Sprintf("call %d got the identity %q", i, h.GetHeader().GetValue())
				}
			}
		}()
	}
	testutil.Wait(t, &wg, testutil.WaitTimeout, "the concurrent checks")
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	seen := map[string]bool{}
	for _, tok := range v.seen {
		if !strings.HasPrefix(tok, "good-") || len(tok) != len("good-0000") {
			t.Errorf("a token kept past its call now reads %q", tok)
		}
		seen[tok] = true
	}
	if len(seen) != n {
		t.Errorf("the verifier saw %d distinct tokens, want %d", len(seen), n)
	}
}

// nestedGroups returns a CheckRequest whose attributes hold depth nested
// groups, as unknown fields.
func nestedGroups(depth int) []byte {
	var g []byte
	for range depth {
		g = protowire.AppendTag(g, 9, protowire.StartGroupType)
	}
	for range depth {
		g = protowire.AppendTag(g, 9, protowire.EndGroupType)
	}
	return appendMessage(nil, checkRequestAttributes, func(b []byte) []byte { return append(b, g...) })
}

// DEFENCE (passes): whatever bytes arrive on the gRPC connection, the
// answer is a decision that parses, never a gRPC error, and nothing
// malformed or without a valid token is allowed. Messages that
// proto.Unmarshal refuses (and that the generated-code server failed the
// call on) are decided too.
func TestAttackArbitraryBytesAreDecidedNeverErrors(t *testing.T) {
	conn := rawServer(t, &stubVerifier{})
	valid := marshal(t, CheckRequest("GET", "api.example.com", "/orders/1", map[string]string{"authorization": "Bearer good"}))
	invalidUTF8Value := appendMessage(nil, checkRequestAttributes, func(b []byte) []byte {
		return appendMessage(b, attributesRequest, func(b []byte) []byte {
			return appendMessage(b, requestHTTP, func(b []byte) []byte {
				b = appendString(b, httpMethod, "GET")
				b = appendString(b, httpHost, "api.example.com")
				b = appendString(b, httpPath, "/orders/1")
				b = appendString(b, 6, "\xff") // scheme, not read
				return appendMessage(b, httpHeaders, func(b []byte) []byte {
					b = appendString(b, mapKey, "authorization")
					return appendString(b, mapValue, "Bearer \xffgood")
				})
			})
		})
	})
	if proto.Unmarshal(invalidUTF8Value, &authv3.CheckRequest{}) == nil {
		t.Fatal("proto.Unmarshal reads invalid UTF-8")
	}
	wrongWireType := appendMessage(nil, checkRequestAttributes, func(b []byte) []byte {
		return appendMessage(b, attributesRequest, func(b []byte) []byte {
			return appendMessage(b, requestHTTP, func(b []byte) []byte {
				b = appendString(b, httpMethod, "GET")
				b = appendString(b, httpHost, "api.example.com")
				b = appendString(b, httpPath, "/orders/1")
				return appendMessage(b, httpHeaders, func(b []byte) []byte {
					b = appendString(b, mapKey, "authorization")
					return appendVarint(b, mapValue, 7)
				})
			})
		})
	})
	tests := []struct {
		name   string
		msg    []byte
		status int // 0: any deny
	}{
		{"empty", nil, 400},
		{"truncated", valid[:len(valid)-1], 400},
		{"wire type 7", []byte{0x0f}, 400},
		{"stray end group", []byte{0x0c}, 400},
		{"length overflowing int", append([]byte{0x0a}, protowire.AppendVarint(nil, 1<<63)...), 400},
		{"varint of 11 bytes", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 400},
		{"groups nested past the recursion limit", nestedGroups(protowire.DefaultRecursionLimit + 1), 400},
		{"field number past the maximum", append(protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3), 0), 400},
		{"invalid UTF-8 in the token and an unread field", invalidUTF8Value, 401},
		{"path with JSON and separator specials", marshal(t, CheckRequest("GET", "h", "/\u2028<&>\"\\%00", nil)), 400},
		{"authorization value with the wrong wire type", wrongWireType, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := rawCheck(t, conn, tt.msg)
			if err != nil {
				t.Fatalf("gRPC error: %v", err)
			}
			s := httpStatusOf(resp)
			if s == 200 || (tt.status != 0 && s != tt.status) {
				t.Fatalf("got %d (%v), want %d", s, resp.GetDynamicMetadata().GetFields()["reason"], tt.status)
			}
		})
	}
}

// DEFENCE (passes): the last of repeated scalar fields wins, and a later
// HttpRequest cannot clear a header map an earlier one set: what a
// merging proto parser reads, not what the first occurrence says.
func TestAttackSplitHTTPRequestsMergeAsProtoDoes(t *testing.T) {
	first := listRequest("/healthz", "authorization", "Bearer bad")
	second := httpRequest(&authv3.AttributeContext_HttpRequest{Path: "/orders/1", HeaderMap: &corev3.HeaderMap{}})
	msg := marshal(t, first, second)
	conn := rawServer(t, &stubVerifier{})
	resp, err := rawCheck(t, conn, msg)
	if err != nil {
		t.Fatal(err)
	}
	if s := httpStatusOf(resp); s != 401 {
		t.Fatalf("the later path /orders/1 with the earlier bad token: got %d, want 401", s)
	}
}
