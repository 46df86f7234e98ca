// Package envoy adapts scopegate's decisions to the external
// authorization protocols of proxies: Envoy's
// envoy.service.auth.v3.Authorization/Check over gRPC, and HTTP forward
// authentication as Envoy's http_service, nginx's auth_request and
// Traefik's forwardAuth speak it. Every listener decides through the same
// path (see Observer); only the mapping of requests and answers differs.
package envoy

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/maypok86/otter/v2"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/scopegate/scopegate/authz"
)

// MetadataNamespace is the dynamic metadata namespace the decision is
// published under, so that Envoy's access log can read it as
// %DYNAMIC_METADATA(envoy.filters.http.ext_authz:client_id)%.
const MetadataNamespace = "envoy.filters.http.ext_authz"

// An Observer sees every check, for the audit log and metrics: the
// request, its decision and how long deciding took. It is called on the
// checking goroutine before the answer is sent, so it must be quick; it
// must not modify r or d.
type Observer func(r *authz.Request, d *authz.Decision, took time.Duration)

// Server implements envoy.service.auth.v3.Authorization. It never answers
// with a gRPC error: a failure is a deny, so that even an Envoy configured
// with failure_mode_allow fails closed.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	Authorizer *authz.Authorizer
	Observe    Observer // may be nil
	Logger     *slog.Logger

	oks     *otter.Cache[okKey, *authv3.CheckResponse]
	oksOnce sync.Once
}

// okKey names an allow response: everything it is built from. A warm
// token's claims are one shared, immutable *Claims held by the verifier's
// cache, so the pointer names them.
type okKey struct {
	claims         *authz.Claims
	route, version string
	reason         authz.Reason
	wouldDeny      bool
}

// okCacheSize bounds the allow responses kept for reuse. It is a variable
// for the tests.
var okCacheSize = 10_000

// ServerOptions are the settings of the gRPC server that serves Check.
// A fixed pool of stream workers serves the short unary calls of ext_authz
// without a new goroutine, and its stack growth, per call: it cut the
// server's CPU per check by about a tenth on two cores. Its codec sends
// the allow responses a Server reuses as they were encoded once, when the
// Server cached them (see codec); every other message is marshaled by
// the default proto codec.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.NumStreamWorkers(uint32(8 * runtime.GOMAXPROCS(0))),
		grpc.ForceServerCodecV2(newCodec()),
	}
}

// Register registers s on g.
func (s *Server) Register(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, s) }

// Check implements the Authorization service.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	r, ok := Request(req)
	var bad string
	if !ok {
		bad = "the check request carries no HTTP attributes"
	}
	d := check(ctx, s.Authorizer, s.Observe, s.Logger, r, bad)
	if d.Allow {
		return s.ok(&d), nil
	}
	return s.denied(&d), nil
}

// check is the decision path of every listener. It decides r with a, or
// denies it with 400 bad_request when bad says why r could not be read
// from what the proxy sent, and shows the decision to observe. A panic
// while deciding is a deny, never a failure the proxy could let through.
func check(ctx context.Context, a *authz.Authorizer, observe Observer, log *slog.Logger, r *authz.Request, bad string) authz.Decision {
	var start time.Time
	if observe != nil {
		start = time.Now()
	}
	d := decide(ctx, a, log, r, bad)
	if observe != nil {
		observe(r, &d, time.Since(start))
	}
	return d
}

// decide returns check's decision, before it is observed.
func decide(ctx context.Context, a *authz.Authorizer, log *slog.Logger, r *authz.Request, bad string) (d authz.Decision) {
	defer func() {
		if p := recover(); p != nil {
			if log == nil {
				log = slog.Default()
			}
			log.Error("check panicked; denying", "panic", p)
			d = authz.Decision{Status: http.StatusInternalServerError, Reason: authz.ReasonInternal,
				Description: "internal error", PolicyVersion: a.Policy().Version}
		}
	}()
	if bad != "" {
		return authz.Decision{Status: http.StatusBadRequest, Reason: authz.ReasonBadRequest,
			Description: bad, PolicyVersion: a.Policy().Version}
	}
	return a.Check(ctx, r)
}

// Request maps a CheckRequest to the request a decision sees. It reports
// false when the CheckRequest carries no HTTP attributes.
func Request(req *authv3.CheckRequest) (*authz.Request, bool) {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	r := &authz.Request{Peer: peer(attrs.GetSource())}
	if h == nil {
		return r, false
	}
	r.Method, r.Host, r.Path = h.GetMethod(), h.GetHost(), h.GetPath()
	header := h.GetHeaders()
	if len(header) == 0 && h.GetHeaderMap() != nil {
		header = headerMap(h.GetHeaderMap())
	}
	r.Authorization, r.RequestID = header["authorization"], header["x-request-id"]
	if r.Host == "" {
		r.Host = header[":authority"]
	}
	if r.Method == "" {
		r.Method = header[":method"]
	}
	if r.Path == "" {
		r.Path = header[":path"]
	}
	return r, true
}

// headerMap flattens Envoy's raw header list (encode_raw_headers: true) the
// way Envoy flattens its map form: repeated headers are joined with ",", so
// two authorization headers cannot pass for one.
func headerMap(m *corev3.HeaderMap) map[string]string {
	out := make(map[string]string, len(m.GetHeaders()))
	for _, hv := range m.GetHeaders() {
		k := strings.ToLower(hv.GetKey())
		v := hv.GetValue()
		if v == "" {
			v = string(hv.GetRawValue())
		}
		if prev, ok := out[k]; ok {
			v = prev + "," + v
		}
		out[k] = v
	}
	return out
}

func peer(p *authv3.AttributeContext_Peer) string {
	sa := p.GetAddress().GetSocketAddress()
	if sa == nil {
		return ""
	}
	return sa.GetAddress() + ":" + strconv.FormatUint(uint64(sa.GetPortValue()), 10)
}

// ok returns the allow response of d. The response of a recent (claims,
// route) pair is reused as it is, since gRPC only reads it: building it
// (headers, dynamic metadata) cost more than the decision on a warm path.
// It is encoded once, as it is cached, for the codec of ServerOptions to
// send; it must never be modified, lest what is sent differ from it.
func (s *Server) ok(d *authz.Decision) *authv3.CheckResponse {
	s.oksOnce.Do(s.newOKs)
	key := okKey{claims: d.Claims, route: d.Route, version: d.PolicyVersion, reason: d.Reason, wouldDeny: d.WouldDeny}
	if resp, ok := s.oks.GetIfPresent(key); ok {
		return resp
	}
	resp := s.buildOK(d)
	// Encoded before it is cached, so that its deletion from the cache,
	// which may come at once, always follows.
	encodeOK(resp)
	s.oks.Set(key, resp)
	return resp
}

// newOKs makes the cache of allow responses. The encoding of a response
// is forgotten as it leaves the cache, whatever the cause (eviction,
// replacement by a racing check of the same key), and, should s be
// dropped, when s is collected, so that encodedOKs never outgrows the
// caches of live Servers. It is forgotten in OnAtomicDeletion, not
// OnDeletion: otter's default executor would start a goroutine for every
// eviction, a cost on every miss once the cache is full; a sync.Map
// deletion is safe under the cache's bucket lock.
func (s *Server) newOKs() {
	oks := otter.Must(&otter.Options[okKey, *authv3.CheckResponse]{
		MaximumSize:      okCacheSize,
		OnAtomicDeletion: func(e otter.DeletionEvent[okKey, *authv3.CheckResponse]) { forgetOK(e.Value) },
	})
	s.oks = oks
	runtime.AddCleanup(s, func(oks *otter.Cache[okKey, *authv3.CheckResponse]) { oks.InvalidateAll() }, oks)
}

func (s *Server) buildOK(d *authz.Decision) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	for name, value := range s.Authorizer.Upstream(d) {
		if value == "" {
			ok.HeadersToRemove = append(ok.HeadersToRemove, name)
		} else {
			ok.Headers = append(ok.Headers, header(name, value, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
		}
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: metadata(d),
	}
}

func (s *Server) denied(d *authz.Decision) *authv3.CheckResponse {
	code := codes.PermissionDenied
	if d.Status == http.StatusUnauthorized {
		code = codes.Unauthenticated
	}
	headers := []*corev3.HeaderValueOption{
		header("content-type", "application/json", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
		header("x-scopegate-reason", string(d.Reason), corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
	}
	if c := s.Authorizer.Challenge(d); c != "" {
		headers = append(headers, header("www-authenticate", c, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: string(d.Reason)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: headers,
			Body:    string(d.AppendBody(nil)),
		}},
		DynamicMetadata: metadata(d),
	}
}

func header(k, v string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: action}
}

// metadata is the decision as Envoy dynamic metadata, for its access log.
func metadata(d *authz.Decision) *structpb.Struct {
	f := map[string]*structpb.Value{
		"reason": structpb.NewStringValue(string(d.Reason)),
	}
	if d.Route != "" {
		f["route"] = structpb.NewStringValue(d.Route)
	}
	if c := d.Claims; c != nil {
		f["client_id"] = structpb.NewStringValue(c.ClientID)
		f["subject"] = structpb.NewStringValue(c.Subject)
	}
	if d.WouldDeny {
		// A dry-run route let the request through: the access log shows
		// what enforcing it would have done.
		f["would_deny"] = structpb.NewBoolValue(true)
	}
	return &structpb.Struct{Fields: f}
}
