package envoy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/scopegate/scopegate/authz"
)

// The paths of the HTTP listener, one per proxy convention. The path, not
// anything in the request, chooses how the original request is read: a
// header that one proxy sets may come from the caller through another.
const (
	// EnvoyPathPrefix is the path_prefix of Envoy's ext_authz
	// http_service: Envoy appends the original path, query included, and
	// sends the original method, host and headers.
	EnvoyPathPrefix = "/envoy"
	// NginxPath is where nginx's auth_request sends its subrequests, with
	// the original request in X-Original-Method, X-Original-URI and Host.
	NginxPath = "/nginx"
	// TraefikPath is the address path of Traefik's forwardAuth, which
	// sends the original request in X-Forwarded-Method, X-Forwarded-Host
	// and X-Forwarded-Uri.
	TraefikPath = "/traefik"
)

// headersToRemove is the response header in which an HTTP authorization
// service lists, comma-separated, the headers Envoy removes from an
// allowed request.
const headersToRemove = "x-envoy-auth-headers-to-remove"

// HTTPServer serves the decisions of Authorizer over HTTP, as forward
// authentication, at EnvoyPathPrefix, NginxPath and TraefikPath. It
// decides exactly as Server does. An allowed request is answered 200 with
// the identity headers to set upstream; a denied one with the deny's
// status, WWW-Authenticate challenge, x-scopegate-reason header and JSON
// body. A request that does not say what the original request was is
// denied with 400 bad_request, and any other path is 404: a proxy that is
// not set up right fails closed.
//
// Every check is answered within Timeout. Over HTTP, unlike gRPC, a proxy
// sends no deadline with its request, yet gives up on its own: an answer
// after the proxy's timeout is a failure that the proxy's failure mode
// decides. A provider too slow for Timeout ends in a deny that arrives in
// time.
type HTTPServer struct {
	Authorizer *authz.Authorizer
	Observe    Observer // may be nil
	Logger     *slog.Logger
	// Timeout bounds each check; zero means DefaultHTTPCheckTimeout. Keep
	// it below the timeout of every proxy that calls the server.
	Timeout time.Duration
	// TrustedProxies are the addresses of the proxies whose word on the
	// client the server takes: the certificate headers of its path's
	// convention (see ClientCertHeader), X-Forwarded-Proto and
	// X-Forwarded-For. From any other peer they are ignored, since a
	// caller can send them, and the peer is the TCP peer.
	TrustedProxies []netip.Prefix
}

// The headers in which proxies forward the client certificate they
// verified, besides XFCCHeader.
const (
	// ClientCertHeader is RFC 9440's: the DER certificate as a
	// structured-field byte sequence, :base64:.
	ClientCertHeader = "Client-Cert"
	// NginxCertHeader is where docs/proxies.md has nginx put
	// $ssl_client_escaped_cert, the URL-encoded PEM certificate, as
	// ingress-nginx names it.
	NginxCertHeader = "Ssl-Client-Cert"
)

// DefaultHTTPCheckTimeout is the deadline of an HTTP check when
// HTTPServer.Timeout is zero: below the 250 ms that docs/proxies.md
// configures as Envoy's http_service timeout, with room for the answer to
// travel.
const DefaultHTTPCheckTimeout = 200 * time.Millisecond

// proxy is one convention of passing the original request.
type proxy int

const (
	envoyHTTP proxy = iota
	nginx
	traefik
)

// ServeHTTP decides the original request that r describes.
func (s *HTTPServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p proxy
	switch {
	case strings.HasPrefix(r.RequestURI, EnvoyPathPrefix+"/"):
		p = envoyHTTP
	case r.URL.Path == NginxPath:
		p = nginx
	case r.URL.Path == TraefikPath:
		p = traefik
	default:
		http.Error(w, "scopegate: no such endpoint: forward to "+EnvoyPathPrefix+"/..., "+NginxPath+" or "+TraefikPath, http.StatusNotFound)
		return
	}
	req, bad := original(p, r)
	if bad == "" && s.trusts(r) {
		req.Peer = forwardedFor(r)
		bad = forwardedTLS(p, r, req)
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultHTTPCheckTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	d := check(ctx, s.Authorizer, s.Observe, s.Logger, req, bad)
	cancel()
	h := w.Header()
	if d.Allow {
		var remove []string
		for name, value := range s.Authorizer.Upstream(&d) {
			if value == "" {
				remove = append(remove, name)
			} else {
				h.Set(name, value)
			}
		}
		// nginx and Traefik overwrite or clear the identity headers that
		// their configuration lists; Envoy needs to be told.
		if p == envoyHTTP && len(remove) > 0 {
			h.Set(headersToRemove, strings.Join(remove, ","))
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	status := d.Status
	if p == envoyHTTP && status >= 500 {
		// Envoy takes a 5xx answer of an HTTP authorization service for
		// the service's failure, which failure_mode_allow lets through:
		// the deny must not look like one. The reason header and the
		// body still say why.
		status = http.StatusForbidden
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Scopegate-Reason", string(d.Reason))
	if c := s.Authorizer.Challenge(&d); c != "" {
		h.Set("WWW-Authenticate", c)
	}
	if d.DPoPNonce != "" {
		h.Set("DPoP-Nonce", d.DPoPNonce)
	}
	w.WriteHeader(status)
	w.Write(d.AppendBody(nil))
}

// original returns the original request that r describes in p's
// convention, or why it cannot be read.
func original(p proxy, r *http.Request) (req *authz.Request, bad string) {
	req = &authz.Request{Authorization: joined(r.Header, "Authorization"), DPoP: joined(r.Header, "Dpop"), RequestID: joined(r.Header, "X-Request-Id"), Peer: r.RemoteAddr}
	switch p {
	case envoyHTTP:
		req.Method, req.Host = r.Method, r.Host
		// The request-target as sent, escapes included: normalizing it is
		// the decision's job.
		req.Path = r.RequestURI[len(EnvoyPathPrefix):]
	case nginx:
		req.Host = r.Host
		if req.Method, bad = single(r.Header, "X-Original-Method"); bad == "" {
			req.Path, bad = single(r.Header, "X-Original-Uri")
		}
	case traefik:
		// Traefik always sends X-Forwarded-Host: without it, the host
		// would be unknown, not any host.
		if req.Method, bad = single(r.Header, "X-Forwarded-Method"); bad == "" {
			if req.Path, bad = single(r.Header, "X-Forwarded-Uri"); bad == "" {
				req.Host, bad = single(r.Header, "X-Forwarded-Host")
			}
		}
	}
	return req, bad
}

// trusts reports whether r comes from one of the trusted proxies.
func (s *HTTPServer) trusts(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range s.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedTLS reads into req what a trusted proxy says of its client's
// TLS connection, in p's convention, or says why it cannot be read. Each
// path reads the headers of the proxies that use it, and no other: a
// proxy that sets or clears the headers of its own convention passes a
// caller's others through.
//
//   - Envoy's http_service: x-forwarded-client-cert (the last element,
//     which the proxy appended), or RFC 9440's Client-Cert.
//   - nginx: Ssl-Client-Cert, its $ssl_client_escaped_cert.
//   - Traefik: none (its passTLSClientCert convention is not read).
//
// Every path reads the scheme from X-Forwarded-Proto.
func forwardedTLS(p proxy, r *http.Request, req *authz.Request) (bad string) {
	if vs := r.Header.Values("X-Forwarded-Proto"); len(vs) > 0 {
		if len(vs) > 1 || !(strings.EqualFold(vs[0], "http") || strings.EqualFold(vs[0], "https")) {
			return "the request carries an X-Forwarded-Proto that is not one http or https"
		}
		req.Scheme = strings.ToLower(vs[0])
	}
	var name string
	switch p {
	case envoyHTTP:
		xfcc, cc := r.Header.Values(XFCCHeader), r.Header.Values(ClientCertHeader)
		switch {
		case len(xfcc) > 0 && len(cc) > 0:
			return "the request carries both " + XFCCHeader + " and " + ClientCertHeader
		case len(xfcc) > 0:
			name = XFCCHeader
			// Repeated headers are one list, as HTTP joins them.
			e, err := lastXFCC(strings.Join(xfcc, ","))
			if err != nil {
				return err.Error()
			}
			req.Certificate, req.DestinationPrincipal = authz.Certificate(e.cert), e.by
			// Envoy's source.principal: the URI SAN, else the DNS SAN.
			if req.Principal = e.uri; req.Principal == "" {
				req.Principal = e.dns
			}
			if e.hash != "" && e.cert != "" {
				sum, err := req.Certificate.SHA256()
				if err != nil {
					return XFCCHeader + " carries a Cert that is not a certificate: " + err.Error()
				}
				if want, err := hex.DecodeString(e.hash); err != nil || !bytes.Equal(want, sum[:]) {
					return XFCCHeader + " carries a Hash that is not its Cert's"
				}
			}
		case len(cc) > 0:
			name = ClientCertHeader
			der, bad := clientCert(cc)
			if bad != "" {
				return bad
			}
			req.Certificate = authz.CertificateFromDER(der)
		}
	case nginx:
		if vs := r.Header.Values(NginxCertHeader); len(vs) > 0 {
			if len(vs) > 1 {
				return "the request carries " + NginxCertHeader + " more than once"
			}
			name, req.Certificate = NginxCertHeader, authz.Certificate(vs[0])
		}
	}
	// Refused now, not when a decision would need it: a proxy that
	// forwards something else is set up wrong.
	if req.Certificate != "" {
		if _, err := req.Certificate.SHA256(); err != nil {
			return name + " is not a certificate: " + err.Error()
		}
	}
	return ""
}

// clientCert reads the DER certificate of RFC 9440's Client-Cert header,
// a singleton byte sequence (RFC 8941 §3.3.5).
func clientCert(vs []string) (der []byte, bad string) {
	v := strings.Trim(vs[0], " \t")
	if len(vs) > 1 || len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
		return nil, "the request carries a " + ClientCertHeader + " that is not one :base64: byte sequence"
	}
	// RFC 8941 §4.2.7: a parser should not fail for missing padding.
	der, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v[1:len(v)-1], "="))
	if err != nil || len(der) == 0 {
		return nil, "the request carries a " + ClientCertHeader + " that is not base64"
	}
	return der, ""
}

// single returns the value of the header name, which must be there once
// and not empty, or why it is not.
func single(h http.Header, name string) (v, bad string) {
	switch vs := h.Values(name); {
	case len(vs) > 1:
		return "", "the request carries " + name + " more than once"
	case len(vs) == 0 || vs[0] == "":
		return "", "the request carries no " + name + " header to say what the original request was"
	default:
		return vs[0], ""
	}
}

// joined returns the values of the header name as Envoy sends a header in
// a CheckRequest: repeated ones joined with ",", so that two authorization
// headers cannot pass for one.
func joined(h http.Header, name string) string {
	return strings.Join(h.Values(name), ",")
}

// forwardedFor returns the address of the original request's client as a
// trusted proxy says it: the last X-Forwarded-For entry, which the proxy
// appends, or else the proxy's own address. It goes to the audit trail
// and tells peers apart in the introspection budget, so it is taken only
// from a trusted proxy, and is only as good as that proxy: one that passes
// the caller's X-Forwarded-For on without appending to it (Envoy without
// use_remote_address) lets the caller choose it.
func forwardedFor(r *http.Request) string {
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		last := xff[len(xff)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if last = strings.TrimSpace(last); last != "" {
			return last
		}
	}
	return r.RemoteAddr
}
