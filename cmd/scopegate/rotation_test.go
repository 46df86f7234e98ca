package main

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
)

// TestServeRotatesTheRedisRecordKeyWithTheClientSecret runs two binaries
// that share a provider and a Redis while the introspection client secret
// rotates: the provider accepts the old and the new secret, one instance
// reads the new one from its secret file, the other is still on the old
// one. The rotated instance refuses a record forged with the old secret,
// re-introspects the other's records, and neither counts a Redis error.
func TestServeRotatesTheRedisRecordKeyWithTheClientSecret(t *testing.T) {
	bin := buildBinary(t)
	insp := testutil.NewIntrospectionServer(t)
	redisAddr := testutil.Redis(t)
	oldSecret := insp.ClientSecret
	const newSecret = "the rotated client secret"
	start := func(maxTTL string) (*server, string) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"policy.yaml": opsPolicy,
			"secret":      oldSecret + "\n",
			"config.yaml": fmt.Sprintf(`listen: { grpc: 127.0.0.1:0, admin: 127.0.0.1:0 }
introspection:
  endpoint: %s
  client_id: %s
  client_secret_file: secret
  cache:
    max_ttl: %s
    redis: { addrs: [%s], timeout: 2s }
policy: { file: policy.yaml }
`, insp.URL, insp.ClientID, maxTTL, redisAddr),
		})
		return startServer(t, bin, filepath.Join(dir, "config.yaml")), filepath.Join(dir, "secret")
	}
	// The rotated instance accepts records under the old secret for its
	// max_ttl after the rotation, when they go stale by then. The old
	// instance caches for longer, so that its records, written after the
	// rotation, are fresh past that and are never taken.
	rotated, secretFile := start("1m")
	old, _ := start("10m")
	cr := authClient(t, rotated.grpc, insecure.NewCredentials())
	co := authClient(t, old.grpc, insecure.NewCredentials())
	check := func(c authv3.AuthorizationClient, token string) int {
		t.Helper()
		return checkStatus(t, c, "GET", "/orders/1", map[string]string{"authorization": "Bearer " + token})
	}
	active := func() string {
		token := opaqueToken()
		insp.Register(token, map[string]any{"active": true, "client_id": "svc", "scope": "orders:read", "exp": time.Now().Add(time.Hour).Unix()})
		return token
	}
	if got := check(cr, active()); got != 200 {
		t.Fatalf("before the rotation: %d, want 200", got)
	}

	insp.AddSecret(newSecret)
	writeFiles(t, filepath.Dir(secretFile), map[string]string{"secret": newSecret + "\n"})
	for deadline := time.Now().Add(testutil.WaitTimeout); !strings.Contains(rotated.stderr.String(), "read the rotated client secret"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the rotated secret file was not read within 10s:\n%s", rotated.stderr.String())
		}
		if got := check(cr, active()); got != 200 {
			t.Fatalf("during the rotation: %d, want 200", got)
		}
	}

	// Records for tokens the provider does not know: the one under the
	// new secret shows what its holder can write; the one under the old
	// secret must be refused, and the provider's answer decide.
	admin := &authz.Claims{ClientID: "mallory", Subject: "mallory", Scopes: []string{"orders:read"}}
	for _, f := range []struct {
		name, secret string
		want         int
	}{{"the new secret", newSecret, 200}, {"the old secret", oldSecret, 401}} {
		token := opaqueToken()
		forgeRecord(t, redisAddr, insp, f.secret, token, authz.CachedToken{Claims: admin, Until: time.Now().Add(30 * time.Minute)})
		if got := check(cr, token); got != f.want {
			t.Errorf("a record under %s for a token the provider does not know: %d, want %d", f.name, got, f.want)
		}
	}

	// The old instance caches two tokens; the provider then revokes one.
	live, revoked := active(), active()
	for _, token := range []string{live, revoked} {
		if got := check(co, token); got != 200 {
			t.Fatalf("the instance on the old secret: %d, want 200", got)
		}
	}
	insp.Register(revoked, map[string]any{"active": false})
	calls := insp.Calls()
	if got := check(cr, live); got != 200 {
		t.Errorf("the rotated instance, a live token the old one cached: %d, want 200", got)
	}
	if got := check(cr, revoked); got != 401 {
		t.Errorf("the rotated instance, a revoked token the old one cached: %d, want 401", got)
	}
	if n := insp.Calls() - calls; n != 2 {
		t.Errorf("the rotated instance made %d provider calls for the old one's records, want 2", n)
	}
	// And the other way round.
	token := active()
	if got := check(cr, token); got != 200 {
		t.Fatalf("the rotated instance: %d, want 200", got)
	}
	calls = insp.Calls()
	if got := check(co, token); got != 200 {
		t.Errorf("the instance on the old secret, a token the rotated one cached: %d, want 200", got)
	}
	if n := insp.Calls() - calls; n != 1 {
		t.Errorf("the instance on the old secret made %d provider calls for the rotated one's record, want 1", n)
	}

	for name, s := range map[string]*server{"rotated": rotated, "old": old} {
		_, mfs := scrapeMetrics(t, s.admin)
		if n := sample(mfs, "scopegate_introspection_cache_redis_errors_total"); n != 0 {
			t.Errorf("the %s instance counted %v Redis errors, want 0", name, n)
		}
		if strings.Contains(s.stderr.String(), "Redis failed") {
			t.Errorf("the %s instance logged a Redis failure:\n%s", name, s.stderr.String())
		}
	}
}

// opaqueToken returns a fresh random opaque token.
func opaqueToken() string {
	return "ory_at_" + rand.Text()
}

// forgeRecord writes to the Redis at addr the answer ct about token from
// insp, with its MAC keyed from secret as scopegate derives it: what anyone
// who holds secret and can write to Redis can do.
func forgeRecord(t *testing.T, addr string, insp *testutil.IntrospectionServer, secret, token string, ct authz.CachedToken) {
	t.Helper()
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, "scopegate token cache record", sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	client, err := (&authz.Redis{Addrs: []string{addr}, Timeout: 5 * time.Second}).NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ns := sha256.Sum256([]byte(insp.URL + "\n" + insp.ClientID))
	c := authz.NewRedisCache(client, hex.EncodeToString(ns[:8]), key, 5*time.Second)
	if err := c.Set(context.Background(), authz.TokenKey(token), ct); err != nil {
		t.Fatalf("forging a record: %v", err)
	}
}
