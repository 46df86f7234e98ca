package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/config"
	"github.com/scopegate/scopegate/policy"
)

// drainTimeout bounds how long in-flight checks may take after SIGTERM.
const drainTimeout = 10 * time.Second

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.Usage = flagUsage(fs, "Usage:\n  scopegate serve --config FILE [flags]\n  scopegate serve --dev [flags]\n\nServe Envoy ext_authz (gRPC, and HTTP with listen.http), with the admin\nendpoints on listen.admin.\n")
	cfgFile := fs.String("config", "", "the configuration file")
	dev := fs.Bool("dev", false, "serve a demo setup on loopback with a built-in token issuer")
	grpcAddr := fs.String("grpc", "", "override listen.grpc")
	adminAddr := fs.String("admin", "", "override listen.admin")
	devIssuerAddr := fs.String("dev-issuer", "127.0.0.1:9003", "with --dev: the built-in issuer's address")
	withPprof := fs.Bool("pprof", false, "serve Go's profiles at /debug/pprof/ on the admin listener")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A write to stdout or stderr after their reader has gone fails with
	// EPIPE, which the audit log counts as dropped lines, instead of
	// ending the process, which would leave every check to Envoy's
	// failure mode.
	signal.Ignore(syscall.SIGPIPE)
	// SIGHUP reloads the policy; caught from the start, so that one sent
	// while starting does not end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var (
		cfg *config.Config
		pol *policy.Policy
		err error
		d   *devSetup
	)
	switch {
	case *dev && *cfgFile != "":
		fmt.Fprintln(stderr, "scopegate serve: --dev and --config exclude each other")
		return 2
	case *dev:
		for _, addr := range []string{*grpcAddr, *adminAddr, *devIssuerAddr} {
			if addr != "" && !isLoopback(addr) {
				fmt.Fprintf(stderr, "scopegate serve --dev: refusing to listen on %s: dev mode serves loopback only\n", addr)
				return 2
			}
		}
		d, err = startDev(*devIssuerAddr, logger)
		if err != nil {
			fmt.Fprintf(stderr, "scopegate serve --dev: %v\n", err)
			return 1
		}
		defer d.Close()
		cfg, pol = d.Config, d.Policy
	case *cfgFile == "":
		fmt.Fprintln(stderr, "scopegate serve: --config FILE or --dev is required")
		return 2
	default:
		if cfg, pol, err = config.Load(*cfgFile, config.Everything); err != nil {
			fmt.Fprintf(stderr, "scopegate serve: invalid configuration:\n%v\n", err)
			return 1
		}
	}
	if *grpcAddr != "" {
		cfg.Listen.GRPC = *grpcAddr
	}
	if *adminAddr != "" {
		cfg.Listen.Admin = *adminAddr
	}

	o, err := newOps(cfg, stdout, stderr, logger)
	if err != nil {
		fmt.Fprintf(stderr, "scopegate serve: %v\n", err)
		return 1
	}
	defer o.Close()
	v, err := newVerifier(ctx, cfg, o.outbound, logger)
	if err != nil {
		fmt.Fprintf(stderr, "scopegate serve: %v\n", err)
		return 1
	}
	defer v.Close()
	opts := cfg.AuthzOptions()
	dpop, closeDPoP, err := newDPoP(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "scopegate serve: %v\n", err)
		return 1
	}
	defer closeDPoP()
	opts.DPoP = dpop
	a := authz.New(pol, v, opts)
	o.collect(v, pol)

	grpcLis, err := net.Listen("tcp", cfg.Listen.GRPC)
	if err != nil {
		fmt.Fprintf(stderr, "scopegate serve: listen.grpc: %v\n", err)
		return 1
	}
	adminLis, err := net.Listen("tcp", cfg.Listen.Admin)
	if err != nil {
		fmt.Fprintf(stderr, "scopegate serve: listen.admin: %v\n", err)
		return 1
	}
	o.warnExposed(cfg, logger)

	g := grpc.NewServer(o.grpcOptions()...)
	(&envoy.Server{Authorizer: a, Observe: o.observe, Logger: logger}).Register(g)
	// Envoy's health check asks for the service named in its
	// grpc_health_check.service_name, and Kubernetes' gRPC probe for
	// "" unless told otherwise: both are served, and both turn
	// NOT_SERVING when draining.
	hs := health.NewServer()
	hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)

	ps := newPolicyState(a, logger)
	reload := watchPolicy(ctx, *dev, pol, func(p *policy.Policy, err error) {
		ps.changed(p, err)
		o.metrics.PolicyReloaded(p, err)
	}, logger)

	var draining atomic.Bool
	admin := adminTimeouts.server(o.adminHandler(adminMux(v, &draining, ps, *withPprof)), logger)

	errc := make(chan error, 3)
	httpSrv, err := o.startHTTP(cfg.Listen, a, logger, errc)
	if err != nil {
		fmt.Fprintf(stderr, "scopegate serve: %v\n", err)
		return 1
	}
	go func() { errc <- g.Serve(grpcLis) }()
	go func() { errc <- admin.Serve(adminLis) }()
	logger.Info("scopegate serving", "grpc", grpcLis.Addr().String(), "admin", adminLis.Addr().String(), "policy", pol.File, "policy_version", pol.Version)
	if d != nil {
		d.PrintWelcome(stdout, grpcLis.Addr().String())
	}

wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-hup:
			reload()
		case err := <-errc:
			logger.Error("listener failed", "err", err)
			return 1
		}
	}
	logger.Info("shutting down: draining in-flight checks", "deadline", drainTimeout)
	draining.Store(true)
	hs.Shutdown()
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	httpDone := drainHTTP(httpSrv, drainTimeout, logger)
	select {
	case <-done:
	case <-time.After(drainTimeout):
		g.Stop()
	}
	<-httpDone
	shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := admin.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("admin shutdown", "err", err)
	}
	return 0
}

// watchPolicy reloads the policy file when it changes, reporting each
// reload to onChange, until ctx is done, and returns what SIGHUP does. The
// dev policy is embedded in the binary, so there is nothing to watch.
func watchPolicy(ctx context.Context, dev bool, pol *policy.Policy, onChange func(*policy.Policy, error), logger *slog.Logger) (reload func()) {
	if dev {
		return func() { logger.Warn("SIGHUP: the dev policy is built in; there is nothing to reload") }
	}
	w := &policy.Watcher{File: pol.File, Version: pol.Version, OnChange: onChange}
	go func() {
		if err := w.Run(ctx); err != nil {
			logger.Error("the policy file is not watched; restart scopegate to change the policy", "err", err)
		}
	}()
	return func() {
		logger.Info("SIGHUP: reloading the policy", "policy", pol.File)
		w.Reload()
	}
}

// adminMux serves /healthz (the process is alive), /readyz (it can
// decide: the policy is loaded, which serve guarantees before listening,
// and every issuer's keys were fetched once; not while draining; a policy
// reload that fails changes nothing here) and /policy (the policy in use
// and how its reloads went), and with withPprof Go's profiles, which
// read memory and cost CPU, so they are served only when asked for.
func adminMux(v *verifier, draining *atomic.Bool, ps *policyState, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	if withPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	}
	mux.Handle("GET /policy", ps)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case draining.Load():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case !v.Ready():
			http.Error(w, "waiting for issuer keys", http.StatusServiceUnavailable)
		default:
			io.WriteString(w, "ready\n")
		}
	})
	return mux
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
