package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// authorizationService is what an Envoy health check with
// grpc_health_check.service_name asks for.
const authorizationService = "envoy.service.auth.v3.Authorization"

// TestGRPCHealthServesTheAuthorizationService asks the real server's
// grpc.health.v1 as Envoy's and Kubernetes' health checks do: SERVING for
// "" and for the ext_authz service, NotFound for any other, and NOT_SERVING
// for both once SIGTERM starts the drain.
func TestGRPCHealthServesTheAuthorizationService(t *testing.T) {
	bin := buildBinary(t)
	s := startIssuerServer(t, bin, t.TempDir(), "config.yaml", "")
	conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	health := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, service := range []string{"", authorizationService} {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, %v; want SERVING", service, resp.GetStatus(), err)
		}
	}
	if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "nosuch.Service"}); status.Code(err) != codes.NotFound {
		t.Errorf("Check(nosuch.Service): %v, want NotFound", err)
	}

	// Watch, as a long-lived health stream does, to see the drain: once
	// SIGTERM comes, no new RPC reaches the server.
	watchCtx, stopWatching := context.WithCancel(ctx)
	watches := map[string]healthpb.Health_WatchClient{}
	for _, service := range []string{"", authorizationService} {
		w, err := health.Watch(watchCtx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("Watch(%q): %v", service, err)
		}
		if resp, err := w.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Watch(%q) first = %v, %v; want SERVING", service, resp.GetStatus(), err)
		}
		watches[service] = w
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for service, w := range watches {
		// Recv is bounded by ctx's deadline.
		if resp, err := w.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Watch(%q) after SIGTERM = %v, %v; want NOT_SERVING", service, resp.GetStatus(), err)
		}
	}
	// The streams end here, so that the drain need not wait for them.
	stopWatching()
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.stderr.String())
	}
}
