package envoy_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

const testPolicy = `
version: 1
default: deny
routes:
  - name: health
    match: { path: /healthz }
    public: true
  - name: public-docs
    match: { path: "/public/**" }
    public: true
  - name: orders-read
    match: { methods: [GET, HEAD], path: "/orders/**" }
    require: { scopes: { all_of: [orders:read] } }
  - name: orders-create
    match: { hosts: [api.example.com], methods: [POST], path: /orders }
    require:
      scopes: { any_of: [orders:write, orders:admin] }
      clients: [billing-svc]
  - name: admin
    match: { path: "/admin/**" }
    deny: true
`

// harness is a real scopegate gRPC server on loopback, backed by a real
// JWT verifier that fetches keys from a real IdP, and a real client.
type harness struct {
	idp    *testutil.IdP
	client authv3.AuthorizationClient
}

func start(t *testing.T, opts authz.Options, issuers ...authz.Issuer) *harness {
	t.Helper()
	idp := testutil.NewIdP(t)
	if len(issuers) == 0 {
		issuers = []authz.Issuer{{Issuer: idp.Issuer(), JWKSURI: idp.JWKSURL(), Audiences: []string{testutil.DefaultAudience}}}
	}
	pol, err := policy.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	jv := newJWTVerifier(t, issuers)

	return &harness{idp: idp, client: serve(t, authz.New(pol, jv, opts))}
}

// serve serves a on loopback over real gRPC and returns a client of it.
func serve(t *testing.T, a *authz.Authorizer) authv3.AuthorizationClient {
	t.Helper()
	return serveServer(t, &envoy.Server{Authorizer: a})
}

// serveServer serves s on loopback over real gRPC and returns a client of
// it.
func serveServer(t *testing.T, s *envoy.Server) authv3.AuthorizationClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s.Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// newJWTVerifier returns a real verifier of issuers' tokens, their keys
// fetched.
func newJWTVerifier(t testing.TB, issuers []authz.Issuer) *authz.JWTVerifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	jv, err := authz.NewJWTVerifier(ctx, issuers, authz.JWTOptions{RefetchCooldown: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(jv.Close)
	// NewJWTVerifier fetches the keys before it returns.
	if !jv.Ready() {
		t.Fatal("the verifier did not fetch the IdP's keys")
	}
	return jv
}

func jwtVerifierFor(t testing.TB, idp *testutil.IdP) *authz.JWTVerifier {
	return newJWTVerifier(t, []authz.Issuer{{Issuer: idp.Issuer(), JWKSURI: idp.JWKSURL(), Audiences: []string{testutil.DefaultAudience}}})
}

// answer is the part of a CheckResponse the tests look at.
type answer struct {
	code    codes.Code
	status  int
	reason  string
	headers map[string]string // set upstream on allow; sent downstream on deny
	removed []string
	body    string
}

func (h *harness) check(t *testing.T, method, host, path string, headers map[string]string) answer {
	t.Helper()
	return send(t, h.client, envoy.CheckRequest(method, host, path, headers))
}

// send sends req over client and returns the answer.
func send(t *testing.T, client authv3.AuthorizationClient, req *authv3.CheckRequest) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := client.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v (scopegate must never answer with a gRPC error)", err)
	}
	a := answer{code: codes.Code(resp.GetStatus().GetCode()), headers: map[string]string{}}
	a.reason = resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
	if ok := resp.GetOkResponse(); ok != nil {
		a.status = 200
		for _, hv := range ok.GetHeaders() {
			a.headers[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
		}
		a.removed = ok.GetHeadersToRemove()
	}
	if d := resp.GetDeniedResponse(); d != nil {
		a.status = int(d.GetStatus().GetCode())
		for _, hv := range d.GetHeaders() {
			a.headers[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
		}
		a.body = d.GetBody()
	}
	if (a.code == codes.OK) != (a.status == 200) {
		t.Fatalf("gRPC status %v disagrees with HTTP status %d", a.code, a.status)
	}
	return a
}

func bearer(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }

// decisionCase is one row of the decision table that every listener is
// held to.
type decisionCase struct {
	name, method, host, path string
	headers                  map[string]string
	status                   int
	reason                   authz.Reason
	challenge                string // substring of www-authenticate; "-" for none
}

// decisionCases returns the decision table of testPolicy for tokens of
// idp, the issuer that the listener under test trusts.
func decisionCases(t *testing.T, idp *testutil.IdP) []decisionCase {
	read := idp.Token(t, testutil.Scopes("orders:read"))
	other := testutil.NewIdP(t)
	return []decisionCase{
		{"valid token with the scope is allowed", "GET", "api.example.com", "/orders/1", bearer(read), 200, authz.ReasonAllowed, "-"},
		{"HEAD follows the method list", "HEAD", "api.example.com", "/orders", bearer(read), 200, authz.ReasonAllowed, "-"},
		{"public route needs no token", "GET", "api.example.com", "/healthz", nil, 200, authz.ReasonPublic, "-"},
		{"missing token is 401 with a bare challenge", "GET", "x", "/orders/1", nil, 401, authz.ReasonTokenMissing, `Bearer realm="scopegate"`},
		{"basic credentials are invalid_request", "GET", "x", "/orders/1", map[string]string{"authorization": "Basic dXNlcjpwYXNz"}, 401, authz.ReasonTokenMalformed, `error="invalid_request"`},
		{"two tokens are invalid_request", "GET", "x", "/orders/1", map[string]string{"authorization": "Bearer " + read + ",Bearer " + read}, 401, authz.ReasonTokenMalformed, `error="invalid_request"`},
		{"garbage token is invalid_token", "GET", "x", "/orders/1", bearer("not-a-jwt"), 401, authz.ReasonTokenMalformed, `error="invalid_token"`},
		{"oversized token is refused before parsing", "GET", "x", "/orders/1", bearer(idp.Token(t, testutil.Padded(9000))), 401, authz.ReasonTokenTooLarge, `error="invalid_request"`},
		{"missing scope is 403 insufficient_scope naming the scope", "GET", "x", "/orders/1", bearer(idp.Token(t, testutil.Scopes("orders:write"))), 403, authz.ReasonInsufficientScope, `error="insufficient_scope", error_description="the token lacks scope orders:read", scope="orders:read"`},
		{"any_of scope from an unlisted client is 403", "POST", "api.example.com", "/orders", bearer(idp.Token(t, testutil.Scopes("orders:admin"))), 403, authz.ReasonClientNotAllowed, "-"},
		{"any_of scope from a listed client is allowed", "POST", "api.example.com", "/orders", bearer(idp.Token(t, testutil.Scopes("orders:admin"), testutil.Client("billing-svc"))), 200, authz.ReasonAllowed, "-"},
		{"host constraint is part of the match", "POST", "other.example.com", "/orders", bearer(idp.Token(t, testutil.Scopes("orders:admin"), testutil.Client("billing-svc"))), 403, authz.ReasonNoRoute, "-"},
		{"explicit deny route is 403 even with a token", "GET", "x", "/admin/users", bearer(read), 403, authz.ReasonRouteDenied, "-"},
		{"unmatched request is 403 no_route", "GET", "x", "/nowhere", bearer(read), 403, authz.ReasonNoRoute, "-"},
		{"alg none is refused", "GET", "x", "/orders/1", bearer(idp.UnsignedToken(t, testutil.Scopes("orders:read"))), 401, authz.ReasonAlgorithm, `error="invalid_token"`},
		{"tampered payload is a bad signature", "GET", "x", "/orders/1", bearer(testutil.Tamper(t, idp.Token(t, testutil.Scopes("orders:write")), "scope", "orders:read")), 401, authz.ReasonBadSignature, `error="invalid_token"`},
		{"expired beyond the leeway", "GET", "x", "/orders/1", bearer(idp.Token(t, testutil.Scopes("orders:read"), testutil.IssuedIn(-10*time.Minute), testutil.ExpiresIn(-2*time.Minute))), 401, authz.ReasonTokenExpired, `error="invalid_token"`},
		{"expired within the leeway is allowed", "GET", "x", "/orders/1", bearer(idp.Token(t, testutil.Scopes("orders:read"), testutil.IssuedIn(-10*time.Minute), testutil.ExpiresIn(-10*time.Second))), 200, authz.ReasonAllowed, "-"},
		{"wrong audience", "GET", "x", "/orders/1", bearer(idp.Token(t, testutil.Scopes("orders:read"), testutil.Audience("https://elsewhere"))), 401, authz.ReasonBadAudience, `error="invalid_token"`},
		{"unknown issuer", "GET", "x", "/orders/1", bearer(other.Token(t, testutil.Scopes("orders:read"))), 401, authz.ReasonUnknownIssuer, `error="invalid_token"`},
		{"forged with the issuer's name but another key", "GET", "x", "/orders/1", bearer(other.Forge(t, idp, testutil.Scopes("orders:read"))), 401, authz.ReasonUnknownKey, `error="invalid_token"`},
		{"ES256 token is allowed", "GET", "x", "/orders/1", bearer(idp.Token(t, testutil.Scopes("orders:read"), testutil.Alg("ES256"))), 200, authz.ReasonAllowed, "-"},
		{"EdDSA token is allowed", "GET", "x", "/orders/1", bearer(idp.Token(t, testutil.Scopes("orders:read"), testutil.Alg("EdDSA"))), 200, authz.ReasonAllowed, "-"},
	}
}

// verify fails t unless a is the answer tt wants.
func (tt decisionCase) verify(t *testing.T, a answer) {
	t.Helper()
	if a.status != tt.status || a.reason != string(tt.reason) {
		t.Fatalf("got %d %s, want %d %s (body %s)", a.status, a.reason, tt.status, tt.reason, a.body)
	}
	www := a.headers["www-authenticate"]
	switch {
	case tt.challenge == "-" && www != "":
		t.Errorf("unexpected challenge %q", www)
	case tt.challenge != "-" && !strings.Contains(www, tt.challenge):
		t.Errorf("challenge %q does not contain %q", www, tt.challenge)
	}
	if a.status != 200 {
		if a.headers["x-scopegate-reason"] != string(tt.reason) || !strings.Contains(a.body, `"reason":"`+string(tt.reason)+`"`) {
			t.Errorf("deny does not carry its reason: headers %v body %s", a.headers, a.body)
		}
		if tok := tt.headers["authorization"]; len(tok) > 20 && strings.Contains(a.body+www, tok[7:]) {
			t.Error("the deny echoes the token")
		}
	}
}

func TestCheckDecisions(t *testing.T) {
	h := start(t, authz.Options{})
	for _, tt := range decisionCases(t, h.idp) {
		t.Run(tt.name, func(t *testing.T) {
			tt.verify(t, h.check(t, tt.method, tt.host, tt.path, tt.headers))
		})
	}
}

func TestKeyConfusionIsRefused(t *testing.T) {
	h := start(t, authz.Options{})
	for name, tok := range h.idp.KeyConfusionTokens(t, testutil.Scopes("orders:read")) {
		t.Run(name, func(t *testing.T) {
			if a := h.check(t, "GET", "x", "/orders/1", bearer(tok)); a.status != 401 || a.reason != string(authz.ReasonAlgorithm) {
				t.Fatalf("HS256 signed with the public key: got %d %s", a.status, a.reason)
			}
		})
	}
}

func TestKeysFromTokenHeadersAreNeverUsed(t *testing.T) {
	h := start(t, authz.Options{})
	attacker := testutil.NewIdP(t)
	tests := map[string]string{
		"jku pointing at the attacker's JWKS": attacker.JKUToken(t, h.idp, testutil.Scopes("orders:read")),
		"embedded jwk":                        attacker.EmbeddedJWKToken(t, h.idp, testutil.Scopes("orders:read")),
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			if a := h.check(t, "GET", "x", "/orders/1", bearer(tok)); a.status != 401 {
				t.Fatalf("got %d %s, want 401", a.status, a.reason)
			}
		})
	}
	if n := attacker.Requests(); n != 0 {
		t.Errorf("the attacker's server received %d requests, want 0", n)
	}
}

func TestIdentityHeadersCannotBeSpoofed(t *testing.T) {
	h := start(t, authz.Options{Headers: authz.HeaderNames{Claims: map[string]string{"tenant": "x-tenant-id"}, RemoveAuthorization: true}})
	tok := h.idp.Token(t, testutil.Scopes("orders:read", "orders:write"), testutil.Client("orders-svc"))
	spoof := bearer(tok)
	spoof["x-scopegate-client-id"] = "admin-svc"
	spoof["x-scopegate-scopes"] = "orders:admin"
	spoof["x-tenant-id"] = "acme"
	a := h.check(t, "GET", "x", "/orders/1", spoof)
	if a.status != 200 {
		t.Fatalf("got %d %s", a.status, a.reason)
	}
	if a.headers["x-scopegate-client-id"] != "orders-svc" || a.headers["x-scopegate-scopes"] != "orders:read orders:write" || a.headers["x-scopegate-subject"] != "orders-svc" || a.headers["x-scopegate-issuer"] != h.idp.Issuer() {
		t.Errorf("identity headers: %v", a.headers)
	}
	if !contains(a.removed, "x-tenant-id") || !contains(a.removed, "authorization") {
		t.Errorf("headers to remove %v must include the absent claim's header and authorization", a.removed)
	}

	// A public route forwards no identity: every identity header the
	// caller sent is removed.
	a = h.check(t, "GET", "x", "/healthz", spoof)
	for _, name := range []string{"x-scopegate-client-id", "x-scopegate-subject", "x-scopegate-scopes", "x-scopegate-issuer", "x-tenant-id"} {
		if !contains(a.removed, name) {
			t.Errorf("public route: %s not removed (removed %v)", name, a.removed)
		}
	}
	if len(a.headers) != 0 {
		t.Errorf("public route set headers %v", a.headers)
	}
}

// pathCases are the paths that try to reach a route they should not, and
// the decisions they get with a token that has orders:read.
var pathCases = []struct {
	path   string
	status int
	reason authz.Reason
}{
	{"/public/../admin/users", 403, authz.ReasonRouteDenied},
	{"/public/%2e%2e/admin/users", 403, authz.ReasonRouteDenied},
	{"/public/.%2E/admin/users", 403, authz.ReasonRouteDenied},
	{"//admin/users", 403, authz.ReasonRouteDenied},
	{"/%61dmin/users", 403, authz.ReasonRouteDenied},
	{"/public/x/../../admin", 403, authz.ReasonRouteDenied},
	{"/public%2F..%2Fadmin", 400, authz.ReasonBadPath},
	{"/public/..%5Cadmin", 400, authz.ReasonBadPath},
	{"/public\\..\\admin", 400, authz.ReasonBadPath},
	{"/public/%00/../admin", 400, authz.ReasonBadPath},
	{"/admin?x=/public/", 403, authz.ReasonRouteDenied},
	{"/public/readme?x=/admin/", 200, authz.ReasonPublic},
	{"/orders/1/", 200, authz.ReasonAllowed},
}

func TestPathBypassAttempts(t *testing.T) {
	h := start(t, authz.Options{})
	read := bearer(h.idp.Token(t, testutil.Scopes("orders:read")))
	for _, tt := range pathCases {
		t.Run(tt.path, func(t *testing.T) {
			if a := h.check(t, "GET", "x", tt.path, read); a.status != tt.status || a.reason != string(tt.reason) {
				t.Fatalf("got %d %s, want %d %s", a.status, a.reason, tt.status, tt.reason)
			}
		})
	}
}

func TestKeyRotationWithoutRestart(t *testing.T) {
	h := start(t, authz.Options{})
	old := h.idp.Token(t, testutil.Scopes("orders:read"))
	if a := h.check(t, "GET", "x", "/orders/1", bearer(old)); a.status != 200 {
		t.Fatalf("before rotation: %d %s", a.status, a.reason)
	}
	h.idp.Rotate(t, "RS256", true)
	fresh := h.idp.Token(t, testutil.Scopes("orders:read"))
	if a := h.check(t, "GET", "x", "/orders/2", bearer(fresh)); a.status != 200 {
		t.Fatalf("token with the new kid: %d %s", a.status, a.reason)
	}
	if a := h.check(t, "GET", "x", "/orders/3", bearer(old)); a.status != 200 {
		t.Fatalf("token with the old, still published kid: %d %s", a.status, a.reason)
	}
}

func TestRandomKIDFloodFetchesJWKSAtMostTwice(t *testing.T) {
	h := start(t, authz.Options{})
	before := h.idp.JWKSFetches()
	var wg sync.WaitGroup
	errs := make(chan string, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := h.check(t, "GET", "x", "/orders/1", bearer(h.idp.Token(t, testutil.Scopes("orders:read"), testutil.RandomKID())))
			if a.status != 401 {
				errs <- a.reason
			}
		}()
		if i%100 == 99 {
			testutil.Wait(t, &wg, testutil.WaitTimeout, "a hundred random-kid checks")
		}
	}
	testutil.Wait(t, &wg, testutil.WaitTimeout, "the random-kid checks")
	close(errs)
	for r := range errs {
		t.Fatalf("a random-kid token got %s", r)
	}
	if n := h.idp.JWKSFetches() - before; n > 2 {
		t.Errorf("1,000 random kids caused %d JWKS fetches, want at most 2", n)
	}
}

func TestKnownKeysKeepServingWhileTheIdPIsDown(t *testing.T) {
	h := start(t, authz.Options{})
	h.idp.Refuse()
	tok := h.idp.Token(t, testutil.Scopes("orders:read"))
	if a := h.check(t, "GET", "x", "/orders/1", bearer(tok)); a.status != 200 {
		t.Fatalf("IdP down, known key: %d %s", a.status, a.reason)
	}
}

func TestMissingHTTPAttributesAreDenied(t *testing.T) {
	h := start(t, authz.Options{})
	resp, err := h.client.Check(context.Background(), &authv3.CheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDeniedResponse().GetStatus().GetCode() != 400 || codes.Code(resp.GetStatus().GetCode()) == codes.OK {
		t.Fatalf("empty CheckRequest: %v", resp)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestIdentityClaimsWithControlCharactersAreRefused(t *testing.T) {
	h := start(t, authz.Options{})
	tok := h.idp.Token(t, testutil.Scopes("orders:read"), testutil.Claim("sub", "svc\r\nx-scopegate-client-id: billing-svc"), testutil.Claim("client_id", "svc\r\nx-admin: 1"))
	if a := h.check(t, "GET", "x", "/orders/1", bearer(tok)); a.status != 401 || a.reason != string(authz.ReasonTokenInvalid) {
		t.Fatalf("got %d %s, want 401 %s", a.status, a.reason, authz.ReasonTokenInvalid)
	}
}

func TestEachAllowCarriesItsTokensOwnIdentity(t *testing.T) {
	h := start(t, authz.Options{})
	a := h.idp.Token(t, testutil.Scopes("orders:read"), testutil.Client("svc-a"))
	b := h.idp.Token(t, testutil.Scopes("orders:read", "orders:write"), testutil.Client("svc-b"))
	for range 3 {
		for tok, want := range map[string]string{a: "svc-a", b: "svc-b"} {
			got := h.check(t, "GET", "x", "/orders/1", bearer(tok))
			if got.status != 200 || got.headers["x-scopegate-client-id"] != want {
				t.Fatalf("got %d with client %q, want 200 %q", got.status, got.headers["x-scopegate-client-id"], want)
			}
		}
	}
}
