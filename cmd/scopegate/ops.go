package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/config"
	"github.com/scopegate/scopegate/internal/telemetry"
	"github.com/scopegate/scopegate/internal/tlsfiles"
	"github.com/scopegate/scopegate/policy"
)

// ops is what serve adds for operators: the metrics, the audit log, the
// TLS of the ext_authz listeners and the clients of the calls to identity
// providers.
type ops struct {
	metrics  *telemetry.Metrics
	audit    *telemetry.Audit // nil when the audit log is off
	auditOut io.Closer        // the audit log's file, if it has one
	tls      *tlsfiles.Server // nil without tls
	outbound outbound
}

// outbound holds the HTTP clients of the calls to identity providers,
// which trust the config's ca_file, or else the system's CAs.
type outbound struct {
	jwks, introspection *http.Client
}

// newOps builds what cfg asks for. The audit log goes to stdout unless
// cfg says otherwise.
func newOps(cfg *config.Config, stdout, stderr io.Writer, logger *slog.Logger) (*ops, error) {
	o := &ops{metrics: telemetry.NewMetrics()}
	var err error
	if o.tls, err = loadTLS(cfg, logger); err != nil {
		return nil, err
	}
	if o.tls != nil {
		o.metrics.CollectCertificateExpiry(o.tls.NotAfter)
	}
	if o.outbound, err = newOutbound(cfg, o.metrics); err != nil {
		return nil, err
	}
	if cfg.Audit.On() {
		w := stdout
		switch cfg.Audit.Output {
		case "", "stdout":
		case "stderr":
			w = stderr
		default:
			f, err := os.OpenFile(cfg.Audit.Output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
			if err != nil {
				return nil, fmt.Errorf("audit.output: %w", err)
			}
			w, o.auditOut = f, f
		}
		o.audit = telemetry.NewBufferedAudit(w, cfg.Audit.SampleRate(), auditFlushAfter, logger)
		o.metrics.CollectAuditDropped(o.audit.Dropped)
	}
	return o, nil
}

// auditFlushAfter is how long an audit line may wait to be written with
// others. Writing each line as it came was a system call in every denied
// check; a crash loses the lines that wait, so the wait is short.
const auditFlushAfter = 100 * time.Millisecond

// Close writes the audit lines that wait, giving up on an output that
// takes none for a while, and closes the audit log's file, if it has one.
func (o *ops) Close() error {
	err := o.audit.Close()
	if o.auditOut != nil {
		err = errors.Join(err, o.auditOut.Close())
	}
	return err
}

// loadTLS reads the TLS files of the ext_authz listeners, if cfg has them.
func loadTLS(cfg *config.Config, logger *slog.Logger) (*tlsfiles.Server, error) {
	if cfg.TLS == nil {
		return nil, nil
	}
	return tlsfiles.NewServer(*cfg.TLS, 0, logger)
}

// newOutbound returns the clients of the calls to identity providers; the
// introspection client's requests are timed in m.
func newOutbound(cfg *config.Config, m *telemetry.Metrics) (outbound, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		pool, err := tlsfiles.Pool(cfg.CAFile)
		if err != nil {
			return outbound{}, fmt.Errorf("ca_file: %w", err)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	in := t.Clone()
	if cfg.Introspection != nil {
		// As authz's own client does: every check of an uncached token is
		// a request to one host, so keep a connection open for each
		// request that may be under way, and a burst does not dial anew.
		in.MaxIdleConnsPerHost = cmp.Or(cfg.Introspection.MaxConcurrent, authz.DefaultIntrospectionMaxConcurrent)
	}
	return outbound{
		// The timeout of authz's own client: a key set or a discovery
		// document that takes longer is not coming.
		jwks:          &http.Client{Transport: t, Timeout: 10 * time.Second},
		introspection: &http.Client{Transport: m.InstrumentIntrospection(in)},
	}, nil
}

// observe is the listeners' envoy.Observer: it counts the check and
// writes its audit line.
func (o *ops) observe(r *authz.Request, d *authz.Decision, took time.Duration) {
	o.metrics.ObserveCheck(d, took)
	o.audit.Record(r, d, took)
}

// collect adds the counters of v's verifiers to the metrics, and p as the
// policy in use.
func (o *ops) collect(v *verifier, p *policy.Policy) {
	if v.jwt != nil {
		o.metrics.CollectJWKS(v.jwt.JWKSStats)
	}
	if v.in != nil {
		o.metrics.CollectIntrospection(v.in.Stats)
	}
	o.metrics.PolicyLoaded(p.Version)
}

// grpcOptions returns the options of the gRPC listener: how long a client
// may take to connect or stay idle, and its TLS, if any.
func (o *ops) grpcOptions() []grpc.ServerOption {
	opts := append(envoy.ServerOptions(),
		// gRPC's default gives a client two minutes to finish the TLS and
		// HTTP/2 handshakes.
		grpc.ConnectionTimeout(handshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			// Close a connection without checks for this long (Envoy
			// connects again when it has one) and one whose peer is gone.
			MaxConnectionIdle: 5 * time.Minute,
			Time:              time.Minute,
			Timeout:           20 * time.Second,
		}),
		// Envoy's HTTP/2 keepalive (connection_keepalive) may ping every
		// few seconds, also between checks: gRPC's default policy would
		// close the connection for it.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	if o.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.tls.Config("h2"))))
	}
	return opts
}

// adminHandler adds /metrics to the admin endpoints of next.
func (o *ops) adminHandler(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", o.metrics.Handler())
	mux.Handle("/", next)
	return mux
}

// warnExposed warns of every ext_authz listener that serves tokens in the
// clear beyond this host, and of an admin listener beyond it: the admin
// endpoints have no authentication and tell anyone who asks the policy,
// the metrics and, with --pprof, the process's memory.
func (o *ops) warnExposed(cfg *config.Config, logger *slog.Logger) {
	if !isLoopback(cfg.Listen.Admin) {
		logger.Warn("serving the admin endpoints on a non-loopback address: they have no authentication; keep them to the pod or host network", "addr", cfg.Listen.Admin)
	}
	if o.tls != nil {
		return
	}
	for _, addr := range []string{cfg.Listen.GRPC, cfg.Listen.HTTP} {
		if addr != "" && !isLoopback(addr) {
			logger.Warn("serving ext_authz in plaintext on a non-loopback address: set tls", "addr", addr)
		}
	}
}

// startHTTP serves the HTTP ext_authz listener at l.HTTP, over TLS if
// configured, sending the error that ends it to errc. With no address it
// does nothing and returns nil.
func (o *ops) startHTTP(l config.Listen, a *authz.Authorizer, logger *slog.Logger, errc chan<- error) (*http.Server, error) {
	if l.HTTP == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", l.HTTP)
	if err != nil {
		return nil, fmt.Errorf("listen.http: %w", err)
	}
	h := &envoy.HTTPServer{Authorizer: a, Observe: o.observe, Logger: logger, Timeout: l.HTTPCheckTimeout, TrustedProxies: l.TrustedProxyPrefixes()}
	srv := httpTimeouts(h.Timeout).server(h, logger)
	srv.Addr = lis.Addr().String()
	logger.Info("serving ext_authz over HTTP", "http", srv.Addr, "tls", o.tls != nil)
	if o.tls == nil {
		go func() { errc <- srv.Serve(lis) }()
		return srv, nil
	}
	srv.TLSConfig = o.tls.Config("h2", "http/1.1")
	go func() { errc <- srv.ServeTLS(lis, "", "") }()
	return srv, nil
}

// handshakeTimeout bounds how long a client of any listener may take to
// connect: its TLS handshake, and the headers of its first request or its
// HTTP/2 preface.
const handshakeTimeout = 5 * time.Second

// serverTimeouts bound how long a client may hold a connection of an HTTP
// listener: to send the headers of a request, the whole request, to take
// the answer, and between requests. None is ever unbounded: a client that
// is slow or gone would otherwise hold its connection forever.
type serverTimeouts struct {
	readHeader, read, write, idle time.Duration
}

// httpTimeouts returns the timeouts of the HTTP ext_authz listener, whose
// checks take at most check (zero: the default deadline). Proxies send
// requests without a body, or with one they have already read.
func httpTimeouts(check time.Duration) serverTimeouts {
	if check <= 0 {
		check = envoy.DefaultHTTPCheckTimeout
	}
	return serverTimeouts{readHeader: handshakeTimeout, read: 10 * time.Second, write: check + 10*time.Second, idle: 2 * time.Minute}
}

// adminTimeouts are the timeouts of the admin listener. Its answers are
// written within the write timeout, which is long enough for the CPU
// profile of --pprof: 30 seconds unless asked for longer, and pprof refuses
// a profile that would not fit.
var adminTimeouts = serverTimeouts{readHeader: handshakeTimeout, read: 10 * time.Second, write: 2 * time.Minute, idle: 2 * time.Minute}

// server returns a server of h with the timeouts t, logging its errors
// (a failed TLS handshake, say) to logger.
func (t serverTimeouts) server(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// drainHTTP stops srv, if any, from taking new requests and waits for the
// ones under way, at most timeout; then it closes their connections. The
// channel it returns is closed when srv is stopped.
func drainHTTP(srv *http.Server, timeout time.Duration, logger *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	if srv == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("HTTP ext_authz listener: checks still under way at the drain deadline", "err", err)
			srv.Close()
		}
	}()
	return done
}
