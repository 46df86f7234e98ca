// Package envoy adapts scopegate's decisions to Envoy's external
// authorization protocol: envoy.service.auth.v3.Authorization/Check over
// gRPC.
package envoy

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
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

// Server implements envoy.service.auth.v3.Authorization. It never answers
// with a gRPC error: a failure is a deny, so that even an Envoy configured
// with failure_mode_allow fails closed.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	Authorizer *authz.Authorizer
	// Observe, if set, sees every request and its decision (for the audit
	// log and metrics).
	Observe func(*authz.Request, *authz.Decision)
	Logger  *slog.Logger
}

// Register registers s on g.
func (s *Server) Register(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, s) }

// Check implements the Authorization service.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (resp *authv3.CheckResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.logger().Error("check panicked; denying", "panic", p)
			d := authz.Decision{Status: http.StatusInternalServerError, Reason: authz.ReasonInternal, Description: "internal error"}
			resp, err = s.denied(&d), nil
		}
	}()
	r, ok := Request(req)
	var d authz.Decision
	if ok {
		d = s.Authorizer.Check(ctx, r)
	} else {
		d = authz.Decision{Status: http.StatusBadRequest, Reason: authz.ReasonBadRequest, Description: "the check request carries no HTTP attributes"}
	}
	if s.Observe != nil {
		s.Observe(r, &d)
	}
	if d.Allow {
		return s.ok(&d), nil
	}
	return s.denied(&d), nil
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
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
	r.Header = h.GetHeaders()
	if len(r.Header) == 0 && h.GetHeaderMap() != nil {
		r.Header = headerMap(h.GetHeaderMap())
	}
	if r.Host == "" {
		r.Host = r.Header[":authority"]
	}
	if r.Method == "" {
		r.Method = r.Header[":method"]
	}
	if r.Path == "" {
		r.Path = r.Header[":path"]
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

func (s *Server) ok(d *authz.Decision) *authv3.CheckResponse {
	set, remove := s.Authorizer.Upstream(d)
	ok := &authv3.OkHttpResponse{HeadersToRemove: remove}
	for _, h := range set {
		ok.Headers = append(ok.Headers, header(h.Name, h.Value, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
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
			Body:    string(d.Body()),
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
	return &structpb.Struct{Fields: f}
}
