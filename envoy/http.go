package envoy

import (
	"context"
	"log/slog"
	"net/http"
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
}

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
	w.WriteHeader(status)
	w.Write(d.AppendBody(nil))
}

// original returns the original request that r describes in p's
// convention, or why it cannot be read.
func original(p proxy, r *http.Request) (req *authz.Request, bad string) {
	req = &authz.Request{Authorization: joined(r.Header, "Authorization"), RequestID: joined(r.Header, "X-Request-Id"), Peer: source(r)}
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

// source returns the address of the original request's client: the last
// X-Forwarded-For entry, which the proxy appends, or else the proxy's own
// address. It goes to the audit trail and tells peers apart in the
// introspection budget, so it is only as good as the proxy: one that
// passes the caller's X-Forwarded-For on without appending to it (Envoy
// without use_remote_address) lets the caller choose it.
func source(r *http.Request) string {
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
