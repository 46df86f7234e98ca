package authz_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
)

const (
	dpopToken  = "an-access-token-bound-to-the-key"
	dpopMethod = "POST"
	dpopURI    = "https://api.example.com/v1/payments"
)

// dpopCheck is the check of a POST to dpopURI with dpopToken, bound to
// key.
func dpopCheck(t *testing.T, key *testutil.DPoPKey) authz.DPoPCheck {
	t.Helper()
	htu, err := authz.DPoPHTU("https", "API.example.com:443", "/v1/payments?amount=10")
	if err != nil || htu != dpopURI {
		t.Fatalf("DPoPHTU = %q, %v; want %q", htu, err, dpopURI)
	}
	return authz.DPoPCheck{Method: dpopMethod, HTU: htu, AccessToken: dpopToken, JKT: key.JKT}
}

// slowRedis gives Redis the time a loaded test machine may need.
var slowRedis = authz.DPoP{Replay: authz.DPoPReplay{RedisTimeout: 5 * time.Second}}

func newDPoPVerifier(t testing.TB, d authz.DPoP, client redis.UniversalClient) *authz.DPoPVerifier {
	t.Helper()
	v, err := authz.NewDPoPVerifier(d, client)
	if err != nil {
		t.Fatalf("NewDPoPVerifier: %v", err)
	}
	return v
}

// wantDPoPError fails t unless err is a *DPoPError with reason.
func wantDPoPError(t *testing.T, err error, reason authz.Reason, desc string) *authz.DPoPError {
	t.Helper()
	var de *authz.DPoPError
	if !errors.As(err, &de) {
		t.Fatalf("Verify: err = %v; want a *DPoPError %s", err, reason)
	}
	if de.Reason != reason || !strings.Contains(de.Description, desc) {
		t.Fatalf("Verify: %s %q; want %s containing %q", de.Reason, de.Description, reason, desc)
	}
	return de
}

func TestDPoPVerifyAcceptsAProofOfEachAlgorithm(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			key := testutil.NewDPoPKey(t, alg)
			v := newDPoPVerifier(t, authz.DPoP{}, nil)
			now := time.Now()
			jkt, err := v.Verify(context.Background(), key.Proof(t, dpopMethod, dpopURI, dpopToken, now, nil), dpopCheck(t, key), now)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if jkt != key.JKT {
				t.Fatalf("Verify: jkt %q; want the key's RFC 7638 thumbprint %q", jkt, key.JKT)
			}
		})
	}
}

// TestDPoPThumbprintOfRFC7638 pins the thumbprint to the example of
// RFC 7638 §3.1, through a proof whose jwk is that key: the verifier
// computes the thumbprint before the signature fails.
func TestDPoPThumbprintOfRFC7638(t *testing.T) {
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	key := testutil.NewDPoPKey(t, "RS256")
	v := newDPoPVerifier(t, authz.DPoP{}, nil)
	now := time.Now()
	proof := key.Proof(t, dpopMethod, dpopURI, dpopToken, now, func(p *testutil.DPoPProof) {
		p.Header["jwk"] = map[string]any{"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
	})
	c := dpopCheck(t, key)
	c.JKT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	_, err := v.Verify(context.Background(), proof, c, now)
	wantDPoPError(t, err, authz.ReasonDPoPProofInvalid, "signature is not by its jwk")
}

func TestDPoPVerifyRefusesAttacks(t *testing.T) {
	other := testutil.NewDPoPKey(t, "ES256")
	rsaKey := testutil.NewDPoPKey(t, "RS256")
	for _, tc := range []struct {
		name   string
		method string // of the proof, default dpopMethod
		htu    string // of the proof, default dpopURI
		token  string // whose hash is the proof's ath, default dpopToken
		iat    time.Duration
		change func(*testutil.DPoPProof)
		proof  func(good string) string // of the request, from the proof made
		jkt    string                   // the token's cnf.jkt, default the key's
		desc   string
	}{
		{name: "htu of another host", htu: "https://evil.example.com/v1/payments", desc: "htu"},
		{name: "htu of another path", htu: "https://api.example.com/v1/refunds", desc: "htu"},
		{name: "htu of another scheme", htu: "http://api.example.com/v1/payments", desc: "htu"},
		{name: "htu of another port", htu: "https://api.example.com:8443/v1/payments", desc: "htu"},
		{name: "htu with a query", htu: dpopURI + "?amount=10", desc: "htu"},
		{name: "htu with a fragment", htu: dpopURI + "#x", desc: "htu"},
		{name: "htu missing", change: func(p *testutil.DPoPProof) { delete(p.Claims, "htu") }, desc: "htu"},
		{name: "htm of another method", method: "GET", desc: "htm"},
		{name: "htm in lowercase", method: "post", desc: "htm"},
		{name: "htm missing", change: func(p *testutil.DPoPProof) { delete(p.Claims, "htm") }, desc: "htm"},
		{name: "ath of another token", token: "another-token", desc: "ath"},
		{name: "ath missing", change: func(p *testutil.DPoPProof) { delete(p.Claims, "ath") }, desc: "ath"},
		{name: "no jwk", change: func(p *testutil.DPoPProof) { p.Header["jwk"] = nil }, desc: "no jwk"},
		{name: "jwk not an object", change: func(p *testutil.DPoPProof) { p.Header["jwk"] = "key" }, desc: "no jwk"},
		{name: "private key in jwk", change: func(p *testutil.DPoPProof) {
			p.Header["jwk"].(map[string]any)["d"] = "AAAA"
		}, desc: "private"},
		{name: "oth in jwk", change: func(p *testutil.DPoPProof) {
			p.Header["jwk"].(map[string]any)["oth"] = []any{}
		}, desc: "private"},
		{name: "symmetric jwk", change: func(p *testutil.DPoPProof) {
			p.Header["jwk"] = map[string]any{"kty": "oct", "k": "c2VjcmV0"}
		}, desc: "private"},
		{name: "alg none", change: func(p *testutil.DPoPProof) {
			p.Method, p.SignKey = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
		}, desc: "alg"},
		{name: "HS256 with the jwk as secret", change: func(p *testutil.DPoPProof) {
			p.Method, p.SignKey = jwt.SigningMethodHS256, []byte("a secret anyone could choose")
		}, desc: "alg"},
		{name: "ES384 not allowed", change: func(p *testutil.DPoPProof) {
			p.Method = jwt.SigningMethodES384
			p.SignKey, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			p.Header["jwk"] = jwkOf(t, p.SignKey.(*ecdsa.PrivateKey).Public())
		}, desc: "alg"},
		{name: "iat too old", iat: -61 * time.Second, desc: "older than"},
		{name: "iat in the future", iat: 6 * time.Second, desc: "future"},
		{name: "iat missing", change: func(p *testutil.DPoPProof) { delete(p.Claims, "iat") }, desc: "no iat"},
		{name: "iat a string", change: func(p *testutil.DPoPProof) { p.Claims["iat"] = "now" }, desc: "well-formed"},
		{name: "jti missing", change: func(p *testutil.DPoPProof) { delete(p.Claims, "jti") }, desc: "no jti"},
		{name: "two proofs joined", proof: func(good string) string { return good + "," + good }, desc: "more than one"},
		{name: "no proof", proof: func(string) string { return "" }, desc: "no DPoP proof"},
		{name: "not a JWT", proof: func(string) string { return "not.a.jwt" }, desc: "well-formed"},
		{name: "signature cut", proof: func(good string) string { return good[:strings.LastIndexByte(good, '.')+1] }, desc: "signature"},
		{name: "typ jwt", change: func(p *testutil.DPoPProof) { p.Header["typ"] = "JWT" }, desc: "typ"},
		{name: "typ at+jwt", change: func(p *testutil.DPoPProof) { p.Header["typ"] = "at+jwt" }, desc: "typ"},
		{name: "typ missing", change: func(p *testutil.DPoPProof) { p.Header["typ"] = nil }, desc: "typ"},
		{name: "crit header", change: func(p *testutil.DPoPProof) { p.Header["crit"] = []any{"exp"} }, desc: "critical"},
		{name: "jwk of another key than the signer", change: func(p *testutil.DPoPProof) {
			p.Header["jwk"] = other.JWK
		}, desc: "signature is not by its jwk"},
		{name: "RSA jwk with alg ES256", change: func(p *testutil.DPoPProof) {
			p.Header["jwk"] = rsaKey.JWK
		}, desc: "not a key for its alg"},
		{name: "jwk for another alg", change: func(p *testutil.DPoPProof) {
			p.Header["jwk"].(map[string]any)["alg"] = "ES384"
		}, desc: "not a key for its alg"},
		{name: "jwk for encryption", change: func(p *testutil.DPoPProof) {
			p.Header["jwk"].(map[string]any)["use"] = "enc"
		}, desc: "not a key for its alg"},
		{name: "EC jwk off its curve", change: func(p *testutil.DPoPProof) {
			p.Header["jwk"].(map[string]any)["y"] = "AQ"
		}, desc: "not a key"},
		{name: "key not the token's cnf.jkt", jkt: other.JKT, desc: "cnf.jkt"},
		{name: "token without cnf.jkt", jkt: "-", desc: "not bound to a DPoP key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := testutil.NewDPoPKey(t, "ES256")
			v := newDPoPVerifier(t, authz.DPoP{}, nil)
			now := time.Now()
			method, htu, token := or(tc.method, dpopMethod), or(tc.htu, dpopURI), or(tc.token, dpopToken)
			proof := key.Proof(t, method, htu, token, now.Add(tc.iat), tc.change)
			if tc.proof != nil {
				proof = tc.proof(proof)
			}
			c := dpopCheck(t, key)
			c.JKT = or(tc.jkt, key.JKT)
			if c.JKT == "-" {
				c.JKT = ""
			}
			jkt, err := v.Verify(context.Background(), proof, c, now)
			de := wantDPoPError(t, err, authz.ReasonDPoPProofInvalid, tc.desc)
			if jkt != "" || de.Status() != http.StatusUnauthorized || de.Code() != "invalid_dpop_proof" {
				t.Fatalf("Verify: jkt %q, status %d, code %q; want none, 401, invalid_dpop_proof", jkt, de.Status(), de.Code())
			}
		})
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func jwkOf(t *testing.T, pub any) map[string]any {
	t.Helper()
	b, err := jose.JSONWebKey{Key: pub}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDPoPVerifyAcceptsAnHTUThatNormalizesToTheRequest(t *testing.T) {
	for _, htu := range []string{
		"https://api.example.com/v1/payments",
		"HTTPS://API.Example.COM/v1/payments",
		"https://api.example.com:443/v1/payments",
		"https://api.example.com/v1/%70ayments",
		"https://api.example.com/v1/./x/../payments",
	} {
		t.Run(htu, func(t *testing.T) {
			key := testutil.NewDPoPKey(t, "EdDSA")
			v := newDPoPVerifier(t, authz.DPoP{}, nil)
			now := time.Now()
			if _, err := v.Verify(context.Background(), key.Proof(t, dpopMethod, htu, dpopToken, now, nil), dpopCheck(t, key), now); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestDPoPVerifyAcceptsTheEdgesOfTheWindow(t *testing.T) {
	maxAge, leeway := 30*time.Second, 2*time.Second
	for _, iat := range []time.Duration{-maxAge, leeway} {
		key := testutil.NewDPoPKey(t, "ES256")
		v := newDPoPVerifier(t, authz.DPoP{MaxAge: &maxAge, Leeway: &leeway}, nil)
		now := time.Unix(time.Now().Unix(), 0) // iat has whole seconds
		if _, err := v.Verify(context.Background(), key.Proof(t, dpopMethod, dpopURI, dpopToken, now.Add(iat), nil), dpopCheck(t, key), now); err != nil {
			t.Fatalf("iat %v from now: Verify: %v", iat, err)
		}
	}
}

func TestDPoPVerifyRefusesAReplayedJTI(t *testing.T) {
	key := testutil.NewDPoPKey(t, "ES256")
	v := newDPoPVerifier(t, authz.DPoP{}, nil)
	now := time.Now()
	proof := key.Proof(t, dpopMethod, dpopURI, dpopToken, now, nil)
	if _, err := v.Verify(context.Background(), proof, dpopCheck(t, key), now); err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	_, err := v.Verify(context.Background(), proof, dpopCheck(t, key), now.Add(time.Second))
	wantDPoPError(t, err, authz.ReasonDPoPProofInvalid, "used before")

	// The same jti by another key is another proof.
	otherKey := testutil.NewDPoPKey(t, "ES256")
	jti := jtiOf(t, proof)
	p2 := otherKey.Proof(t, dpopMethod, dpopURI, dpopToken, now, func(p *testutil.DPoPProof) { p.Claims["jti"] = jti })
	if _, err := v.Verify(context.Background(), p2, dpopCheck(t, otherKey), now); err != nil {
		t.Fatalf("the same jti by another key: Verify: %v", err)
	}
}

func TestDPoPReplayAcrossInstancesThroughRedis(t *testing.T) {
	addr := testutil.Redis(t)
	key := testutil.NewDPoPKey(t, "EdDSA") // a fresh key: the replay keys are this test's own
	a := newDPoPVerifier(t, slowRedis, redisClient(t, addr))
	b := newDPoPVerifier(t, slowRedis, redisClient(t, addr))
	now := time.Now()
	proof := key.Proof(t, dpopMethod, dpopURI, dpopToken, now, nil)
	if _, err := a.Verify(context.Background(), proof, dpopCheck(t, key), now); err != nil {
		t.Fatalf("instance a: Verify: %v", err)
	}
	_, err := b.Verify(context.Background(), proof, dpopCheck(t, key), now)
	wantDPoPError(t, err, authz.ReasonDPoPProofInvalid, "used before")

	// What Redis holds is the hash of the key and jti, never the proof,
	// and it expires with the window.
	c := redisClient(t, addr)
	k := fmt.Sprintf("%s%x", authz.DPoPReplayKeyPrefix, authz.DPoPReplayKey(key.JKT, jtiOf(t, proof)))
	window := authz.DefaultDPoPMaxAge + authz.DefaultDPoPLeeway
	if ttl := c.PTTL(context.Background(), k).Val(); ttl <= 0 || ttl > window {
		t.Fatalf("%s expires in %v; want within the proof window %v", k, ttl, window)
	}
	if v := c.Get(context.Background(), k).Val(); strings.Contains(v, jtiOf(t, proof)) || strings.Contains(v, key.JKT) || strings.Contains(v, proof) {
		t.Fatalf("Redis holds the proof, its jti or its thumbprint: %s = %q", k, v)
	}

	// A new proof by the same key is accepted by b.
	if _, err := b.Verify(context.Background(), key.Proof(t, dpopMethod, dpopURI, dpopToken, now, nil), dpopCheck(t, key), now); err != nil {
		t.Fatalf("instance b, a new proof: Verify: %v", err)
	}
}

func TestDPoPReplayFailsClosedWhenRedisIsDown(t *testing.T) {
	srv := testutil.StartRedis(t)
	key := testutil.NewDPoPKey(t, "ES256")
	closed := newDPoPVerifier(t, slowRedis, redisClient(t, srv.Addr))
	open := newDPoPVerifier(t, authz.DPoP{Replay: authz.DPoPReplay{FailOpenWithoutRedis: true, RedisTimeout: 5 * time.Second}}, redisClient(t, srv.Addr))
	now := time.Now()
	if _, err := closed.Verify(context.Background(), key.Proof(t, dpopMethod, dpopURI, dpopToken, now, nil), dpopCheck(t, key), now); err != nil {
		t.Fatalf("Redis up: Verify: %v", err)
	}
	srv.Stop()

	_, err := closed.Verify(context.Background(), key.Proof(t, dpopMethod, dpopURI, dpopToken, now, nil), dpopCheck(t, key), now)
	de := wantDPoPError(t, err, authz.ReasonDPoPReplayUnavailable, "replay")
	if de.Status() != http.StatusServiceUnavailable || de.Code() != "" {
		t.Fatalf("Redis down: status %d, code %q; want 503 without error code", de.Status(), de.Code())
	}

	// Failing open falls back on this instance's memory: a proof is still
	// accepted once.
	proof := key.Proof(t, dpopMethod, dpopURI, dpopToken, now, nil)
	if _, err := open.Verify(context.Background(), proof, dpopCheck(t, key), now); err != nil {
		t.Fatalf("Redis down, fail_open_without_redis: Verify: %v", err)
	}
	_, err = open.Verify(context.Background(), proof, dpopCheck(t, key), now)
	wantDPoPError(t, err, authz.ReasonDPoPProofInvalid, "used before")
}

func TestDPoPInProcessReplayIsBoundedAndFailsClosedWhenFull(t *testing.T) {
	key := testutil.NewDPoPKey(t, "ES256")
	v := newDPoPVerifier(t, authz.DPoP{Replay: authz.DPoPReplay{MaxEntries: 2}}, nil)
	now := time.Now()
	for i := range 2 {
		if _, err := v.Verify(context.Background(), key.Proof(t, dpopMethod, dpopURI, dpopToken, now, nil), dpopCheck(t, key), now); err != nil {
			t.Fatalf("proof %d: Verify: %v", i, err)
		}
	}
	_, err := v.Verify(context.Background(), key.Proof(t, dpopMethod, dpopURI, dpopToken, now, nil), dpopCheck(t, key), now)
	wantDPoPError(t, err, authz.ReasonDPoPReplayUnavailable, "replay")

	// Once the first two are out of the window, there is room again.
	later := now.Add(authz.DefaultDPoPMaxAge + authz.DefaultDPoPLeeway)
	if _, err := v.Verify(context.Background(), key.Proof(t, dpopMethod, dpopURI, dpopToken, later, nil), dpopCheck(t, key), later); err != nil {
		t.Fatalf("after the window: Verify: %v", err)
	}
}

func TestDPoPNonces(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "nonce")
	if err := os.WriteFile(secret, []byte(strings.Repeat("s", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := authz.DPoP{UseNonce: true, NonceLifetime: time.Minute, NonceSecretFile: secret}
	a, b := newDPoPVerifier(t, d, nil), newDPoPVerifier(t, d, nil)
	stranger := newDPoPVerifier(t, authz.DPoP{UseNonce: true}, nil)
	key := testutil.NewDPoPKey(t, "ES256")
	now := time.Now()
	withNonce := func(n string) func(*testutil.DPoPProof) {
		return func(p *testutil.DPoPProof) { p.Claims["nonce"] = n }
	}

	_, err := a.Verify(context.Background(), key.Proof(t, dpopMethod, dpopURI, dpopToken, now, nil), dpopCheck(t, key), now)
	de := wantDPoPError(t, err, authz.ReasonDPoPNonceRequired, "must carry the nonce")
	if de.Nonce == "" || de.Code() != "use_dpop_nonce" || de.Status() != http.StatusUnauthorized {
		t.Fatalf("no nonce: nonce %q, code %q, status %d; want a nonce, use_dpop_nonce, 401", de.Nonce, de.Code(), de.Status())
	}
	// The nonce a handed out is good at b, which shares its secret.
	if _, err := b.Verify(context.Background(), key.Proof(t, dpopMethod, dpopURI, dpopToken, now, withNonce(de.Nonce)), dpopCheck(t, key), now.Add(time.Second)); err != nil {
		t.Fatalf("a's nonce at b: Verify: %v", err)
	}
	for _, tc := range []struct {
		name  string
		nonce string
		at    time.Time
	}{
		{"a nonce past its lifetime", de.Nonce, now.Add(time.Minute + 2*time.Second)},
		{"a nonce of another secret", stranger.Nonce(now), now},
		{"a nonce altered", alter(de.Nonce), now},
		{"not a nonce", "x", now},
	} {
		_, err := a.Verify(context.Background(), key.Proof(t, dpopMethod, dpopURI, dpopToken, tc.at, withNonce(tc.nonce)), dpopCheck(t, key), tc.at)
		if de := wantDPoPError(t, err, authz.ReasonDPoPNonceRequired, "not a current one"); de.Nonce == "" {
			t.Fatalf("%s: no new nonce to send", tc.name)
		}
	}
	if n := newDPoPVerifier(t, authz.DPoP{}, nil).Nonce(now); n != "" {
		t.Fatalf("Nonce without use_dpop_nonce = %q; want none", n)
	}
}

func TestDPoPChallenge(t *testing.T) {
	v := newDPoPVerifier(t, authz.DPoP{}, nil)
	for _, tc := range []struct{ realm, code, desc, want string }{
		{"", "", "", `DPoP algs="ES256 EdDSA RS256 PS256"`},
		{"api", "invalid_dpop_proof", `the "proof" is bad`,
			`DPoP realm="api", algs="ES256 EdDSA RS256 PS256", error="invalid_dpop_proof", error_description="the 'proof' is bad"`},
		{"", "use_dpop_nonce", "a nonce is required",
			`DPoP algs="ES256 EdDSA RS256 PS256", error="use_dpop_nonce", error_description="a nonce is required"`},
	} {
		if got := v.Challenge(tc.realm, tc.code, tc.desc); got != tc.want {
			t.Errorf("Challenge(%q, %q, %q) =\n%s\nwant\n%s", tc.realm, tc.code, tc.desc, got, tc.want)
		}
	}
	only := newDPoPVerifier(t, authz.DPoP{Algorithms: []string{"EdDSA"}}, nil)
	if got, want := only.Challenge("", "", ""), `DPoP algs="EdDSA"`; got != want {
		t.Errorf("Challenge = %s; want %s", got, want)
	}
}

func TestDPoPValidate(t *testing.T) {
	neg, long := -time.Second, 6*time.Minute
	for _, tc := range []struct {
		name  string
		d     authz.DPoP
		field string // "" for valid
	}{
		{"zero value", authz.DPoP{}, ""},
		{"allowlist", authz.DPoP{Algorithms: []string{"ES256", "ES384", "PS512"}}, ""},
		{"none", authz.DPoP{Algorithms: []string{"ES256", "none"}}, "algorithms[1]"},
		{"HS256", authz.DPoP{Algorithms: []string{"HS256"}}, "algorithms[0]"},
		{"unknown alg", authz.DPoP{Algorithms: []string{"ES257"}}, "algorithms[0]"},
		{"negative max_age", authz.DPoP{MaxAge: &neg}, "max_age"},
		{"long leeway", authz.DPoP{Leeway: &long}, "leeway"},
		{"negative nonce_lifetime", authz.DPoP{UseNonce: true, NonceLifetime: -1}, "nonce_lifetime"},
		{"nonce secret without nonces", authz.DPoP{NonceSecretFile: "/x"}, "nonce_secret_file"},
		{"negative max_entries", authz.DPoP{Replay: authz.DPoPReplay{MaxEntries: -1}}, "replay.max_entries"},
	} {
		errs := tc.d.Validate()
		switch {
		case tc.field == "" && len(errs) > 0:
			t.Errorf("%s: Validate = %v; want no error", tc.name, errs)
		case tc.field != "" && (len(errs) != 1 || errs[0].Field != tc.field):
			t.Errorf("%s: Validate = %v; want one error for %s", tc.name, errs, tc.field)
		}
		if _, err := authz.NewDPoPVerifier(tc.d, nil); (err != nil) != (tc.field != "") {
			t.Errorf("%s: NewDPoPVerifier: %v", tc.name, err)
		}
	}
}

func TestDPoPNonceSecretFileTooShort(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "nonce")
	if err := os.WriteFile(secret, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := authz.NewDPoPVerifier(authz.DPoP{UseNonce: true, NonceSecretFile: secret}, nil)
	if err == nil || !strings.Contains(err.Error(), "fewer than 32") {
		t.Fatalf("NewDPoPVerifier: %v; want a secret too short", err)
	}
}

// jtiOf returns the jti of the proof, read without verifying it.
func jtiOf(t testing.TB, proof string) string {
	t.Helper()
	var c jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(proof, &c); err != nil {
		t.Fatal(err)
	}
	return c["jti"].(string)
}

// alter returns s with its first character changed.
func alter(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// FuzzDPoPProof holds the verifier to never panicking, and to accepting a
// proof only when go-jose, another implementation, finds it signed by the
// key of its jwk header.
func FuzzDPoPProof(f *testing.F) {
	now := time.Now()
	var jkts []string
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		key := testutil.NewDPoPKey(f, alg)
		jkts = append(jkts, key.JKT)
		good := key.Proof(f, dpopMethod, dpopURI, dpopToken, now, nil)
		f.Add(good)
		f.Add(good + "," + good)
		f.Add(key.Proof(f, dpopMethod, dpopURI, dpopToken, now, func(p *testutil.DPoPProof) {
			p.Header["jwk"].(map[string]any)["d"] = "AAAA"
		}))
	}
	f.Fuzz(func(t *testing.T, proof string) {
		v := newDPoPVerifier(t, authz.DPoP{}, nil)
		var jkt string
		for _, bound := range jkts {
			check := authz.DPoPCheck{Method: dpopMethod, HTU: dpopURI, AccessToken: dpopToken, JKT: bound}
			var err error
			if jkt, err = v.Verify(context.Background(), proof, check, now); err == nil {
				break
			}
			var de *authz.DPoPError
			if !errors.As(err, &de) {
				t.Fatalf("Verify: %v; want a *DPoPError", err)
			}
		}
		if jkt == "" {
			return
		}
		jws, err := jose.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256})
		if err != nil {
			t.Fatalf("Verify accepted a proof that go-jose cannot parse: %v", err)
		}
		jwk := jws.Signatures[0].Protected.JSONWebKey
		if jwk == nil || !jwk.IsPublic() {
			t.Fatalf("Verify accepted a proof without a public jwk")
		}
		if _, err := jws.Verify(jwk); err != nil {
			t.Fatalf("Verify accepted a proof not signed by its jwk: %v", err)
		}
		if thumb, _ := jwk.Thumbprint(crypto.SHA256); base64.RawURLEncoding.EncodeToString(thumb) != jkt {
			t.Fatalf("Verify returned jkt %q, not the thumbprint of the jwk", jkt)
		}
	})
}

// BenchmarkDPoPVerify measures a proof's verification with the
// in-process replay check, per algorithm. Proofs are made beforehand: each
// is accepted once.
func BenchmarkDPoPVerify(b *testing.B) {
	const pool = 512
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		key := testutil.NewDPoPKey(b, alg)
		now := time.Now()
		proofs := make([]string, pool)
		for i := range proofs {
			proofs[i] = key.Proof(b, dpopMethod, dpopURI, dpopToken, now, nil)
		}
		check := authz.DPoPCheck{Method: dpopMethod, HTU: dpopURI, AccessToken: dpopToken, JKT: key.JKT}
		b.Run(alg, func(b *testing.B) {
			var v *authz.DPoPVerifier
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%pool == 0 { // a new verifier, which has seen none of the proofs
					b.StopTimer()
					v = newDPoPVerifier(b, authz.DPoP{}, nil)
					b.StartTimer()
				}
				if _, err := v.Verify(context.Background(), proofs[i%pool], check, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestDPoPVerifyRefusesAProofWithoutAnAccessToken(t *testing.T) {
	key := testutil.NewDPoPKey(t, "ES256")
	v := newDPoPVerifier(t, authz.DPoP{}, nil)
	now := time.Now()
	c := dpopCheck(t, key)
	c.AccessToken = ""
	_, err := v.Verify(context.Background(), key.Proof(t, dpopMethod, dpopURI, "", now, nil), c, now)
	wantDPoPError(t, err, authz.ReasonDPoPProofInvalid, "without an access token")
}

// BenchmarkDPoPVerifyRedis measures an EdDSA proof's verification with the
// replay check in Redis: the cost of sharing the jtis across instances.
func BenchmarkDPoPVerifyRedis(b *testing.B) {
	addr := testutil.Redis(b)
	c := redis.NewClient(&redis.Options{Addr: addr})
	b.Cleanup(func() { c.Close() })
	key := testutil.NewDPoPKey(b, "EdDSA")
	v := newDPoPVerifier(b, slowRedis, c)
	now := time.Now()
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = key.Proof(b, dpopMethod, dpopURI, dpopToken, now, nil)
	}
	check := authz.DPoPCheck{Method: dpopMethod, HTU: dpopURI, AccessToken: dpopToken, JKT: key.JKT}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := v.Verify(context.Background(), proofs[i], check, now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDPoPReplayAcceptsAProofOnceUnderConcurrency sends one proof from
// many goroutines at once, to one instance in memory and to two sharing
// Redis: exactly one is accepted.
func TestDPoPReplayAcceptsAProofOnceUnderConcurrency(t *testing.T) {
	addr := testutil.Redis(t)
	for _, tc := range []struct {
		name      string
		verifiers func(t *testing.T) []*authz.DPoPVerifier
	}{
		{"in process", func(t *testing.T) []*authz.DPoPVerifier {
			return []*authz.DPoPVerifier{newDPoPVerifier(t, authz.DPoP{}, nil)}
		}},
		{"two instances through Redis", func(t *testing.T) []*authz.DPoPVerifier {
			return []*authz.DPoPVerifier{newDPoPVerifier(t, slowRedis, redisClient(t, addr)), newDPoPVerifier(t, slowRedis, redisClient(t, addr))}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := testutil.NewDPoPKey(t, "EdDSA")
			vs := tc.verifiers(t)
			now := time.Now()
			proof := key.Proof(t, dpopMethod, dpopURI, dpopToken, now, nil)
			c := dpopCheck(t, key)
			const n = 16
			errs := make(chan error, n)
			for i := range n {
				go func() {
					_, err := vs[i%len(vs)].Verify(context.Background(), proof, c, now)
					errs <- err
				}()
			}
			accepted := 0
			deadline := time.After(30 * time.Second)
			for range n {
				var err error
				select {
				case err = <-errs:
				case <-deadline:
					t.Fatalf("waited 30s for the %d concurrent Verify calls to return", n)
				}
				switch {
				case err == nil:
					accepted++
				default:
					wantDPoPError(t, err, authz.ReasonDPoPProofInvalid, "used before")
				}
			}
			if accepted != 1 {
				t.Fatalf("%d of %d concurrent uses of one proof accepted; want 1", accepted, n)
			}
		})
	}
}
