package envoy

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/policy"
)

// The tests below hold the wire decoder and encoders to what the
// generated code makes of the same messages: proto.Unmarshal read by the
// getters, and responses built from the generated types and compared
// with proto.Equal.

// want is what decodeCheck must read from req, by the generated getters.
func want(req *authv3.CheckRequest) (r authz.Request, ok bool) {
	attrs := req.GetAttributes()
	if sa := attrs.GetSource().GetAddress().GetSocketAddress(); sa != nil {
		r.Peer = net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
	}
	r.Principal, r.Certificate = attrs.GetSource().GetPrincipal(), authz.Certificate(attrs.GetSource().GetCertificate())
	r.DestinationPrincipal, r.SNI = attrs.GetDestination().GetPrincipal(), attrs.GetTlsSession().GetSni()
	for k, v := range attrs.GetContextExtensions() {
		r.Context.Set(k, v)
	}
	h := attrs.GetRequest().GetHttp()
	if h == nil {
		return r, false
	}
	header := h.GetHeaders()
	if len(header) == 0 && h.GetHeaderMap() != nil {
		header = map[string]string{}
		for _, hv := range h.GetHeaderMap().GetHeaders() {
			// Envoy compares header names by ASCII case only.
			k := strings.Map(func(r rune) rune {
				if 'A' <= r && r <= 'Z' {
					return r + 'a' - 'A'
				}
				return r
			}, hv.GetKey())
			v := hv.GetValue()
			if v == "" {
				v = string(hv.GetRawValue())
			}
			if prev, ok := header[k]; ok {
				v = prev + "," + v
			}
			header[k] = v
		}
	}
	r.Method, r.Host, r.Path, r.Scheme = h.GetMethod(), h.GetHost(), h.GetPath(), h.GetScheme()
	r.Authorization, r.DPoP, r.RequestID = header["authorization"], header["dpop"], header["x-request-id"]
	if r.Host == "" {
		r.Host = header[":authority"]
	}
	if r.Method == "" {
		r.Method = header[":method"]
	}
	if r.Path == "" {
		r.Path = header[":path"]
	}
	if r.Scheme == "" {
		r.Scheme = header[":scheme"]
	}
	return r, true
}

// sameRequest reports whether a and b are the same request, their
// contexts compared key by key.
func sameRequest(a, b authz.Request) bool {
	if !maps.Equal(maps.Collect(a.Context.All()), maps.Collect(b.Context.All())) {
		return false
	}
	a.Context, b.Context = authz.Context{}, authz.Context{}
	return reflect.DeepEqual(a, b)
}

// show formats r for a failure message, its context as a map.
func show(r authz.Request) string {
	ctx := maps.Collect(r.Context.All())
	r.Context = authz.Context{}
	return fmt.Sprintf("%+v context %v", r, ctx)
}

// withTLS returns a CheckRequest with the attributes of a peer over
// mutual TLS and a route's context, and nothing else.
func withTLS(source, destination *authv3.AttributeContext_Peer, sni string, context map[string]string) *authv3.CheckRequest {
	a := &authv3.AttributeContext{Source: source, Destination: destination, ContextExtensions: context,
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET"}}}
	if sni != "" {
		a.TlsSession = &authv3.AttributeContext_TLSSession{Sni: sni}
	}
	return &authv3.CheckRequest{Attributes: a}
}

func httpRequest(h *authv3.AttributeContext_HttpRequest) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}
}

func rawHeaders(kv ...string) *corev3.HeaderMap {
	m := &corev3.HeaderMap{}
	for i := 0; i < len(kv); i += 2 {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return m
}

func marshal(t testing.TB, msgs ...proto.Message) []byte {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		e, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, e...)
	}
	return b
}

func peerAt(addr *corev3.Address) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:  &authv3.AttributeContext_Peer{Address: addr},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET"}},
	}}
}

func socket(addr string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

func TestDecodeCheckReadsWhatProtoUnmarshalReads(t *testing.T) {
	tests := []struct {
		name string
		// msgs are marshaled one after the other: protobuf merges them.
		msgs []proto.Message
	}{
		{"as Envoy sends it", []proto.Message{CheckRequest("GET", "api.example.com", "/orders/42?x=1",
			map[string]string{"authorization": "Bearer abc", "x-request-id": "req-1"})}},
		{"pseudo-headers only", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Headers: map[string]string{":method": "POST", ":authority": "h.example", ":path": "/p", "authorization": "Bearer t"}})}},
		{"raw header list", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			HeaderMap: rawHeaders(":method", "GET", ":authority", "h", ":path", "/x", "authorization", "Bearer t", "x-request-id", "r")})}},
		{"the DPoP proof from the map", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", Headers: map[string]string{"authorization": "DPoP t", "dpop": "eyJ.a.b"}})}},
		{"repeated DPoP proofs in the list are joined", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", HeaderMap: rawHeaders("dpop", "eyJ.a.b", "DPoP", "eyJ.c.d")})}},
		{"repeated authorization in the list is joined", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", HeaderMap: rawHeaders("authorization", "Bearer a", "Authorization", "Bearer b")})}},
		{"list names in any case", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", HeaderMap: rawHeaders("AUTHORIZATION", "Bearer a", "X-Request-ID", "r", "authoriſation", "Bearer s", "authorİzation", "Bearer i")})}},
		{"an empty first authorization still counts", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", HeaderMap: rawHeaders("authorization", "", "authorization", "Bearer b")})}},
		{"list value beats raw value", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				{Key: "authorization", Value: "Bearer v", RawValue: []byte("Bearer raw")}}}})}},
		{"the map beats the list", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", Headers: map[string]string{"x": "y"}, HeaderMap: rawHeaders("authorization", "Bearer list")})}},
		{"map names are exact", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", Headers: map[string]string{"Authorization": "Bearer upper"}})}},
		{"an empty list is present", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", HeaderMap: &corev3.HeaderMap{}})}},
		{"no http attributes", []proto.Message{&authv3.CheckRequest{Attributes: &authv3.AttributeContext{}}}},
		{"empty", []proto.Message{&authv3.CheckRequest{}}},
		{"fields merge across repeats", []proto.Message{
			CheckRequest("GET", "a.example", "/a", map[string]string{"authorization": "Bearer a", "x-request-id": "r"}),
			httpRequest(&authv3.AttributeContext_HttpRequest{Path: "/b", Headers: map[string]string{"authorization": "Bearer b"}})}},
		{"list entries merge across repeats", []proto.Message{
			httpRequest(&authv3.AttributeContext_HttpRequest{Method: "GET", HeaderMap: rawHeaders("authorization", "Bearer a")}),
			httpRequest(&authv3.AttributeContext_HttpRequest{HeaderMap: rawHeaders("authorization", "Bearer b")})}},
		{"pipe peer", []proto.Message{peerAt(&corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/s"}}})}},
		{"named port", []proto.Message{peerAt(&corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "10.0.0.1", PortSpecifier: &corev3.SocketAddress_NamedPort{NamedPort: "http"}}}})}},
		{"socket peer merges", []proto.Message{peerAt(socket("10.0.0.1", 80)), peerAt(socket("", 8080))}},
		{"oneof keeps the last member", []proto.Message{peerAt(socket("10.0.0.1", 80)),
			peerAt(&corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/s"}}})}},
		{"oneof starts afresh", []proto.Message{peerAt(socket("10.0.0.1", 80)),
			peerAt(&corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/s"}}}), peerAt(socket("", 9))}},
		{"mutual TLS as Envoy sends it", []proto.Message{withTLS(
			&authv3.AttributeContext_Peer{Address: socket("10.0.0.7", 41234), Principal: "spiffe://cluster.local/ns/billing/sa/api",
				Certificate: "-----BEGIN%20CERTIFICATE-----%0AMIIB%0A-----END%20CERTIFICATE-----%0A"},
			&authv3.AttributeContext_Peer{Principal: "spiffe://cluster.local/ns/orders/sa/gateway"}, "orders.internal",
			map[string]string{"tier": "gold", "team": "payments"})}},
		{"TLS facts merge across repeats", []proto.Message{
			withTLS(&authv3.AttributeContext_Peer{Principal: "spiffe://a", Certificate: "c1"}, &authv3.AttributeContext_Peer{Principal: "spiffe://d"}, "a.example", nil),
			withTLS(&authv3.AttributeContext_Peer{Principal: "spiffe://b"}, nil, "b.example", nil),
			withTLS(&authv3.AttributeContext_Peer{Certificate: "c2"}, &authv3.AttributeContext_Peer{Address: socket("10.0.0.1", 1)}, "", nil)}},
		{"context entries accumulate, a repeated key replaces", []proto.Message{
			withTLS(nil, nil, "", map[string]string{"a": "1", "b": "2"}),
			withTLS(nil, nil, "", map[string]string{"b": "3", "": "empty key"})}},
		{"an empty context value is there", []proto.Message{withTLS(nil, nil, "", map[string]string{"a": ""})}},
		{"scheme from the attribute", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", Scheme: "https", Headers: map[string]string{":scheme": "http"}})}},
		{"scheme from the pseudo-header", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", Headers: map[string]string{":scheme": "https"}})}},
		{"scheme from the raw header list", []proto.Message{httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", HeaderMap: rawHeaders(":scheme", "https")})}},
		{"the last scheme wins", []proto.Message{
			httpRequest(&authv3.AttributeContext_HttpRequest{Method: "GET", Scheme: "http"}),
			httpRequest(&authv3.AttributeContext_HttpRequest{Scheme: "https"})}},
		{"TLS facts without HTTP attributes", []proto.Message{&authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Principal: "spiffe://a"}, TlsSession: &authv3.AttributeContext_TLSSession{Sni: "s"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := marshal(t, tt.msgs...)
			var req authv3.CheckRequest
			if err := proto.Unmarshal(msg, &req); err != nil {
				t.Fatal(err)
			}
			r, hasHTTP := want(&req)
			got, bad := decodeCheck(msg)
			if !sameRequest(got, r) || (bad == "") != hasHTTP {
				t.Errorf("decodeCheck = %s, bad %q\nwant %s, http attributes %v", show(got), bad, show(r), hasHTTP)
			}
		})
	}
}

func TestDecodeCheckRefusesWhatCannotBeRead(t *testing.T) {
	valid := marshal(t, CheckRequest("GET", "h", "/p", nil))
	tests := []struct {
		name string
		msg  []byte
	}{
		{"truncated", valid[:len(valid)-3]},
		{"bad tag", []byte{0x00}},
		{"length past the end", []byte{0x0a, 0x7f, 0x01}},
		{"method not UTF-8", marshalInvalidUTF8(t, httpMethod)},
		{"path not UTF-8", marshalInvalidUTF8(t, httpPath)},
		{"host not UTF-8", marshalInvalidUTF8(t, httpHost)},
		{"scheme not UTF-8", marshalInvalidUTF8(t, httpScheme)},
		{"principal not UTF-8", marshalAttributes(t, func(b []byte) []byte {
			return appendMessage(b, attributesSource, func(b []byte) []byte { return appendString(b, peerPrincipal, "spiffe://\xff") })
		})},
		{"destination principal not UTF-8", marshalAttributes(t, func(b []byte) []byte {
			return appendMessage(b, attributesDestination, func(b []byte) []byte { return appendString(b, peerPrincipal, "\xff") })
		})},
		{"SNI not UTF-8", marshalAttributes(t, func(b []byte) []byte {
			return appendMessage(b, attributesTLSSession, func(b []byte) []byte { return appendString(b, tlsSNI, "\xff") })
		})},
		{"context key not UTF-8", marshalAttributes(t, func(b []byte) []byte {
			return appendMessage(b, attributesContextExtensions, func(b []byte) []byte { return appendString(b, mapKey, "\xff") })
		})},
		{"context value not UTF-8", marshalAttributes(t, func(b []byte) []byte {
			return appendMessage(b, attributesContextExtensions, func(b []byte) []byte {
				return appendString(appendString(b, mapKey, "k"), mapValue, "\xff")
			})
		})},
		{"context entry truncated", marshalAttributes(t, func(b []byte) []byte {
			return append(protowire.AppendTag(b, attributesContextExtensions, protowire.BytesType), 2, 0x0a, 0x05)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, bad := decodeCheck(tt.msg); bad == "" {
				t.Error("decodeCheck read it")
			}
		})
	}
}

// marshalInvalidUTF8 returns a CheckRequest whose HttpRequest field num
// is "\xff", which proto.Marshal refuses to write.
func marshalInvalidUTF8(t *testing.T, num protowire.Number) []byte {
	b := appendMessage(nil, checkRequestAttributes, func(b []byte) []byte {
		return appendMessage(b, attributesRequest, func(b []byte) []byte {
			return appendMessage(b, requestHTTP, func(b []byte) []byte {
				b = appendString(b, httpMethod, "GET")
				return appendString(b, num, "\xff")
			})
		})
	})
	if err := proto.Unmarshal(b, &authv3.CheckRequest{}); err == nil {
		t.Fatal("proto.Unmarshal reads invalid UTF-8")
	}
	return b
}

// marshalAttributes returns a CheckRequest with an HTTP GET and the
// AttributeContext fields that content appends, which proto.Unmarshal
// must refuse.
func marshalAttributes(t *testing.T, content func([]byte) []byte) []byte {
	b := appendMessage(nil, checkRequestAttributes, func(b []byte) []byte {
		b = appendMessage(b, attributesRequest, func(b []byte) []byte {
			return appendMessage(b, requestHTTP, func(b []byte) []byte { return appendString(b, httpMethod, "GET") })
		})
		return content(b)
	})
	if err := proto.Unmarshal(b, &authv3.CheckRequest{}); err == nil {
		t.Fatal("proto.Unmarshal reads it")
	}
	return b
}

func FuzzDecodeCheck(f *testing.F) {
	f.Add(marshal(f, CheckRequest("GET", "api.example.com", "/orders/1", map[string]string{"authorization": "Bearer t"})))
	f.Add(marshal(f, httpRequest(&authv3.AttributeContext_HttpRequest{HeaderMap: rawHeaders("Authorization", "Bearer a", "authorization", "b")})))
	f.Add(marshal(f, httpRequest(&authv3.AttributeContext_HttpRequest{HeaderMap: rawHeaders("authorization", "DPoP a", "dpop", "p1", "DPOP", "p2")})))
	f.Add(marshal(f, httpRequest(&authv3.AttributeContext_HttpRequest{HeaderMap: rawHeaders("authorization", "", "AUTHORİZATİON", "b", "authorization", "c")})))
	f.Add(marshal(f, peerAt(socket("10.0.0.1", 80)), peerAt(&corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/s"}}})))
	f.Add(marshal(f, withTLS(&authv3.AttributeContext_Peer{Principal: "spiffe://td/a", Certificate: "%2D%2D"},
		&authv3.AttributeContext_Peer{Principal: "spiffe://td/b"}, "sni.example", map[string]string{"k": "v", "": ""}),
		withTLS(&authv3.AttributeContext_Peer{Principal: "spiffe://td/c"}, nil, "", map[string]string{"k": "w"})))
	f.Add(marshal(f, httpRequest(&authv3.AttributeContext_HttpRequest{Scheme: "https", HeaderMap: rawHeaders(":scheme", "http", ":SCHEME", "x")})))
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, bad := decodeCheck(msg)
		var req authv3.CheckRequest
		if proto.Unmarshal(msg, &req) != nil {
			return // scopegate may read more than proto does, never less
		}
		r, hasHTTP := want(&req)
		if hasHTTP && bad != "" {
			t.Fatalf("decodeCheck refused %x (%s); proto.Unmarshal read %+v", msg, bad, r)
		}
		if !sameRequest(got, r) || (bad == "") != hasHTTP {
			t.Fatalf("decodeCheck(%x) = %s, bad %q\nwant %s, http attributes %v", msg, show(got), bad, show(r), hasHTTP)
		}
	})
}

// wantOK and wantDenied are the responses as the generated types build
// them.
func wantOK(a *authz.Authorizer, d *authz.Decision) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	for name, value := range a.Upstream(d) {
		if value == "" {
			ok.HeadersToRemove = append(ok.HeadersToRemove, name)
		} else {
			ok.Headers = append(ok.Headers, headerOption(name, value))
		}
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: wantMetadata(d),
	}
}

func wantDenied(a *authz.Authorizer, d *authz.Decision) *authv3.CheckResponse {
	code := codes.PermissionDenied
	if d.Status == http.StatusUnauthorized {
		code = codes.Unauthenticated
	}
	headers := []*corev3.HeaderValueOption{headerOption("content-type", "application/json"), headerOption("x-scopegate-reason", string(d.Reason))}
	if c := a.Challenge(d); c != "" {
		headers = append(headers, headerOption("www-authenticate", c))
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: string(d.Reason)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: headers,
			Body:    string(d.AppendBody(nil)),
		}},
		DynamicMetadata: wantMetadata(d),
	}
}

func headerOption(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
}

func wantMetadata(d *authz.Decision) *structpb.Struct {
	f := map[string]*structpb.Value{"reason": structpb.NewStringValue(string(d.Reason))}
	if d.Route != "" {
		f["route"] = structpb.NewStringValue(d.Route)
	}
	if c := d.Claims; c != nil {
		f["client_id"] = structpb.NewStringValue(c.ClientID)
		f["subject"] = structpb.NewStringValue(c.Subject)
	}
	if d.WouldDeny {
		f["would_deny"] = structpb.NewBoolValue(true)
	}
	return &structpb.Struct{Fields: f}
}

func TestResponsesEncodeAsTheGeneratedTypes(t *testing.T) {
	p, err := policy.Parse("policy.yaml", []byte("version: 1\nroutes:\n  - name: r\n    match: { path: /x }\n    public: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := authz.New(p, nil, authz.Options{Realm: `api "one"`, Headers: authz.HeaderNames{RemoveAuthorization: true, Claims: map[string]string{"tenant": "X-Tenant"}}})
	claims := &authz.Claims{Issuer: "https://idp.example", Subject: "svc-a", ClientID: "svc-a", Scopes: []string{"orders:read", "orders:write"}}
	long := strings.Repeat("é<&>", 100)
	tests := []struct {
		name string
		d    authz.Decision
	}{
		{"allow with a token", authz.Decision{Allow: true, Status: 200, Reason: authz.ReasonAllowed, Route: "r", Claims: claims}},
		{"allow with a token lacking claims", authz.Decision{Allow: true, Status: 200, Reason: authz.ReasonAllowed, Route: "r",
			Claims: &authz.Claims{Issuer: "https://idp.example"}}},
		{"public allow", authz.Decision{Allow: true, Status: 200, Reason: authz.ReasonPublic, Route: "r"}},
		{"dry-run allow", authz.Decision{Allow: true, WouldDeny: true, Status: 403, Reason: authz.ReasonInsufficientScope, Route: "r", Claims: claims}},
		{"allow with long values", authz.Decision{Allow: true, Status: 200, Reason: authz.ReasonAllowed, Route: long,
			Claims: &authz.Claims{Subject: long, ClientID: long, Scopes: []string{long, long}}}},
		{"401 with a challenge", authz.Decision{Status: 401, Reason: authz.ReasonTokenExpired, Error: "invalid_token", Description: "the token expired"}},
		{"403 insufficient scope", authz.Decision{Status: 403, Reason: authz.ReasonInsufficientScope, Error: "insufficient_scope",
			Description: "the token lacks scope a", Route: "r", Required: []string{"a", "b"}, Claims: claims}},
		{"403 without a challenge", authz.Decision{Status: 403, Reason: authz.ReasonNoRoute, Description: "no route"}},
		{"503", authz.Decision{Status: 503, Reason: authz.ReasonIntrospectionDown, Description: long}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b []byte
			var want *authv3.CheckResponse
			if tt.d.Allow {
				b, want = appendOK(nil, a, &tt.d), wantOK(a, &tt.d)
			} else {
				b, want = appendDenied(nil, a, &tt.d), wantDenied(a, &tt.d)
			}
			var got authv3.CheckResponse
			if err := proto.Unmarshal(b, &got); err != nil {
				t.Fatalf("the encoding does not decode: %v", err)
			}
			if !proto.Equal(&got, want) {
				t.Errorf("got  %v\nwant %v", &got, want)
			}
		})
	}
}

func TestDecodeCheckWritesThePeerUnambiguously(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{"192.0.2.7", "192.0.2.7:443"},
		{"2001:db8::1", "[2001:db8::1]:443"},
		{"::ffff:192.0.2.7", "[::ffff:192.0.2.7]:443"},
	} {
		req := CheckRequest("GET", "api.example.com", "/", nil)
		sa := req.GetAttributes().GetSource().GetAddress().GetSocketAddress()
		sa.Address, sa.PortSpecifier = tt.addr, &corev3.SocketAddress_PortValue{PortValue: 443}
		msg, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		r, bad := decodeCheck(msg)
		if bad != "" || r.Peer != tt.want {
			t.Errorf("source %s: Peer %q (bad %q), want %q", tt.addr, r.Peer, bad, tt.want)
		}
	}
}

// BenchmarkDecodeCheck measures the reading of a CheckRequest: as Envoy
// sends it for a bearer token, and with the attributes of a peer over
// mutual TLS (include_peer_certificate) and a route's context.
func BenchmarkDecodeCheck(b *testing.B) {
	bearer := CheckRequest("GET", "api.example.com", "/orders/42", map[string]string{
		"authorization": "Bearer " + strings.Repeat("t", 800), "x-request-id": "req-1", "user-agent": "client/1.0"})
	mtls := proto.Clone(bearer).(*authv3.CheckRequest)
	mtls.Attributes.Source.Principal = "spiffe://cluster.local/ns/billing/sa/api"
	mtls.Attributes.Source.Certificate = "-----BEGIN%20CERTIFICATE-----%0A" + strings.Repeat("MIIB", 200) + "%0A-----END%20CERTIFICATE-----%0A"
	mtls.Attributes.Destination = &authv3.AttributeContext_Peer{Principal: "spiffe://cluster.local/ns/orders/sa/gateway"}
	mtls.Attributes.TlsSession = &authv3.AttributeContext_TLSSession{Sni: "orders.internal"}
	mtls.Attributes.ContextExtensions = map[string]string{"tier": "gold", "team": "payments"}
	for _, bc := range []struct {
		name string
		req  *authv3.CheckRequest
	}{{"bearer", bearer}, {"mtls", mtls}} {
		msg := marshal(b, bc.req)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, bad := decodeCheck(msg); bad != "" {
					b.Fatal(bad)
				}
			}
		})
	}
}
