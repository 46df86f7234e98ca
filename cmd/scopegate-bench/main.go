// Command scopegate-bench measures Envoy ext_authz gRPC servers: scopegate,
// the floor it is compared with, and its peers. It stands in for Envoy,
// sending the CheckRequests Envoy sends from a fixed number of concurrent
// callers, and reports throughput, latency percentiles, errors by kind,
// and the server's CPU time per check and memory, read from /proc.
//
// Usage:
//
//	scopegate-bench [-addr 127.0.0.1:9001] [-c 16] [-conns 2] [-d 10s] [-warmup 2s] [-server-pid PID] [-json]
//	                [-mix mix.yaml | -method GET -path /orders/42 -token-file tokens.txt [-unique] [-expect allow]]
//	scopegate-bench -serve-floor 127.0.0.1:9101
//	scopegate-bench -setup DIR [-tokens 1000] [-routes 10] [-alg RS256]
//	scopegate-bench -suite docs/performance.md -scopegate bin/scopegate [-gobench FILE] [-render]
//
// The first form loads one server. -serve-floor serves the floor, an
// always-allow ext_authz server with scopegate's gRPC settings. -setup
// writes a scopegate config and policy that trust the harness's own token
// issuer, token files and a request mix, and serves the issuer's JWKS,
// for runs against a scopegate started by hand. -suite runs every
// scenario of the performance report, each against a server it starts,
// and writes the report (`make bench`).
//
// Every run stops by itself, and the harness talks to loopback only.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/scopegate/scopegate/internal/devidp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command with args and returns its exit code: 0 when it
// did its work, 1 when it failed, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scopegate-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9001", "the ext_authz gRPC server to load, on loopback")
	c := fs.Int("c", 16, "concurrency: callers, each with one call under way at a time")
	conns := fs.Int("conns", 2, "gRPC connections the callers share")
	d := fs.Duration("d", 10*time.Second, "how long to measure")
	warmup := fs.Duration("warmup", 2*time.Second, "how long to run before measuring")
	pid := fs.Int("server-pid", 0, "the server's process id: report its CPU time per check and memory, from /proc")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	mixFile := fs.String("mix", "", "a YAML request mix, instead of -method, -host, -path, -token-file, -unique and -expect")
	method := fs.String("method", "GET", "the requests' method")
	host := fs.String("host", benchHost, "the requests' host (:authority)")
	path := fs.String("path", "/orders/42", "the requests' path")
	tokenFile := fs.String("token-file", "", "bearer tokens, one a line, sent in turn; without it, no authorization header")
	unique := fs.Bool("unique", false, "send each token of -token-file once: the run ends when they run out")
	expect := fs.String("expect", "allow", "the decision the requests should get: allow, deny or any; others count as errors")
	floorAddr := fs.String("serve-floor", "", "serve the floor on this loopback address, instead of loading a server")
	serveFor := fs.Duration("serve-for", time.Hour, "with -serve-floor or -setup: serve at most this long")
	setupDir := fs.String("setup", "", "write a scopegate config, policy, tokens and mix into this folder and serve the tokens' JWKS")
	issuerAddr := fs.String("issuer-addr", "127.0.0.1:0", "with -setup: where to serve the JWKS")
	tokens := fs.Int("tokens", 1000, "with -setup: how many valid tokens to mint")
	routes := fs.Int("routes", 10, "with -setup: how many routes the policy has")
	alg := fs.String("alg", devidp.RS256, "with -setup: the tokens' algorithm: RS256, ES256 or EdDSA")
	suiteOut := fs.String("suite", "", "run every scenario and write this Markdown report, with its .json and .svg beside it")
	gate := fs.String("scopegate", "bin/scopegate", "with -suite: the scopegate binary")
	gobench := fs.String("gobench", "", "with -suite: a file of `go test -bench -benchmem` output to include")
	render := fs.Bool("render", false, "with -suite: rewrite the report from its .json, measuring nothing")
	revision := fs.String("revision", "", "with -suite: the revision measured, for the report")
	only := fs.String("only", "", "with -suite: run only these scenarios, comma-separated, and the floor")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scopegate-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}

	var err error
	switch {
	case *floorAddr != "":
		err = serveFloor(ctx, *floorAddr, *serveFor, stdout)
	case *setupDir != "":
		err = setup(ctx, setupOptions{
			Dir: *setupDir, IssuerAddr: *issuerAddr, GRPC: *addr, Admin: "127.0.0.1:9002",
			Tokens: *tokens, Routes: *routes, Alg: *alg, Serve: *serveFor,
		}, stdout)
	case *suiteOut != "":
		err = runSuite(ctx, suiteOptions{
			Out: *suiteOut, Gate: *gate, GoBench: *gobench, Render: *render, Revision: *revision, Only: splitList(*only),
			Command: strings.Join(append([]string{"bin/scopegate-bench"}, args...), " "),
		}, stderr)
	default:
		var mix *Mix
		if mix, err = flagMix(*mixFile, *method, *host, *path, *tokenFile, *unique, Expect(*expect)); err == nil {
			l := &Load{Addr: *addr, Concurrency: *c, Conns: *conns, Warmup: *warmup, Duration: *d, Mix: mix, ServerPID: *pid}
			err = loadOnce(ctx, l, *asJSON, stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "scopegate-bench: %v\n", err)
		return 1
	}
	return 0
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// flagMix returns the mix of a mix file, or else the one request the
// flags describe.
func flagMix(file, method, host, path, tokenFile string, unique bool, expect Expect) (*Mix, error) {
	if file != "" {
		return loadMix(file)
	}
	r := Request{Method: strings.ToUpper(method), Host: host, Path: path, Expect: expect}
	if tokenFile != "" {
		tokens, err := readTokens(tokenFile)
		if err != nil {
			return nil, err
		}
		r.Tokens = RoundRobin(tokens)
		if unique {
			r.Tokens = Unique(tokens)
		}
	}
	return &Mix{Requests: []Request{r}}, nil
}

// loadOnce runs l and prints its result.
func loadOnce(ctx context.Context, l *Load, asJSON bool, stdout io.Writer) error {
	res, err := l.Run(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.WriteText(stdout)
	return nil
}
