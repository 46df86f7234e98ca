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
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

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
	Authorizer *authz.Authorizer
	Observe    Observer // may be nil
	Logger     *slog.Logger
}

// ServerOptions are the settings of the gRPC server that serves Check. A
// fixed pool of stream workers serves the short unary calls of ext_authz
// without a new goroutine, and its stack growth, per call: it cut the
// server's CPU per check by about a tenth on two cores. Messages of up to
// MaxCheckRequestSize are received.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.NumStreamWorkers(uint32(8 * runtime.GOMAXPROCS(0))),
		grpc.MaxRecvMsgSize(MaxCheckRequestSize),
	}
}

// MaxCheckRequestSize bounds the CheckRequests the server receives. gRPC
// refuses a larger one with RESOURCE_EXHAUSTED before Check sees it: an
// error, which an Envoy with failure_mode_allow lets through. Envoy's own
// limits stay far below it unless its ext_authz filter is told to send
// request bodies (with_request_body.max_request_bytes) or its listeners
// take headers past max_request_headers_kb's 96 KiB default; keep their
// sum under it. gRPC's default is 4 MiB.
const MaxCheckRequestSize = 16 << 20

// Register registers s on g as the Authorization service.
func (s *Server) Register(g *grpc.Server) { g.RegisterService(&serviceDesc, s) }

// serviceDesc is authv3.Authorization_ServiceDesc with a handler that
// takes and returns the messages in their wire encoding (see wire.go).
var serviceDesc = grpc.ServiceDesc{
	ServiceName: authv3.Authorization_ServiceDesc.ServiceName,
	HandlerType: (*interface {
		check(context.Context, []byte) []byte
	})(nil),
	Methods:  []grpc.MethodDesc{{MethodName: "Check", Handler: checkHandler}},
	Metadata: authv3.Authorization_ServiceDesc.Metadata,
}

func checkHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(message)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*Server)
	if interceptor == nil {
		return &message{s.check(ctx, in.b)}, nil
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: authv3.Authorization_Check_FullMethodName}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return &message{s.check(ctx, req.(*message).b)}, nil
	})
}

// responseSize is the room made for a response: most fit.
const responseSize = 512

// check answers the CheckRequest encoded in msg with the encoding of its
// CheckResponse.
func (s *Server) check(ctx context.Context, msg []byte) (resp []byte) {
	b := make([]byte, 0, responseSize)
	defer func() {
		// decide recovers from panics while deciding; this one catches
		// any while reading or answering, so that the answer is a deny.
		if p := recover(); p != nil {
			logPanic(s.Logger, p)
			resp = appendDenied(b[:0], s.Authorizer, internalError(s.Authorizer))
		}
	}()
	r, bad := decodeCheck(msg)
	d := check(ctx, s.Authorizer, s.Observe, s.Logger, &r, bad)
	if d.Allow {
		return appendOK(b, s.Authorizer, &d)
	}
	return appendDenied(b, s.Authorizer, &d)
}

// logPanic logs the panic p of a check that is denied for it, to log or
// else to the default logger.
func logPanic(log *slog.Logger, p any) {
	if log == nil {
		log = slog.Default()
	}
	log.Error("check panicked; denying", "panic", p)
}

// internalError is the deny of a check that failed inside scopegate.
func internalError(a *authz.Authorizer) *authz.Decision {
	return &authz.Decision{Status: http.StatusInternalServerError, Reason: authz.ReasonInternal,
		Description: "internal error", PolicyVersion: a.Policy().Version}
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
			logPanic(log, p)
			d = *internalError(a)
		}
	}()
	if bad != "" {
		return authz.Decision{Status: http.StatusBadRequest, Reason: authz.ReasonBadRequest,
			Description: bad, PolicyVersion: a.Policy().Version}
	}
	return a.Check(ctx, r)
}
