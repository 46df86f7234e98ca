package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/scopegate/scopegate/envoy"
)

// headerFlags collects repeated --header K=V flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want K=V, got %q", s)
	}
	h[strings.ToLower(k)] = v
	return nil
}

// check sends one CheckRequest built the way Envoy builds it and prints the
// decision. Exit 0 allow, 1 deny, 2 error.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9001", "scopegate's gRPC address")
	method := fs.String("method", "GET", "HTTP method")
	path := fs.String("path", "/", "HTTP path, with query string if any")
	host := fs.String("host", "localhost", "HTTP host (:authority)")
	token := fs.String("token", "", "bearer token (visible in the process list: prefer --token-file)")
	tokenFile := fs.String("token-file", "", "file holding the bearer token")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	headers := headerFlags{}
	fs.Var(headers, "header", "extra request header K=V (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	tok := *token
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "scopegate check: %v\n", err)
			return 2
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok != "" {
		headers["authorization"] = "Bearer " + tok
	}

	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "scopegate check: %v\n", err)
		return 2
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, envoy.CheckRequest(*method, *host, *path, headers))
	if err != nil {
		fmt.Fprintf(stderr, "scopegate check: %s: %v\n", *addr, err)
		return 2
	}
	return printCheck(stdout, resp)
}

func printCheck(w io.Writer, resp *authv3.CheckResponse) int {
	meta := resp.GetDynamicMetadata().AsMap()
	reason, _ := meta["reason"].(string)
	route, _ := meta["route"].(string)
	if ok := resp.GetOkResponse(); resp.GetStatus().GetCode() == 0 {
		fmt.Fprintf(w, "decision: allow\nstatus:   200\nreason:   %s\nroute:    %s\n", reason, route)
		printHeaders(w, "upstream headers set", ok.GetHeaders())
		if rm := ok.GetHeadersToRemove(); len(rm) > 0 {
			fmt.Fprintf(w, "upstream headers removed: %s\n", strings.Join(rm, ", "))
		}
		return 0
	}
	d := resp.GetDeniedResponse()
	fmt.Fprintf(w, "decision: deny\nstatus:   %d\nreason:   %s\nroute:    %s\n", d.GetStatus().GetCode(), reason, route)
	printHeaders(w, "response headers", d.GetHeaders())
	var body map[string]any
	if json.Unmarshal([]byte(d.GetBody()), &body) == nil {
		if desc, ok := body["error_description"].(string); ok {
			fmt.Fprintf(w, "why:      %s\n", desc)
		}
	}
	fmt.Fprintf(w, "body:     %s\n", d.GetBody())
	return 1
}

func printHeaders(w io.Writer, title string, hs []*corev3.HeaderValueOption) {
	if len(hs) == 0 {
		return
	}
	lines := make([]string, 0, len(hs))
	for _, h := range hs {
		lines = append(lines, fmt.Sprintf("  %s: %s", h.GetHeader().GetKey(), h.GetHeader().GetValue()))
	}
	sort.Strings(lines)
	fmt.Fprintf(w, "%s:\n%s\n", title, strings.Join(lines, "\n"))
}
