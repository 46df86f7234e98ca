package authz_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
)

// newToken returns a fresh random opaque token.
func newToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return "op_" + base64.RawURLEncoding.EncodeToString(b)
}

// activeResponse is an introspection response for an active token that
// expires in an hour.
func activeResponse() map[string]any {
	now := time.Now()
	return map[string]any{
		"active":     true,
		"iss":        "https://idp.example.com",
		"sub":        "svc-billing",
		"client_id":  "billing",
		"aud":        []string{"orders", "invoices"},
		"scope":      "orders:read invoices:write",
		"token_type": "Bearer",
		"exp":        now.Add(time.Hour).Unix(),
		"iat":        now.Unix(),
	}
}

// introspectionConfig returns a configuration for srv whose secret is in a
// file.
func introspectionConfig(t testing.TB, srv *testutil.IntrospectionServer) authz.Introspection {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(srv.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return authz.Introspection{Endpoint: srv.URL, ClientID: srv.ClientID, ClientSecretFile: secret}
}

func newIntrospector(t testing.TB, cfg authz.Introspection) *authz.Introspector {
	t.Helper()
	in, err := authz.NewIntrospector(cfg, authz.IntrospectorOptions{})
	if err != nil {
		t.Fatalf("NewIntrospector: %v", err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

func duration(d time.Duration) *time.Duration { return &d }

// wantReason fails the test unless err is a *TokenError with reason and
// the given unavailability.
func wantReason(t testing.TB, err error, reason authz.Reason, unavailable bool) {
	t.Helper()
	var te *authz.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error = %v, want a *TokenError %s", err, reason)
	}
	if te.Reason != reason || te.Unavailable != unavailable {
		t.Fatalf("error = %v (unavailable %v), want %s (unavailable %v)", err, te.Unavailable, reason, unavailable)
	}
}

func TestIntrospectActive(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	tests := []struct {
		name     string
		response map[string]any
		want     authz.Claims
	}{
		{
			"full response",
			map[string]any{
				"active": true, "iss": "https://idp.example.com", "sub": "svc-billing", "client_id": "billing",
				"aud": []string{"orders", "invoices"}, "scope": "orders:read  invoices:write", "token_type": "bearer",
				"exp": exp.Unix(), "iat": 1700000000, "tenant": "acme", "level": 3,
			},
			authz.Claims{
				Issuer: "https://idp.example.com", Subject: "svc-billing", ClientID: "billing",
				Audience: []string{"orders", "invoices"}, Scopes: []string{"orders:read", "invoices:write"},
				Expiry: exp, IssuedAt: time.Unix(1700000000, 0), Extra: map[string]string{"tenant": "acme"},
			},
		},
		{
			"sub is not the client id, aud may be a string",
			map[string]any{"active": true, "sub": "svc-billing", "aud": "orders", "exp": float64(exp.Unix()) + 0.5, "iss": nil},
			authz.Claims{Subject: "svc-billing", Audience: []string{"orders"}, Expiry: exp},
		},
		{
			"only active",
			map[string]any{"active": true},
			authz.Claims{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := introspectionConfig(t, srv)
			in, err := authz.NewIntrospector(cfg, authz.IntrospectorOptions{ExtraClaims: []string{"tenant", "level", "absent"}})
			if err != nil {
				t.Fatal(err)
			}
			token := newToken(t)
			srv.Register(token, tt.response)
			c, err := in.Verify(context.Background(), token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(*c, tt.want) {
				t.Errorf("claims:\n got %+v\nwant %+v", *c, tt.want)
			}
		})
	}
}

func TestIntrospectInactive(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	in := newIntrospector(t, introspectionConfig(t, srv))
	_, err := in.Verify(context.Background(), newToken(t)) // unregistered: inactive
	wantReason(t, err, authz.ReasonInactive, false)
}

func TestIntrospectExpired(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	in := newIntrospector(t, introspectionConfig(t, srv))
	token := newToken(t)
	r := activeResponse()
	r["exp"] = time.Now().Add(-time.Second).Unix()
	srv.Register(token, r)
	_, err := in.Verify(context.Background(), token)
	wantReason(t, err, authz.ReasonTokenExpired, false)
}

func TestIntrospectExpiresWhileCached(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	in := newIntrospector(t, introspectionConfig(t, srv))
	token := newToken(t)
	// exp is in whole seconds: the next one, unless it is too near.
	exp := time.Now().Truncate(time.Second).Add(time.Second)
	if time.Until(exp) < 300*time.Millisecond {
		exp = exp.Add(time.Second)
	}
	r := activeResponse()
	r["exp"] = exp.Unix()
	srv.Register(token, r)
	if _, err := in.Verify(context.Background(), token); err != nil {
		t.Fatalf("Verify before exp: %v", err)
	}
	if _, err := in.Verify(context.Background(), token); err != nil {
		t.Fatalf("Verify before exp, cached: %v", err)
	}
	if n := srv.Calls(); n != 1 {
		t.Fatalf("provider calls before exp = %d, want 1", n)
	}
	time.Sleep(time.Until(exp) + 10*time.Millisecond)
	// The provider, asked again, still says active: exp alone denies.
	_, err := in.Verify(context.Background(), token)
	wantReason(t, err, authz.ReasonTokenExpired, false)
}

func TestIntrospectBadResponses(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	with := func(k string, v any) map[string]any {
		r := activeResponse()
		r[k] = v
		return r
	}
	tests := []struct {
		name     string
		response map[string]any
		reason   authz.Reason
	}{
		{"active missing", map[string]any{"scope": "a"}, authz.ReasonIntrospection},
		{"active null", map[string]any{"active": nil}, authz.ReasonIntrospection},
		{"active a string", map[string]any{"active": "true"}, authz.ReasonIntrospection},
		{"active a number", map[string]any{"active": 1}, authz.ReasonIntrospection},
		{"differently cased active", map[string]any{"Active": true}, authz.ReasonIntrospection},
		{"scope an array", with("scope", []string{"a"}), authz.ReasonIntrospection},
		{"exp a string", with("exp", "2000000000"), authz.ReasonIntrospection},
		{"nbf a string", with("nbf", "0"), authz.ReasonIntrospection},
		{"typ a number", with("typ", 1), authz.ReasonIntrospection},
		{"azp an array", with("azp", []string{"a"}), authz.ReasonIntrospection},
		{"aud a number", with("aud", 7), authz.ReasonIntrospection},
		{"aud an array of numbers", with("aud", []int{7}), authz.ReasonIntrospection},
		{"client_id an object", with("client_id", map[string]any{}), authz.ReasonIntrospection},
		{"response too large", with("pad", strings.Repeat("x", 64<<10)), authz.ReasonIntrospection},
		{"DPoP-bound token", with("token_type", "DPoP"), authz.ReasonTokenType},
	}
	// One Introspector for all: a malformed answer is about one token, not
	// the provider's health, and must not open the breaker.
	in := newIntrospector(t, introspectionConfig(t, srv))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := newToken(t)
			srv.Register(token, tt.response)
			c, err := in.Verify(context.Background(), token)
			if c != nil {
				t.Fatalf("Verify returned claims %+v", c)
			}
			wantReason(t, err, tt.reason, tt.reason == authz.ReasonIntrospection)
		})
	}
}

func TestIntrospectFaults(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault testutil.IntrospectionFault
	}{
		{"status 500", testutil.Introspection500},
		{"garbage JSON", testutil.IntrospectionGarbage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := testutil.NewIntrospectionServer(t)
			in := newIntrospector(t, introspectionConfig(t, srv))
			token := newToken(t)
			srv.Register(token, activeResponse())
			srv.SetFault(tt.fault)
			_, err := in.Verify(context.Background(), token)
			wantReason(t, err, authz.ReasonIntrospection, true)
			// The failure is not cached.
			srv.SetFault(testutil.IntrospectionHealthy)
			if _, err := in.Verify(context.Background(), token); err != nil {
				t.Fatalf("Verify once the provider is healthy: %v", err)
			}
		})
	}
}

func TestIntrospectTimeout(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	cfg.Timeout = 200 * time.Millisecond
	in := newIntrospector(t, cfg)
	token := newToken(t)
	srv.Register(token, activeResponse())
	// The provider answers long after the timeout: a deny before then
	// is the timeout's. A tighter bound would time the machine, not the
	// code.
	const delay = 30 * time.Second
	srv.SetDelay(delay)
	start := time.Now()
	_, err := in.Verify(context.Background(), token)
	elapsed := time.Since(start)
	wantReason(t, err, authz.ReasonIntrospectionDown, true)
	if elapsed >= delay {
		t.Errorf("Verify took %v with a timeout of %v: it waited for the provider's answer", elapsed, cfg.Timeout)
	}
}

func TestIntrospectProviderDead(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	in := newIntrospector(t, introspectionConfig(t, srv))
	cached, cold := newToken(t), newToken(t)
	srv.Register(cached, activeResponse())
	srv.Register(cold, activeResponse())
	if _, err := in.Verify(context.Background(), cached); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	srv.Close()
	_, err := in.Verify(context.Background(), cold)
	wantReason(t, err, authz.ReasonIntrospectionDown, true)
	// A cached active token keeps working while the provider is down.
	if _, err := in.Verify(context.Background(), cached); err != nil {
		t.Fatalf("Verify of a cached token with the provider down: %v", err)
	}
}

func TestIntrospectCircuitBreaker(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	cfg.Breaker = authz.CircuitBreaker{Failures: 3, Backoff: 300 * time.Millisecond, MaxBackoff: time.Second}
	in := newIntrospector(t, cfg)
	ctx := context.Background()
	srv.SetFault(testutil.Introspection500)
	for range 3 {
		_, err := in.Verify(ctx, newToken(t))
		wantReason(t, err, authz.ReasonIntrospection, true)
	}
	for range 10 {
		_, err := in.Verify(ctx, newToken(t))
		wantReason(t, err, authz.ReasonIntrospectionDown, true)
	}
	if n := srv.Calls(); n != 3 {
		t.Fatalf("provider calls = %d, want 3: the open breaker let calls through", n)
	}

	// After the back-off one probe goes through; it fails, and the breaker
	// stays open twice as long.
	time.Sleep(cfg.Breaker.Backoff)
	_, err := in.Verify(ctx, newToken(t))
	wantReason(t, err, authz.ReasonIntrospection, true)
	if n := srv.Calls(); n != 4 {
		t.Fatalf("provider calls after the first back-off = %d, want 4", n)
	}
	time.Sleep(cfg.Breaker.Backoff)
	_, err = in.Verify(ctx, newToken(t))
	wantReason(t, err, authz.ReasonIntrospectionDown, true)
	if n := srv.Calls(); n != 4 {
		t.Fatalf("provider calls in the doubled back-off = %d, want 4", n)
	}

	// A successful probe closes it.
	time.Sleep(cfg.Breaker.Backoff)
	srv.SetFault(testutil.IntrospectionHealthy)
	token := newToken(t)
	srv.Register(token, activeResponse())
	if _, err := in.Verify(ctx, token); err != nil {
		t.Fatalf("probe: %v", err)
	}
	for range 5 {
		_, err := in.Verify(ctx, newToken(t))
		wantReason(t, err, authz.ReasonInactive, false)
	}
	if n := srv.Calls(); n != 10 {
		t.Fatalf("provider calls after the breaker closed = %d, want 10", n)
	}
	s := in.Stats()
	if s.Calls != 10 || s.Failures != 4 || s.ShortCircuits != 11 {
		t.Errorf("Stats = %+v, want 10 calls, 4 failures, 11 short circuits", s)
	}
}

func TestIntrospectConcurrentChecksShareOneCall(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	in := newIntrospector(t, introspectionConfig(t, srv))
	token := newToken(t)
	srv.Register(token, activeResponse())
	// Slow enough that every check starts while the first is under way.
	srv.SetDelay(100 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			if _, err := in.Verify(context.Background(), token); err != nil {
				errs <- err
			}
		})
	}
	testutil.Wait(t, &wg, testutil.WaitTimeout, "the concurrent checks of one token")
	close(errs)
	for err := range errs {
		t.Errorf("Verify: %v", err)
	}
	if n := srv.Calls(); n != 1 {
		t.Errorf("provider calls = %d, want 1", n)
	}
}

func TestIntrospectAbandonedCheckDoesNotFailOthers(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	// The provider's request must outlive every step below: the first
	// check's giving up is what ends it otherwise.
	cfg.Timeout = testutil.WaitTimeout
	held := &testutil.HeldTransport{}
	in, err := authz.NewIntrospector(cfg, authz.IntrospectorOptions{HTTPClient: &http.Client{Transport: held}})
	if err != nil {
		t.Fatalf("NewIntrospector: %v", err)
	}
	t.Cleanup(func() { in.Close() })
	t.Cleanup(held.Release)
	token := newToken(t)
	srv.Register(token, activeResponse())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, err := in.Verify(ctx, token)
		first <- err
	}()
	testutil.Recv(t, held.Arrived(), testutil.WaitTimeout, "the first check's request to the provider")
	wantReason(t, testutil.Recv(t, first, testutil.WaitTimeout, "the first check to give up"), authz.ReasonIntrospectionDown, true)
	testutil.Recv(t, ctx.Done(), testutil.WaitTimeout, "the first check's deadline")

	// The first check's deadline has passed while its request was held:
	// released now, the request goes on only if it outlives that check. A
	// second check shares it, or, if it comes after the request ended,
	// finds its answer in the cache.
	second := make(chan error, 1)
	go func() {
		_, err := in.Verify(context.Background(), token)
		second <- err
	}()
	held.Release()
	if err := testutil.Recv(t, second, testutil.WaitTimeout, "the second check"); err != nil {
		t.Errorf("Verify after an abandoned check of the same token: %v", err)
	}
	if sent, n := in.Stats().Calls, srv.Calls(); sent != 1 || n != 1 {
		t.Errorf("%d requests sent, %d reached the provider; want 1: the abandoned check's request was not carried through", sent, n)
	}
}

func TestIntrospectNegativeCache(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	cfg.Cache.NegativeTTL = duration(500 * time.Millisecond)
	in := newIntrospector(t, cfg)
	token := newToken(t)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := in.Verify(context.Background(), token)
			errs <- err
		})
	}
	testutil.Wait(t, &wg, testutil.WaitTimeout, "the concurrent checks of one inactive token")
	close(errs)
	for err := range errs {
		wantReason(t, err, authz.ReasonInactive, false)
	}
	for range 50 {
		_, err := in.Verify(context.Background(), token)
		wantReason(t, err, authz.ReasonInactive, false)
	}
	if n := srv.Calls(); n != 1 {
		t.Fatalf("provider calls for a flood of one inactive token = %d, want 1", n)
	}
	time.Sleep(*cfg.Cache.NegativeTTL)
	_, err := in.Verify(context.Background(), token)
	wantReason(t, err, authz.ReasonInactive, false)
	if n := srv.Calls(); n != 2 {
		t.Fatalf("provider calls after negative_ttl = %d, want 2", n)
	}
}

func TestIntrospectClientAuthentication(t *testing.T) {
	methods := []string{"", authz.ClientSecretBasic, authz.ClientSecretPost}
	for _, server := range methods[1:] {
		for _, client := range methods {
			t.Run("server "+server+", client "+client, func(t *testing.T) {
				srv := testutil.NewIntrospectionServer(t)
				srv.SetAuthMethod(server)
				cfg := introspectionConfig(t, srv)
				cfg.AuthMethod = client
				in := newIntrospector(t, cfg)
				token := newToken(t)
				srv.Register(token, activeResponse())
				_, err := in.Verify(context.Background(), token)
				if cmpOr(client, authz.ClientSecretBasic) == server {
					if err != nil {
						t.Fatalf("Verify: %v", err)
					}
					return
				}
				wantReason(t, err, authz.ReasonIntrospection, true)
			})
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestIntrospectSecretFromEnv(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	t.Setenv("SCOPEGATE_TEST_INTROSPECTION_SECRET", srv.ClientSecret)
	cfg := authz.Introspection{Endpoint: srv.URL, ClientID: srv.ClientID, ClientSecretEnv: "SCOPEGATE_TEST_INTROSPECTION_SECRET"}
	in := newIntrospector(t, cfg)
	token := newToken(t)
	srv.Register(token, activeResponse())
	if _, err := in.Verify(context.Background(), token); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	cfg.ClientSecretEnv = "SCOPEGATE_TEST_UNSET_SECRET"
	_, err := authz.NewIntrospector(cfg, authz.IntrospectorOptions{})
	if err == nil || !strings.Contains(err.Error(), "SCOPEGATE_TEST_UNSET_SECRET") {
		t.Errorf("NewIntrospector with an unset secret variable: %v, want an error naming it", err)
	}
}

func TestIntrospectCachingOff(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	cfg.Cache.MaxTTL = duration(0)
	cfg.Cache.Redis = &authz.Redis{Addrs: []string{testutil.Redis(t)}}
	in := newIntrospector(t, cfg)
	active, inactive := newToken(t), newToken(t)
	srv.Register(active, activeResponse())
	for range 3 {
		if _, err := in.Verify(context.Background(), active); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		_, err := in.Verify(context.Background(), inactive)
		wantReason(t, err, authz.ReasonInactive, false)
	}
	if n := srv.Calls(); n != 6 {
		t.Errorf("provider calls with max_ttl 0 = %d, want 6", n)
	}
	if s := in.Stats(); s.L1Hits+s.L1Misses+s.L2Hits+s.L2Misses != 0 {
		t.Errorf("Stats = %+v, want no cache lookups", s)
	}
}

// TestIntrospectClaimsShareValues checks that the cached claims of
// different tokens, whether the provider or Redis answered, share the
// values they repeat rather than holding copies.
func TestIntrospectClaimsShareValues(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	cfg.Cache.Redis = &authz.Redis{Addrs: []string{testutil.Redis(t)}, Timeout: 2 * time.Second}
	first, second := newIntrospector(t, cfg), newIntrospector(t, cfg)
	tokens := []string{newToken(t), newToken(t)}
	for _, tok := range tokens {
		srv.Register(tok, activeResponse())
	}
	// The first introspector asks the provider; the second finds the
	// answers in Redis.
	for _, in := range []*authz.Introspector{first, second} {
		var claims []*authz.Claims
		for _, tok := range tokens {
			c, err := in.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			claims = append(claims, c)
		}
		a, b := claims[0], claims[1]
		if a == b || !reflect.DeepEqual(a, b) || a.Subject != "svc-billing" || len(a.Audience) != 2 || len(a.Scopes) != 2 {
			t.Fatalf("claims = %+v and %+v, want equal claims of two tokens", a, b)
		}
		for _, f := range []struct {
			name string
			a, b unsafe.Pointer
		}{
			{"issuer", unsafe.Pointer(unsafe.StringData(a.Issuer)), unsafe.Pointer(unsafe.StringData(b.Issuer))},
			{"subject", unsafe.Pointer(unsafe.StringData(a.Subject)), unsafe.Pointer(unsafe.StringData(b.Subject))},
			{"client id", unsafe.Pointer(unsafe.StringData(a.ClientID)), unsafe.Pointer(unsafe.StringData(b.ClientID))},
			{"audience", unsafe.Pointer(unsafe.SliceData(a.Audience)), unsafe.Pointer(unsafe.SliceData(b.Audience))},
			{"scopes", unsafe.Pointer(unsafe.SliceData(a.Scopes)), unsafe.Pointer(unsafe.SliceData(b.Scopes))},
		} {
			if f.a != f.b {
				t.Errorf("%s: the two tokens hold copies, not one shared value", f.name)
			}
		}
	}
	if s := second.Stats(); s.L2Hits != 2 || s.Calls != 0 {
		t.Errorf("second instance's Stats = %+v, want 2 L2 hits and no calls", s)
	}
}

func TestIntrospectionValidate(t *testing.T) {
	valid := authz.Introspection{Endpoint: "https://idp.example.com/introspect", ClientID: "scopegate", ClientSecretEnv: "SECRET"}
	tests := []struct {
		name   string
		modify func(*authz.Introspection)
		fields []string
	}{
		{"valid", func(*authz.Introspection) {}, nil},
		{"endpoint left to discovery", func(c *authz.Introspection) { c.Endpoint, c.Issuer = "", "https://idp.example.com" }, nil},
		{"no endpoint and no issuer", func(c *authz.Introspection) { c.Endpoint = "" }, []string{"endpoint"}},
		{"endpoint and issuer", func(c *authz.Introspection) { c.Issuer = "https://idp.example.com" }, []string{"issuer"}},
		{"http to loopback", func(c *authz.Introspection) { c.Endpoint = "http://127.0.0.1:8080/introspect" }, nil},
		{"http elsewhere", func(c *authz.Introspection) { c.Endpoint = "http://idp.example.com/introspect" }, []string{"endpoint"}},
		{"relative endpoint", func(c *authz.Introspection) { c.Endpoint = "/introspect" }, []string{"endpoint"}},
		{"unknown auth method", func(c *authz.Introspection) { c.AuthMethod = "private_key_jwt" }, []string{"auth_method"}},
		{"no client id", func(c *authz.Introspection) { c.ClientID = "" }, []string{"client_id"}},
		{"no secret", func(c *authz.Introspection) { c.ClientSecretEnv = "" }, []string{"client_secret_file"}},
		{"two secrets", func(c *authz.Introspection) { c.ClientSecretFile = "/run/secret" }, []string{"client_secret_file"}},
		{"negative durations", func(c *authz.Introspection) {
			c.Timeout = -1
			c.Cache.MaxTTL = duration(-1)
			c.Cache.NegativeTTL = duration(-1)
		}, []string{"timeout", "cache.max_ttl", "cache.negative_ttl"}},
		{"issuers", func(c *authz.Introspection) { c.Issuers = []string{"https://idp.example.com"} }, nil},
		{"client_id_claims", func(c *authz.Introspection) { c.ClientIDClaims = []string{"client_id", "sub"} }, nil},
		{"client_id_claims empty", func(c *authz.Introspection) { c.ClientIDClaims = []string{} }, []string{"client_id_claims"}},
		{"client_id_claims of no client id", func(c *authz.Introspection) { c.ClientIDClaims = []string{"", "active", "sub", "sub"} },
			[]string{"client_id_claims[0]", "client_id_claims[1]", "client_id_claims[3]"}},
		{"an empty issuer", func(c *authz.Introspection) { c.Issuers = []string{"https://idp.example.com", ""} }, []string{"issuers[1]"}},
		{"bounds on the calls", func(c *authz.Introspection) { c.MaxConcurrent, c.MaxRate = 8, 10 }, nil},
		{"negative bounds on the calls", func(c *authz.Introspection) { c.MaxConcurrent, c.MaxRate = -1, -1 }, []string{"max_concurrent", "max_rate"}},
		{"caching off", func(c *authz.Introspection) { c.Cache.MaxTTL = duration(0) }, nil},
		{"breaker", func(c *authz.Introspection) {
			c.Breaker = authz.CircuitBreaker{Failures: -1, Backoff: time.Minute, MaxBackoff: time.Second}
		}, []string{"breaker.failures", "breaker.max_backoff"}},
		{"redis", func(c *authz.Introspection) {
			c.Cache.Redis = &authz.Redis{Addrs: []string{"a:1", "b"}, DB: 2, PasswordEnv: "P", PasswordFile: "/p", Timeout: -1}
		}, []string{"cache.redis.addrs[1]", "cache.redis.password_file", "cache.redis.db", "cache.redis.timeout"}},
		{"redis without address", func(c *authz.Introspection) { c.Cache.Redis = &authz.Redis{} }, []string{"cache.redis.addrs"}},
		{"redis sentinel and cluster", func(c *authz.Introspection) {
			c.Cache.Redis = &authz.Redis{Addrs: []string{"a:1"}, MasterName: "m", Cluster: true}
		}, []string{"cache.redis.cluster"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.modify(&c)
			var got []string
			for _, fe := range c.Validate() {
				got = append(got, fe.Field)
			}
			if !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("fields in error = %q, want %q", got, tt.fields)
			}
		})
	}
}

func TestNewIntrospectorNeedsEndpoint(t *testing.T) {
	_, err := authz.NewIntrospector(authz.Introspection{ClientID: "c", ClientSecretEnv: "PATH"}, authz.IntrospectorOptions{})
	if err == nil || !strings.Contains(err.Error(), "endpoint") {
		t.Errorf("NewIntrospector without an endpoint: %v, want an error about it", err)
	}
}

func BenchmarkIntrospectL1Hit(b *testing.B) {
	srv := testutil.NewIntrospectionServer(b)
	in := newIntrospector(b, introspectionConfig(b, srv))
	token := newToken(b)
	srv.Register(token, activeResponse())
	ctx := context.Background()
	if _, err := in.Verify(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIntrospectL2Hit(b *testing.B) {
	srv := testutil.NewIntrospectionServer(b)
	cfg := introspectionConfig(b, srv)
	// A generous timeout: a Redis slowed by a busy machine would send
	// checks to the provider, which this benchmark does not measure.
	cfg.Cache.Redis = &authz.Redis{Addrs: []string{testutil.Redis(b)}, Timeout: time.Second}
	// Warming asks about every token at once.
	cfg.MaxRate = 1 << 20
	// Many tokens through a one-entry memory cache: nearly every check
	// goes to Redis.
	cfg.Cache.MaxEntries = 1
	in := newIntrospector(b, cfg)
	warm := newIntrospector(b, cfg)
	tokens := make([]string, 1024)
	ctx := context.Background()
	for i := range tokens {
		tokens[i] = newToken(b)
		srv.Register(tokens[i], activeResponse())
		if _, err := warm.Verify(ctx, tokens[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := in.Verify(ctx, tokens[i%len(tokens)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	s := in.Stats()
	b.ReportMetric(float64(s.L2Hits)/float64(i), "l2hits/op")
	b.ReportMetric(float64(s.Calls)/float64(i), "calls/op")
}

func BenchmarkIntrospectMiss(b *testing.B) {
	srv := testutil.NewIntrospectionServer(b)
	cfg := introspectionConfig(b, srv)
	cfg.Cache.MaxTTL = duration(0)
	cfg.MaxRate = 1 << 20 // the cost of a call, not of being refused one
	in := newIntrospector(b, cfg)
	token := newToken(b)
	srv.Register(token, activeResponse())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

func TestIntrospectRefusesTokensNotMeantForThisService(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	cfg.Audiences = []string{"orders-api"}
	in := newIntrospector(t, cfg)
	exp := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name     string
		response map[string]any
		reason   authz.Reason // "" for accepted
	}{
		{"audience among the accepted", map[string]any{"active": true, "aud": []string{"billing-api", "orders-api"}, "exp": exp}, ""},
		{"another API's audience", map[string]any{"active": true, "aud": "billing-api", "exp": exp}, authz.ReasonBadAudience},
		{"no audience", map[string]any{"active": true, "exp": exp}, authz.ReasonBadAudience},
		{"Hydra refresh token", map[string]any{"active": true, "aud": "orders-api", "token_type": "Bearer", "token_use": "refresh_token", "exp": exp}, authz.ReasonTokenType},
		{"Hydra access token", map[string]any{"active": true, "aud": "orders-api", "token_type": "Bearer", "token_use": "access_token", "exp": exp}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := newToken(t)
			srv.Register(token, tt.response)
			for range 2 { // the second answer comes from the cache
				_, err := in.Verify(context.Background(), token)
				var te *authz.TokenError
				switch {
				case tt.reason == "" && err != nil:
					t.Fatalf("refused: %v", err)
				case tt.reason != "" && (!errors.As(err, &te) || te.Reason != tt.reason):
					t.Fatalf("got %v, want %s", err, tt.reason)
				}
			}
		})
	}
}

func TestIntrospectRefusesTokensOfUntrustedIssuers(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	cfg.Issuers = []string{"https://idp.example.com/realms/orders", "https://idp.example.com/realms/billing"}
	in := newIntrospector(t, cfg)
	tests := []struct {
		name   string
		iss    any          // nil for none
		reason authz.Reason // "" for accepted
	}{
		{"a trusted issuer", "https://idp.example.com/realms/orders", ""},
		{"another trusted issuer", "https://idp.example.com/realms/billing", ""},
		{"another realm of the same provider", "https://idp.example.com/realms/hr", authz.ReasonUnknownIssuer},
		{"a trusted issuer with a trailing slash", "https://idp.example.com/realms/orders/", authz.ReasonUnknownIssuer},
		{"no issuer", nil, authz.ReasonUnknownIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := newToken(t)
			r := activeResponse()
			r["iss"] = tt.iss
			srv.Register(token, r)
			for range 2 { // the second answer comes from the cache
				c, err := in.Verify(context.Background(), token)
				if tt.reason == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					if c.Issuer != tt.iss {
						t.Fatalf("claims issuer = %q, want %q", c.Issuer, tt.iss)
					}
					continue
				}
				// A token of another issuer is refused, not unavailable:
				// asking again will not help.
				wantReason(t, err, tt.reason, false)
			}
		})
	}
}

func TestIntrospectBoundsTheCallsOfAFlood(t *testing.T) {
	const flood = 300
	// The provider answers slowly, so that the calls let through are still
	// under way when the flood is refused.
	const delay = time.Second
	tests := []struct {
		name          string
		maxConcurrent int
		maxRate       int
	}{
		{"max_concurrent bounds the calls under way", 4, 1 << 20},
		{"max_rate bounds the calls per second", 0, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := testutil.NewIntrospectionServer(t)
			cfg := introspectionConfig(t, srv)
			cfg.MaxConcurrent, cfg.MaxRate = tt.maxConcurrent, tt.maxRate
			cfg.Timeout = 5 * delay
			in := newIntrospector(t, cfg)
			ctx := context.Background()
			start := time.Now()
			cached := newToken(t)
			srv.Register(cached, activeResponse())
			if _, err := in.Verify(ctx, cached); err != nil {
				t.Fatalf("Verify: %v", err)
			}

			// Random bearer strings, each a call to the provider unless
			// refused.
			srv.SetDelay(delay)
			var (
				wg sync.WaitGroup
				mu sync.Mutex
				// lastDecided bounds, since start, when the last check of
				// the flood was let through or refused: a refusal is
				// decided before it returns, a call let through at least
				// delay before, since the provider holds it that long.
				// Measured so, not from when checks began, the bound holds
				// however a loaded machine schedules the checks.
				lastDecided time.Duration
				answered    int
				refused     int
			)
			for range flood {
				wg.Go(func() {
					began := time.Now()
					_, err := in.Verify(ctx, newToken(t))
					took := time.Since(began)
					mu.Lock()
					defer mu.Unlock()
					end := time.Since(start)
					var te *authz.TokenError
					switch {
					case errors.As(err, &te) && te.Reason == authz.ReasonInactive:
						answered++
						lastDecided = max(lastDecided, end-delay)
					case errors.As(err, &te) && te.Reason == authz.ReasonIntrospectionDown && te.Unavailable:
						refused++
						lastDecided = max(lastDecided, end)
						if took >= delay {
							t.Errorf("a refusal took %v, the provider's delay: it waited on the provider", took)
						}
					default:
						t.Errorf("Verify: %v", err)
					}
				})
			}
			// Once the flood is being refused, a cached token still passes
			// without a call.
			for deadline := start.Add(delay); in.Stats().Throttled == 0 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			if _, err := in.Verify(ctx, cached); err != nil {
				t.Errorf("Verify of a cached token during the flood: %v", err)
			}
			testutil.Wait(t, &wg, testutil.WaitTimeout, "the flood's checks")

			bound := tt.maxConcurrent
			if tt.maxConcurrent == 0 {
				// The burst less the cached token's call, and what the
				// bucket refilled until the last of the flood was decided.
				bound = tt.maxRate - 1 + int(math.Ceil(float64(tt.maxRate)*lastDecided.Seconds()))
			}
			s := in.Stats()
			if answered > bound || answered+1 != srv.Calls() {
				t.Errorf("%d checks answered with %d provider calls, want at most %d", answered, srv.Calls()-1, bound)
			}
			if refused == 0 || uint64(refused) != s.Throttled {
				t.Errorf("%d checks refused, Stats = %+v; want the rest of the flood refused and counted", refused, s)
			}
			if s.ShortCircuits != 0 {
				t.Errorf("Stats = %+v: the flood opened the breaker", s)
			}

			// The flood over, a new token passes as soon as the bucket
			// has refilled a little.
			srv.SetDelay(0)
			time.Sleep(2 * time.Second / time.Duration(tt.maxRate))
			token := newToken(t)
			srv.Register(token, activeResponse())
			if _, err := in.Verify(ctx, token); err != nil {
				t.Errorf("Verify of a new token after the flood: %v", err)
			}
		})
	}
}

func TestIntrospectBreakerCountsOnlyTheProvidersFailures(t *testing.T) {
	status := func(code int) func(*testutil.IntrospectionServer, *authz.Introspection) {
		return func(srv *testutil.IntrospectionServer, _ *authz.Introspection) { srv.SetStatus(code) }
	}
	tests := []struct {
		name   string
		fail   func(*testutil.IntrospectionServer, *authz.Introspection)
		reason authz.Reason
		opens  bool
	}{
		{"400 for a token the provider will not read", status(http.StatusBadRequest), authz.ReasonIntrospection, false},
		{"401 for scopegate's credentials", status(http.StatusUnauthorized), authz.ReasonIntrospection, false},
		{"403", status(http.StatusForbidden), authz.ReasonIntrospection, false},
		{"413 for a token too large", status(http.StatusRequestEntityTooLarge), authz.ReasonIntrospection, false},
		{"a body that is not JSON", func(srv *testutil.IntrospectionServer, _ *authz.Introspection) {
			srv.SetFault(testutil.IntrospectionGarbage)
		}, authz.ReasonIntrospection, false},
		{"429 shedding load", status(http.StatusTooManyRequests), authz.ReasonIntrospectionDown, true},
		{"500", status(http.StatusInternalServerError), authz.ReasonIntrospection, true},
		{"503", status(http.StatusServiceUnavailable), authz.ReasonIntrospectionDown, true},
		{"no answer in time", func(srv *testutil.IntrospectionServer, cfg *authz.Introspection) {
			srv.SetDelay(5 * time.Second)
			cfg.Timeout = 100 * time.Millisecond
		}, authz.ReasonIntrospectionDown, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := testutil.NewIntrospectionServer(t)
			cfg := introspectionConfig(t, srv)
			cfg.Breaker = authz.CircuitBreaker{Failures: 3, Backoff: time.Minute}
			tt.fail(srv, &cfg)
			in := newIntrospector(t, cfg)
			ctx := context.Background()
			for range cfg.Breaker.Failures {
				_, err := in.Verify(ctx, newToken(t))
				wantReason(t, err, tt.reason, true)
			}
			_, err := in.Verify(ctx, newToken(t))
			calls, s := srv.Calls(), in.Stats()
			if tt.opens {
				wantReason(t, err, authz.ReasonIntrospectionDown, true)
				if calls != 3 || s.ShortCircuits != 1 {
					t.Errorf("%d provider calls, Stats %+v; want 3 calls, then the breaker open", calls, s)
				}
				return
			}
			wantReason(t, err, tt.reason, true)
			if calls != 4 || s.ShortCircuits != 0 {
				t.Errorf("%d provider calls, Stats %+v; want 4 calls and the breaker closed", calls, s)
			}
		})
	}
}

func TestIntrospectCachedAnswersOutliveAnOpenBreaker(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	cfg.Breaker = authz.CircuitBreaker{Failures: 3, Backoff: time.Minute}
	cfg.Cache.Redis = &authz.Redis{Addrs: []string{testutil.Redis(t)}, Timeout: 2 * time.Second}
	in, other := newIntrospector(t, cfg), newIntrospector(t, cfg)
	ctx := context.Background()
	inMemory, inRedis := newToken(t), newToken(t)
	for _, tok := range []string{inMemory, inRedis} {
		srv.Register(tok, activeResponse())
	}
	if _, err := in.Verify(ctx, inMemory); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// Another instance's answer, in Redis but not in this one's memory.
	if _, err := other.Verify(ctx, inRedis); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	srv.SetStatus(http.StatusServiceUnavailable)
	for range cfg.Breaker.Failures {
		in.Verify(ctx, newToken(t))
	}
	_, err := in.Verify(ctx, newToken(t))
	wantReason(t, err, authz.ReasonIntrospectionDown, true)
	if s := in.Stats(); s.ShortCircuits != 1 {
		t.Fatalf("Stats = %+v, want the breaker open", s)
	}
	calls := srv.Calls()

	tests := []struct {
		name, token string
	}{
		{"answer in memory", inMemory},
		{"answer in Redis", inRedis},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := in.Verify(ctx, tt.token); err != nil {
				t.Errorf("Verify with the breaker open: %v", err)
			}
		})
	}
	if n := srv.Calls(); n != calls {
		t.Errorf("provider calls = %d, want %d: cached answers need none", n, calls)
	}
}

func TestIntrospectReadsARotatedSecretFile(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	in := newIntrospector(t, cfg)
	verify := func() error {
		token := newToken(t)
		srv.Register(token, activeResponse())
		_, err := in.Verify(context.Background(), token)
		return err
	}
	if err := verify(); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	srv.RotateSecret("rotated-secret")
	if err := verify(); err == nil {
		t.Fatal("the provider accepted the old secret after rotation")
	}
	if err := os.WriteFile(cfg.ClientSecretFile, []byte("rotated-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testutil.WaitTimeout)
	for verify() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the rotated secret file was never read")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// introspectCase is a provider's answer about a token and what Verify
// must make of it.
type introspectCase struct {
	name     string
	response map[string]any
	reason   authz.Reason // "" to accept
	check    func(t *testing.T, c *authz.Claims)
}

// runIntrospectCases has srv give each answer and in verify its token
// twice (the second answer may come from the cache).
func runIntrospectCases(t *testing.T, srv *testutil.IntrospectionServer, in *authz.Introspector, tests []introspectCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := newToken(t)
			srv.Register(token, tt.response)
			for range 2 {
				c, err := in.Verify(context.Background(), token)
				if tt.reason != "" {
					if c != nil {
						t.Fatalf("Verify returned claims %+v", c)
					}
					// A refusal of the token, not of the provider: 401.
					wantReason(t, err, tt.reason, false)
					continue
				}
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
			}
		})
	}
}

func TestIntrospectScopesSplitOnSpaceOnly(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	in := newIntrospector(t, introspectionConfig(t, srv))
	with := func(scope string) map[string]any {
		r := activeResponse()
		r["scope"] = scope
		return r
	}
	scopes := func(want ...string) func(*testing.T, *authz.Claims) {
		return func(t *testing.T, c *authz.Claims) {
			if !reflect.DeepEqual(c.Scopes, want) {
				t.Errorf("Scopes = %q, want %q", c.Scopes, want)
			}
		}
	}
	tests := []introspectCase{
		{"SP", with("tenant:acme orders:read"), "", scopes("tenant:acme", "orders:read")},
		{"leading, trailing and repeated SP", with(" tenant:acme  orders:read  "), "", scopes("tenant:acme", "orders:read")},
		{"only SP", with("   "), "", scopes()},
	}
	for _, sep := range []struct{ name, char string }{
		{"NO-BREAK SPACE", "\u00a0"}, {"IDEOGRAPHIC SPACE", "\u3000"}, {"LINE SEPARATOR", "\u2028"},
		{"NEXT LINE", "\u0085"}, {"TAB", "\t"}, {"VT", "\v"}, {"CR", "\r"}, {"quote", `"`},
	} {
		tests = append(tests, introspectCase{name: sep.name, response: with("tenant:acme" + sep.char + "orders:admin"), reason: authz.ReasonTokenMalformed})
	}
	runIntrospectCases(t, srv, in, tests)
}

func TestIntrospectTimeClaims(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	in := newIntrospector(t, introspectionConfig(t, srv))
	now := time.Now()
	with := func(kv ...any) map[string]any {
		r := activeResponse()
		for i := 0; i < len(kv); i += 2 {
			r[kv[i].(string)] = kv[i+1]
		}
		return r
	}
	tests := []introspectCase{
		{"nbf passed", with("nbf", now.Add(-time.Minute).Unix()), "", nil},
		{"nbf within the leeway", with("nbf", now.Add(authz.DefaultLeeway/2).Unix()), "", nil},
		{"nbf beyond the leeway", with("nbf", now.Add(time.Hour).Unix()), authz.ReasonTokenNotYetValid, nil},
		{"iat beyond the leeway", with("iat", now.Add(time.Hour).Unix(), "exp", now.Add(2*time.Hour).Unix()), authz.ReasonTokenNotYetValid, nil},
		{"exp 1e300", with("exp", 1e300), authz.ReasonTokenMalformed, nil},
		{"exp before 1970", with("exp", -1), authz.ReasonTokenMalformed, nil},
		{"exp after 9999", with("exp", 253402300800), authz.ReasonTokenMalformed, nil},
		{"iat 1e300", with("iat", 1e300), authz.ReasonTokenMalformed, nil},
		{"iat -1e300", with("iat", -1e300), authz.ReasonTokenMalformed, nil},
		{"nbf 1e300", with("nbf", 1e300), authz.ReasonTokenMalformed, nil},
		{"nbf -1e300", with("nbf", -1e300), authz.ReasonTokenMalformed, nil},
	}
	runIntrospectCases(t, srv, in, tests)
}

func TestIntrospectRefusesRefreshAndIDTokens(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	in := newIntrospector(t, introspectionConfig(t, srv))
	with := func(k, v string) map[string]any {
		r := activeResponse()
		r[k] = v
		return r
	}
	tests := []introspectCase{
		{"Keycloak access token", with("typ", "Bearer"), "", nil},
		{"Keycloak refresh token", with("typ", "Refresh"), authz.ReasonTokenType, nil},
		{"Keycloak offline token", with("typ", "Offline"), authz.ReasonTokenType, nil},
		{"Keycloak ID token", with("typ", "ID"), authz.ReasonTokenType, nil},
		{"Keycloak logout token", with("typ", "Logout"), authz.ReasonTokenType, nil},
		{"Hydra refresh token", with("token_use", "refresh_token"), authz.ReasonTokenType, nil},
		{"a refresh token by token_type", with("token_type", "refresh_token"), authz.ReasonTokenType, nil},
		{"an ID token by token_type", with("token_type", "id_token"), authz.ReasonTokenType, nil},
	}
	runIntrospectCases(t, srv, in, tests)
}

func TestIntrospectClientIDClaims(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	answer := func(kv ...string) map[string]any {
		r := map[string]any{"active": true, "sub": "billing-svc", "exp": time.Now().Add(time.Hour).Unix()}
		for i := 0; i < len(kv); i += 2 {
			r[kv[i]] = kv[i+1]
		}
		return r
	}
	tests := []struct {
		name   string
		claims []string
		answer map[string]any
		want   string
	}{
		{"client_id first", nil, answer("client_id", "cid", "azp", "azp"), "cid"},
		{"then azp", nil, answer("azp", "azp"), "azp"},
		{"never sub by default", nil, answer(), ""},
		{"Okta's cid", []string{"cid"}, answer("cid", "0oa1okta", "client_id", "other"), "0oa1okta"},
		{"sub when named", []string{"client_id", "sub"}, answer(), "billing-svc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := introspectionConfig(t, srv)
			cfg.ClientIDClaims = tt.claims
			in := newIntrospector(t, cfg)
			token := newToken(t)
			srv.Register(token, tt.answer)
			c, err := in.Verify(context.Background(), token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.ClientID != tt.want {
				t.Errorf("ClientID = %q, want %q", c.ClientID, tt.want)
			}
		})
	}
}
