package devidp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

func newTestIdP(t *testing.T) (*IdP, *httptest.Server) {
	t.Helper()
	p, err := New(Config{Clients: []Client{
		{ID: "orders", Secret: "s3cret", Scopes: []string{"orders:read", "orders:write"}, Audience: []string{"api", "admin"}},
		{ID: "a b", Secret: "p&ss:word", Scopes: []string{"x"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	p.SetIssuer(srv.URL)
	return p, srv
}

type tokenAnswer struct {
	Status      int
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func requestToken(t *testing.T, srv *httptest.Server, form url.Values, basicID, basicSecret string) tokenAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
	}
	a := tokenAnswer{Status: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestTokenEndpointIssuesTokens(t *testing.T) {
	p, srv := newTestIdP(t)
	tests := []struct {
		name         string
		form         url.Values
		basic        [2]string
		wantScope    string
		wantAudience any
		wantClient   string
	}{
		{"basic, all scopes", url.Values{"grant_type": {"client_credentials"}}, [2]string{"orders", "s3cret"},
			"orders:read orders:write", []any{"api", "admin"}, "orders"},
		{"form, some scopes", url.Values{"grant_type": {"client_credentials"}, "client_id": {"orders"}, "client_secret": {"s3cret"}, "scope": {"orders:read orders:read"}},
			[2]string{}, "orders:read", []any{"api", "admin"}, "orders"},
		{"one audience", url.Values{"grant_type": {"client_credentials"}, "audience": {"admin"}}, [2]string{"orders", "s3cret"},
			"orders:read orders:write", "admin", "orders"},
		{"form-encoded Basic credentials", url.Values{"grant_type": {"client_credentials"}}, [2]string{"a b", "p&ss:word"}, "x", nil, "a b"},
		{"client_id beside Basic", url.Values{"grant_type": {"client_credentials"}, "client_id": {"orders"}}, [2]string{"orders", "s3cret"},
			"orders:read orders:write", []any{"api", "admin"}, "orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := requestToken(t, srv, tt.form, tt.basic[0], tt.basic[1])
			if a.Status != http.StatusOK || a.TokenType != "Bearer" || a.ExpiresIn != int64(DefaultTTL/time.Second) || a.Scope != tt.wantScope {
				t.Fatalf("answer = %+v", a)
			}
			claims := jwt.MapClaims{}
			tok, err := jwt.ParseWithClaims(a.AccessToken, claims, func(tok *jwt.Token) (any, error) {
				return p.PublicKey(RS256), nil
			}, jwt.WithValidMethods([]string{RS256}), jwt.WithIssuer(p.Issuer()), jwt.WithExpirationRequired())
			if err != nil {
				t.Fatalf("the token does not verify: %v", err)
			}
			if tok.Header["typ"] != TokenType || tok.Header["kid"] != p.KeyID(RS256) {
				t.Errorf("header = %v", tok.Header)
			}
			if claims["sub"] != tt.wantClient || claims["client_id"] != tt.wantClient || claims["scope"] != tt.wantScope ||
				claims["jti"] == "" || claims["iat"] == nil {
				t.Errorf("claims = %v", claims)
			}
			if got, _ := json.Marshal(claims["aud"]); string(got) != mustJSON(t, tt.wantAudience) {
				t.Errorf("aud = %s, want %s", got, mustJSON(t, tt.wantAudience))
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTokenEndpointRefusals(t *testing.T) {
	_, srv := newTestIdP(t)
	cc := url.Values{"grant_type": {"client_credentials"}}
	with := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name       string
		form       url.Values
		basic      [2]string
		wantStatus int
		wantError  string
	}{
		{"no grant_type", url.Values{}, [2]string{"orders", "s3cret"}, 400, "invalid_request"},
		{"other grant", url.Values{"grant_type": {"password"}}, [2]string{"orders", "s3cret"}, 400, "unsupported_grant_type"},
		{"no client", cc, [2]string{}, 401, "invalid_client"},
		{"wrong secret", cc, [2]string{"orders", "s3cre"}, 401, "invalid_client"},
		{"empty secret", cc, [2]string{"orders", ""}, 401, "invalid_client"},
		{"unknown client", cc, [2]string{"nobody", "s3cret"}, 401, "invalid_client"},
		{"wrong form secret", with("client_id", "orders", "client_secret", "nope"), [2]string{}, 401, "invalid_client"},
		{"two ways", with("client_secret", "s3cret"), [2]string{"orders", "s3cret"}, 400, "invalid_request"},
		{"another client_id beside Basic", with("client_id", "a b"), [2]string{"orders", "s3cret"}, 400, "invalid_request"},
		{"repeated scope", with("scope", "orders:read", "scope", "orders:write"), [2]string{"orders", "s3cret"}, 400, "invalid_request"},
		{"scope not granted", with("scope", "orders:read admin"), [2]string{"orders", "s3cret"}, 400, "invalid_scope"},
		{"audience not granted", with("audience", "api", "audience", "other"), [2]string{"orders", "s3cret"}, 400, "invalid_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := requestToken(t, srv, tt.form, tt.basic[0], tt.basic[1])
			if a.Status != tt.wantStatus || a.Error != tt.wantError || a.Description == "" || a.AccessToken != "" {
				t.Errorf("answer = %+v, want %d %s", a, tt.wantStatus, tt.wantError)
			}
		})
	}
	resp, err := srv.Client().Get(srv.URL + TokenPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET %s = %s, want 405", TokenPath, resp.Status)
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	p, srv := newTestIdP(t)
	p.SetIssuer(srv.URL + "/")
	var doc struct {
		Issuer        string `json:"issuer"`
		JWKSURI       string `json:"jwks_uri"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	getJSON(t, srv, DiscoveryPath, &doc)
	if doc.Issuer != srv.URL+"/" || doc.JWKSURI != srv.URL+JWKSPath || doc.TokenEndpoint != srv.URL+TokenPath {
		t.Errorf("discovery document = %+v", doc)
	}

	old := p.KeyID(EdDSA)
	kept := p.KeyID(RS256)
	if _, err := p.Rotate(RS256, true); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Rotate(EdDSA, false); err != nil {
		t.Fatal(err)
	}
	var set jwkset.JWKSMarshal
	getJSON(t, srv, JWKSPath, &set)
	var kids []string
	for _, k := range set.Keys {
		if k.D != "" || k.USE != jwkset.UseSig || k.ALG == "" {
			t.Errorf("key %s: private material, or no use or alg", k.KID)
		}
		kids = append(kids, k.KID)
	}
	want := []string{kept, p.KeyID(ES256), p.KeyID(RS256), p.KeyID(EdDSA)}
	if !slices.Equal(kids, want) || slices.Contains(kids, old) {
		t.Errorf("JWKS kids = %q, want %q", kids, want)
	}
}

func getJSON(t *testing.T, srv *httptest.Server, path string, v any) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func TestMintSignsWithEachAlgorithmAndHeader(t *testing.T) {
	p, err := New(Config{Issuer: "https://idp.test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{RS256, ES256, EdDSA} {
		tok, err := p.Mint(map[string]any{"sub": "x"}, Signing{Alg: alg, Header: map[string]any{"jku": "https://evil.test", "typ": nil}})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return p.PublicKey(alg), nil }, jwt.WithValidMethods([]string{alg}))
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if _, ok := parsed.Header["typ"]; ok || parsed.Header["jku"] != "https://evil.test" || parsed.Header["kid"] != p.KeyID(alg) {
			t.Errorf("%s: header = %v", alg, parsed.Header)
		}
	}
	if _, err := p.Mint(nil, Signing{Alg: "HS256"}); err == nil {
		t.Error("Mint with HS256 succeeded")
	}
}

func TestNewRefusesInvalidConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no client ID":   {Clients: []Client{{Secret: "s"}}},
		"no secret":      {Clients: []Client{{ID: "c"}}},
		"client twice":   {Clients: []Client{{ID: "c", Secret: "s"}, {ID: "c", Secret: "t"}}},
		"negative TTL":   {TTL: -time.Second},
		"no ID, 2nd one": {Clients: []Client{{ID: "c", Secret: "s"}, {Secret: "s"}}},
	} {
		if _, err := New(cfg); err == nil || !strings.HasPrefix(err.Error(), "devidp: ") {
			t.Errorf("%s: New error = %v", name, err)
		}
	}
}
