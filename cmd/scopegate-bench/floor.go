package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/scopegate/scopegate/envoy"
)

// floor is the always-allow ext_authz server that scopegate is compared
// with: the least any ext_authz server does, receiving a CheckRequest and
// answering it, with nothing decided.
type floor struct {
	authv3.UnimplementedAuthorizationServer
}

// allowed is the floor's one answer, shared by every call: gRPC only
// reads it, to marshal it.
var allowed = &authv3.CheckResponse{
	Status:       &rpcstatus.Status{Code: int32(codes.OK)},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
}

// Check allows every request.
func (floor) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return allowed, nil
}

// newFloorServer returns the floor's gRPC server. It has the settings of
// the server that cmd/scopegate's serve builds (envoy.ServerOptions, and
// grpc.health.v1 beside ext_authz), so that the two differ only in what
// Check does.
func newFloorServer() *grpc.Server {
	g := grpc.NewServer(envoy.ServerOptions()...)
	authv3.RegisterAuthorizationServer(g, floor{})
	healthpb.RegisterHealthServer(g, health.NewServer())
	return g
}

// serveFloor serves the floor on addr, a loopback address, until ctx ends
// or for d, whichever comes first.
func serveFloor(ctx context.Context, addr string, d time.Duration, stdout io.Writer) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	g := newFloorServer()
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	fmt.Fprintf(stdout, "floor: serving ext_authz on %s for at most %v\n", lis.Addr(), d)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	select {
	case <-ctx.Done():
		g.Stop()
		return nil
	case err := <-errc:
		return err
	}
}
