package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
)

// headerFlags collects repeated --header K=V flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(s string) error {
	k, v, err := cutPair(s)
	if err == nil {
		h[strings.ToLower(k)] = v
	}
	return err
}

// contextFlags collects repeated --context K=V flags: the route's
// context_extensions, whose keys keep their case.
type contextFlags map[string]string

func (c contextFlags) String() string { return "" }

func (c contextFlags) Set(s string) error {
	k, v, err := cutPair(s)
	if err == nil {
		c[k] = v
	}
	return err
}

// cutPair splits the K=V of a flag.
func cutPair(s string) (k, v string, err error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("want K=V, got %q", s)
	}
	return k, v, nil
}

const checkUsage = `Usage: scopegate check [flags]

Send one CheckRequest, built as Envoy's ext_authz filter builds it, to a
scopegate gRPC listener and print the decision. Exit 0 allow, 1 deny,
2 error.
`

// check sends one CheckRequest built the way Envoy builds it and prints the
// decision. Exit 0 allow, 1 deny, 2 error.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.Usage = flagUsage(fs, checkUsage)
	addr := fs.String("addr", "127.0.0.1:9001", "scopegate's gRPC address")
	method := fs.String("method", "GET", "HTTP method")
	path := fs.String("path", "/", "HTTP path, with query string if any")
	host := fs.String("host", "localhost", "HTTP host (:authority)")
	peer := fs.String("peer", "127.0.0.1:50000", "the request's source address, IP:PORT, as Envoy reports the downstream peer")
	token := fs.String("token", "", "bearer token (visible in the process list: prefer --token-file)")
	tokenFile := fs.String("token-file", "", "file holding the bearer token")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	headers := headerFlags{}
	fs.Var(headers, "header", "extra request header K=V (repeatable)")
	scheme := fs.String("scheme", "http", "URL scheme of the request, as Envoy reports it (http or https)")
	principal := fs.String("principal", "", "the peer's principal as Envoy verified it over mutual TLS, such as spiffe://cluster.local/ns/billing/sa/api")
	peerCert := fs.String("peer-cert", "", "PEM file of the peer's client certificate, sent URL-encoded as Envoy's include_peer_certificate sends it")
	sni := fs.String("sni", "", "the server name the peer asked for in its TLS handshake")
	routeContext := contextFlags{}
	fs.Var(routeContext, "context", "the route's context extension K=V, as ExtAuthzPerRoute sets it (repeatable)")
	var tf tlsFlags
	tf.register(fs)
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "scopegate check: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q (flags only; see scopegate check -h)", fs.Arg(0))
	}
	source, err := netip.ParseAddrPort(*peer)
	if err != nil {
		return fail("--peer: want IP:PORT, such as 10.0.0.7:41234: %v", err)
	}
	creds, err := tf.credentials(fs)
	if err != nil {
		return fail("%v", err)
	}
	tok, from := strings.TrimSpace(*token), "--token"
	if *tokenFile != "" {
		if isSet(fs, "token") {
			return fail("--token and --token-file exclude each other")
		}
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fail("--token-file: %v", err)
		}
		tok, from = strings.TrimSpace(string(b)), "--token-file "+*tokenFile
	}
	if err := notJSON(tok); err != nil {
		return fail("%s: %v", from, err)
	}
	if tok != "" {
		headers["authorization"] = "Bearer " + tok
	}
	var cert authz.Certificate
	if *peerCert != "" {
		b, err := os.ReadFile(*peerCert)
		if err != nil {
			return fail("--peer-cert: %v", err)
		}
		if cert = authz.CertificateFromPEM(b); !isCertificate(cert) {
			return fail("--peer-cert %s: not a PEM certificate", *peerCert)
		}
	}

	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fail("%v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req := envoy.CheckRequest(*method, *host, *path, headers)
	req.Attributes.Source.Address = socketAddress(source)
	withTLS(req, *scheme, *principal, cert, *sni, routeContext)
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req)
	if err != nil {
		return fail("%s: %v%s", *addr, err, tf.hint(err))
	}
	return printCheck(stdout, resp)
}

// withTLS sets the attributes of req that Envoy takes from the peer's
// TLS connection, and the route's context.
func withTLS(req *authv3.CheckRequest, scheme, principal string, cert authz.Certificate, sni string, routeContext map[string]string) {
	req.Attributes.Request.Http.Scheme, req.Attributes.Request.Http.Headers[":scheme"] = scheme, scheme
	req.Attributes.Source.Principal, req.Attributes.Source.Certificate = principal, string(cert)
	if sni != "" {
		req.Attributes.TlsSession = &authv3.AttributeContext_TLSSession{Sni: sni}
	}
	if len(routeContext) > 0 {
		req.Attributes.ContextExtensions = routeContext
	}
}

// isCertificate reports whether c decodes to a certificate.
func isCertificate(c authz.Certificate) bool {
	_, err := c.DER()
	return err == nil
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// socketAddress is a as Envoy puts a peer in a CheckRequest.
func socketAddress(a netip.AddrPort) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       a.Addr().String(),
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(a.Port())},
	}}}
}

// notJSON returns an error when tok is JSON rather than a token: what a
// shell puts in $TOKEN when the token request fails and the error answer
// is captured in place of the access token. A bearer token (RFC 6750's
// b64token) never starts with '{', '[' or '"'. Only the answer's error and
// error_description are shown: the rest could be anything, a whole token
// response with its access_token included.
func notJSON(tok string) error {
	if tok == "" || !strings.ContainsRune(`{["`, rune(tok[0])) {
		return nil
	}
	msg := "this is not a token; did the token request fail?"
	var answer map[string]any
	if json.Unmarshal([]byte(tok), &answer) != nil {
		return errors.New(msg)
	}
	for _, k := range []string{"error", "error_description"} {
		if v, ok := answer[k].(string); ok {
			msg += fmt.Sprintf("\n  %s: %q", k, v)
		}
	}
	if _, ok := answer["access_token"]; ok {
		msg += "\n  it is a whole token response: pass its access_token alone"
	}
	return errors.New(msg)
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
