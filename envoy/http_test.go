package envoy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// httpHarness is a real HTTPServer on loopback. It keeps the decision of
// the last check it served, as its Observer saw it.
type httpHarness struct {
	url string

	mu   sync.Mutex
	last *authz.Request
	d    authz.Decision
	n    int // checks observed
}

// startHTTP serves testPolicy over HTTP, with tokens checked by v.
func startHTTP(t *testing.T, opts authz.Options, v authz.Verifier) *httpHarness {
	t.Helper()
	return serveHTTP(t, &envoy.HTTPServer{Authorizer: authorizer(t, v, opts)})
}

// authorizer decides testPolicy with tokens checked by v.
func authorizer(t *testing.T, v authz.Verifier, opts authz.Options) *authz.Authorizer {
	t.Helper()
	pol, err := policy.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return authz.New(pol, v, opts)
}

// serveHTTP serves s on loopback, observing its checks.
func serveHTTP(t *testing.T, s *envoy.HTTPServer) *httpHarness {
	t.Helper()
	h := &httpHarness{}
	s.Observe = func(r *authz.Request, d *authz.Decision, took time.Duration) {
		h.mu.Lock()
		h.last, h.d = r, *d
		h.n++
		h.mu.Unlock()
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// convention builds the request with which one proxy asks whether the
// original request may pass.
type convention struct {
	name    string
	request func(base, method, host, path string) *http.Request
}

var conventions = []convention{
	{"envoy http_service", func(base, method, host, path string) *http.Request {
		r, _ := http.NewRequest(method, base, nil)
		// Opaque is sent as it is: the original path keeps its escapes.
		r.URL.Opaque = envoy.EnvoyPathPrefix + path
		r.Host = host
		return r
	}},
	{"nginx auth_request", func(base, method, host, path string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, base+envoy.NginxPath, nil)
		r.Host = host
		r.Header.Set("X-Original-Method", method)
		r.Header.Set("X-Original-URI", path)
		return r
	}},
	{"traefik forwardAuth", func(base, method, host, path string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, base+envoy.TraefikPath, nil)
		r.Header.Set("X-Forwarded-Method", method)
		r.Header.Set("X-Forwarded-Host", host)
		r.Header.Set("X-Forwarded-Uri", path)
		return r
	}},
}

// do sends r and returns the answer with the reason of the decision that
// the server observed.
func (h *httpHarness) do(t *testing.T, r *http.Request, headers map[string]string) answer {
	t.Helper()
	return h.doWithin(t, r, headers, 5*time.Second)
}

// doWithin is do, failing the test when the answer takes longer than
// bound.
func (h *httpHarness) doWithin(t *testing.T, r *http.Request, headers map[string]string, bound time.Duration) answer {
	t.Helper()
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	h.mu.Lock()
	before := h.n
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	resp, err := http.DefaultClient.Do(r.WithContext(ctx))
	if err != nil {
		t.Fatalf("no answer within %v: %v", bound, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, headers: map[string]string{}, body: string(body)}
	for k, v := range resp.Header {
		a.headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	if rm := resp.Header.Get("X-Envoy-Auth-Headers-To-Remove"); rm != "" {
		a.removed = strings.Split(rm, ",")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n != before+1 {
		t.Fatalf("the server observed %d checks for one request", h.n-before)
	}
	a.reason = string(h.d.Reason)
	return a
}

func TestHTTPDecisionsMatchGRPCForEveryProxy(t *testing.T) {
	idp := testutil.NewIdP(t)
	h := startHTTP(t, authz.Options{}, jwtVerifierFor(t, idp))
	cases := decisionCases(t, idp)
	for _, p := range conventions {
		t.Run(p.name, func(t *testing.T) {
			for _, tt := range cases {
				t.Run(tt.name, func(t *testing.T) {
					a := h.do(t, p.request(h.url, tt.method, tt.host, tt.path), tt.headers)
					tt.verify(t, a)
					if a.status == 200 && tt.reason == authz.ReasonAllowed && a.headers["x-scopegate-client-id"] == "" {
						t.Errorf("allow without identity headers: %v", a.headers)
					}
					if a.status != 200 && a.headers["content-type"] != "application/json" {
						t.Errorf("deny content-type %q", a.headers["content-type"])
					}
				})
			}
		})
	}
}

func TestHTTPPathBypassAttemptsForEveryProxy(t *testing.T) {
	idp := testutil.NewIdP(t)
	h := startHTTP(t, authz.Options{}, jwtVerifierFor(t, idp))
	read := bearer(idp.Token(t, testutil.Scopes("orders:read")))
	for _, p := range conventions {
		t.Run(p.name, func(t *testing.T) {
			for _, tt := range pathCases {
				t.Run(tt.path, func(t *testing.T) {
					if a := h.do(t, p.request(h.url, "GET", "x", tt.path), read); a.status != tt.status || a.reason != string(tt.reason) {
						t.Fatalf("got %d %s, want %d %s", a.status, a.reason, tt.status, tt.reason)
					}
				})
			}
		})
	}
}

// failing is a Verifier that cannot reach its provider, or panics.
type failing struct{ panics bool }

func (f failing) Verify(context.Context, string) (*authz.Claims, error) {
	if f.panics {
		panic("the verifier is broken")
	}
	return nil, &authz.TokenError{Reason: authz.ReasonIntrospectionDown, Unavailable: true, Description: "the introspection endpoint did not answer in time; retry later"}
}

func TestHTTPEnvoyNeverAnswers5xx(t *testing.T) {
	tests := []struct {
		name   string
		v      failing
		reason authz.Reason
		status int // for nginx and Traefik, which show it to the caller
	}{
		{"provider unavailable", failing{}, authz.ReasonIntrospectionDown, 503},
		{"verifier panics", failing{panics: true}, authz.ReasonInternal, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHTTP(t, authz.Options{}, tt.v)
			for _, p := range conventions {
				want := tt.status
				if p.name == "envoy http_service" {
					// Envoy would take a 5xx for scopegate's own failure,
					// which failure_mode_allow lets through.
					want = 403
				}
				a := h.do(t, p.request(h.url, "GET", "x", "/orders/1"), bearer("opaque-token"))
				if a.status != want || a.reason != string(tt.reason) || a.headers["x-scopegate-reason"] != string(tt.reason) {
					t.Errorf("%s: got %d %s (header %q), want %d %s", p.name, a.status, a.reason, a.headers["x-scopegate-reason"], want, tt.reason)
				}
			}
		})
	}
}

func TestHTTPRequestsThatDoNotSayWhatToCheckAreDenied(t *testing.T) {
	idp := testutil.NewIdP(t)
	h := startHTTP(t, authz.Options{}, jwtVerifierFor(t, idp))
	read := idp.Token(t, testutil.Scopes("orders:read"))
	nginx := func(hdr http.Header) *http.Request {
		r, _ := http.NewRequest("GET", h.url+envoy.NginxPath, nil)
		r.Header = hdr
		r.Header.Set("Authorization", "Bearer "+read)
		return r
	}
	traefik := func(hdr http.Header) *http.Request {
		r, _ := http.NewRequest("GET", h.url+envoy.TraefikPath, nil)
		r.Header = hdr
		r.Header.Set("Authorization", "Bearer "+read)
		return r
	}
	tests := []struct {
		name string
		r    *http.Request
	}{
		{"nginx without X-Original-URI", nginx(http.Header{"X-Original-Method": {"GET"}})},
		{"nginx without X-Original-Method", nginx(http.Header{"X-Original-Uri": {"/orders/1"}})},
		{"nginx with X-Original-URI twice", nginx(http.Header{"X-Original-Method": {"GET"}, "X-Original-Uri": {"/orders/1", "/public/x"}})},
		{"traefik without X-Forwarded-Uri", traefik(http.Header{"X-Forwarded-Method": {"GET"}})},
		{"traefik with an empty X-Forwarded-Method", traefik(http.Header{"X-Forwarded-Method": {""}, "X-Forwarded-Uri": {"/orders/1"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := h.do(t, tt.r, nil); a.status != 400 || a.reason != string(authz.ReasonBadRequest) || !strings.Contains(a.body, `"reason":"bad_request"`) {
				t.Fatalf("got %d %s %s, want 400 bad_request", a.status, a.reason, a.body)
			}
		})
	}

	// Other paths decide nothing and are not observed.
	for _, path := range []string{"/", "/envoy", "/envoyx/orders/1", "/nginx/x", "/traefik/"} {
		resp, err := http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestHTTPIdentityHeadersCannotBeSpoofed(t *testing.T) {
	idp := testutil.NewIdP(t)
	h := startHTTP(t, authz.Options{Headers: authz.HeaderNames{Claims: map[string]string{"tenant": "x-tenant-id"}, RemoveAuthorization: true}}, newJWTVerifier(t, []authz.Issuer{{Issuer: idp.Issuer(), JWKSURI: idp.JWKSURL()}}))
	spoof := bearer(idp.Token(t, testutil.Scopes("orders:read"), testutil.Client("orders-svc")))
	spoof["x-scopegate-client-id"] = "admin-svc"
	spoof["x-tenant-id"] = "acme"
	envoyHTTP := conventions[0]

	a := h.do(t, envoyHTTP.request(h.url, "GET", "x", "/orders/1"), spoof)
	if a.status != 200 || a.headers["x-scopegate-client-id"] != "orders-svc" || a.headers["x-scopegate-scopes"] != "orders:read" {
		t.Fatalf("got %d with headers %v", a.status, a.headers)
	}
	if !contains(a.removed, "x-tenant-id") || !contains(a.removed, "authorization") {
		t.Errorf("x-envoy-auth-headers-to-remove %v must list the absent claim's header and authorization", a.removed)
	}

	a = h.do(t, envoyHTTP.request(h.url, "GET", "x", "/healthz"), spoof)
	for _, name := range []string{"x-scopegate-client-id", "x-scopegate-subject", "x-scopegate-scopes", "x-tenant-id"} {
		if !contains(a.removed, name) {
			t.Errorf("public route: %s not removed (removed %v)", name, a.removed)
		}
		if a.headers[name] != "" {
			t.Errorf("public route: %s set to %q", name, a.headers[name])
		}
	}
}

func TestHTTPSourceIsTheAddressATrustedProxyAppended(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		xff     []string
		want    string
	}{
		{"one entry", loopback, []string{"203.0.113.7"}, "203.0.113.7"},
		{"the caller's own entries come first", loopback, []string{"198.51.100.1, 203.0.113.7"}, "203.0.113.7"},
		{"the last of several headers", loopback, []string{"198.51.100.1", "203.0.113.7"}, "203.0.113.7"},
		{"none: the proxy itself", loopback, nil, "127.0.0.1:"},
		// A caller that reaches the listener itself, or through a proxy
		// not trusted, cannot choose the peer the budget counts it as.
		{"from a peer not trusted: the peer itself", nil, []string{"203.0.113.7"}, "127.0.0.1:"},
		{"from a peer outside the trusted ones", []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, []string{"203.0.113.7"}, "127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := serveHTTP(t, &envoy.HTTPServer{Authorizer: authorizer(t, failing{}, authz.Options{}), TrustedProxies: tt.trusted})
			r := conventions[2].request(h.url, "GET", "x", "/healthz")
			r.Header["X-Forwarded-For"] = tt.xff
			h.do(t, r, nil)
			h.mu.Lock()
			defer h.mu.Unlock()
			if !strings.HasPrefix(h.last.Peer, tt.want) {
				t.Errorf("peer %q, want %q", h.last.Peer, tt.want)
			}
		})
	}
}
