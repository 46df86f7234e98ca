package authz_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
)

// rotationMaxTTL is the cache's max_ttl in the rotation tests, and so the
// grace of the previous client secret's records.
const rotationMaxTTL = time.Hour

// rotationClock is the clock of an Introspector's secret rotations: the
// real time, moved on by what the test says has passed.
type rotationClock struct{ passed atomic.Int64 }

func (c *rotationClock) now() time.Time { return time.Now().Add(time.Duration(c.passed.Load())) }

func (c *rotationClock) advance(d time.Duration) { c.passed.Add(int64(d)) }

// instance is one scopegate instance asking srv with the client secret in
// its own secret file and sharing the test's Redis.
type instance struct {
	*authz.Introspector
	file  string
	clock *rotationClock
}

func newInstance(t *testing.T, srv *testutil.IntrospectionServer) *instance {
	t.Helper()
	cfg := introspectionConfig(t, srv)
	cfg.Cache.MaxTTL = duration(rotationMaxTTL)
	cfg.Cache.Redis = &authz.Redis{Addrs: []string{testutil.Redis(t)}, Timeout: 2 * time.Second}
	in := &instance{Introspector: newIntrospector(t, cfg), file: cfg.ClientSecretFile, clock: &rotationClock{}}
	authz.SetRotationClock(in.Introspector, in.clock.now)
	return in
}

// rotate writes secret into in's secret file, as the kubelet updates a
// mounted Secret, and returns once in has read it: the first check after
// the file's check interval reads it, and the provider, which srv is, must
// accept it.
func (in *instance) rotate(t *testing.T, srv *testutil.IntrospectionServer, secret string) {
	t.Helper()
	if err := os.WriteFile(in.file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in.clock.advance(2 * time.Second)
	token := newToken(t)
	srv.Register(token, activeResponse())
	if _, err := in.Verify(context.Background(), token); err != nil {
		t.Fatalf("the first check after the rotation: %v; want the new secret read and accepted", err)
	}
}

// forge writes to Redis the answer claims, fresh until until, about token
// from srv, with its MAC under secret: what anyone who holds secret and can
// write to Redis can do.
func forge(t *testing.T, srv *testutil.IntrospectionServer, secret, token string, claims *authz.Claims, until time.Time) {
	t.Helper()
	key, err := authz.RecordKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	c := authz.NewRedisCache(redisClient(t, testutil.Redis(t)), namespaceOf(srv), key, 2*time.Second)
	if err := c.Set(context.Background(), authz.TokenKey(token), authz.CachedToken{Claims: claims, Until: until}); err != nil {
		t.Fatalf("forging a record: %v", err)
	}
}

// namespaceOf is the namespace of the Redis keys of the answers of srv, as
// RedisKeyPrefix documents it.
func namespaceOf(srv *testutil.IntrospectionServer) string {
	ns := sha256.Sum256([]byte(srv.URL + "\n" + srv.ClientID))
	return hex.EncodeToString(ns[:8])
}

// TestIntrospectRotationAcceptsThePreviousSecretOnlyForItsGrace rotates the
// client secret at the provider and in the secret file, then has a record
// written to Redis for a token that the provider says is not active. Under
// the previous secret it is taken only if it goes stale by the rotation
// plus max_ttl, and not at all from then on; refused, it is a miss, the
// provider is asked and its answer decides.
func TestIntrospectRotationAcceptsThePreviousSecretOnlyForItsGrace(t *testing.T) {
	const oldSecret, newSecret = "s3cret: with & odd = characters", "the rotated client secret"
	tests := []struct {
		name   string
		secret string
		// passed is how long after the rotation the record is read; fresh
		// is how long it says it is fresh for, from then.
		passed, fresh time.Duration
		taken         bool
	}{
		{"under the new secret", newSecret, 0, 10 * time.Minute, true},
		{"under the old secret, stale by the end of the grace", oldSecret, 0, 30 * time.Minute, true},
		{"under the old secret, fresh past the end of the grace", oldSecret, 0, rotationMaxTTL + time.Minute, false},
		{"under the old secret, once the grace has ended", oldSecret, rotationMaxTTL, 30 * time.Minute, false},
		{"under a secret never used", "a guess", 0, 10 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := testutil.NewIntrospectionServer(t)
			if srv.ClientSecret != oldSecret {
				t.Fatalf("the provider's secret is %q, want %q", srv.ClientSecret, oldSecret)
			}
			in := newInstance(t, srv)
			srv.RotateSecret(newSecret)
			in.rotate(t, srv, newSecret)
			in.clock.advance(tt.passed)

			token := newToken(t)
			forged := &authz.Claims{Issuer: "https://idp.example.com", Subject: "mallory", ClientID: "mallory", Scopes: []string{"orders:admin"}}
			forge(t, srv, tt.secret, token, forged, time.Now().Add(tt.fresh))
			before := in.Stats()
			c, err := in.Verify(context.Background(), token)
			s := in.Stats()
			if s.RedisErrors != before.RedisErrors || s.Failures != before.Failures {
				t.Errorf("Stats = %+v after %+v; want no Redis error and no failure", s, before)
			}
			if tt.taken {
				if err != nil || c.ClientID != "mallory" || s.L2Hits != before.L2Hits+1 || s.Calls != before.Calls {
					t.Fatalf("Verify = %+v, %v with Stats %+v; want the record taken from Redis", c, err, s)
				}
				return
			}
			wantReason(t, err, authz.ReasonInactive, false)
			if s.L2Misses != before.L2Misses+1 || s.Calls != before.Calls+1 {
				t.Errorf("Stats = %+v after %+v; want a Redis miss and the provider asked", s, before)
			}
		})
	}
}

// TestIntrospectFleetMidRotation has three instances share one Redis while
// the client secret rotates: the provider accepts the old and the new one,
// two instances have read the new one, and one is still on the old one
// after the grace. Each instance takes the others' records or asks the
// provider, whose answer decides; none counts a Redis error or fails.
func TestIntrospectFleetMidRotation(t *testing.T) {
	const newSecret = "the rotated client secret"
	srv := testutil.NewIntrospectionServer(t)
	old, rotated, peer := newInstance(t, srv), newInstance(t, srv), newInstance(t, srv)
	srv.AddSecret(newSecret)
	rotated.rotate(t, srv, newSecret)
	peer.rotate(t, srv, newSecret)
	ctx := context.Background()

	live, revoked, fresh := newToken(t), newToken(t), newToken(t)
	for _, tok := range []string{live, revoked, fresh} {
		srv.Register(tok, activeResponse())
	}
	for _, tok := range []string{live, revoked} {
		if _, err := old.Verify(ctx, tok); err != nil {
			t.Fatalf("the instance on the old secret: Verify: %v", err)
		}
	}
	srv.Register(revoked, map[string]any{"active": false})
	// Within the grace, the rotated instances take the old one's records
	// as they take their own: a revoked token passes until its answer goes
	// stale. After it, they ask the provider.
	rotated.clock.advance(rotationMaxTTL)

	calls := srv.Calls()
	if _, err := rotated.Verify(ctx, live); err != nil {
		t.Errorf("the rotated instance: Verify of the live token the old one cached: %v", err)
	}
	_, err := rotated.Verify(ctx, revoked)
	wantReason(t, err, authz.ReasonInactive, false)
	if n := srv.Calls() - calls; n != 2 {
		t.Errorf("the rotated instance made %d provider calls for the old one's records, want 2", n)
	}

	if _, err := rotated.Verify(ctx, fresh); err != nil {
		t.Fatalf("the rotated instance: Verify: %v", err)
	}
	calls = srv.Calls()
	if _, err := peer.Verify(ctx, fresh); err != nil {
		t.Errorf("the other rotated instance: Verify: %v", err)
	}
	if n, s := srv.Calls()-calls, peer.Stats(); n != 0 || s.L2Hits != 1 {
		t.Errorf("the other rotated instance made %d provider calls, Stats %+v; want the record from Redis", n, s)
	}
	if _, err := old.Verify(ctx, fresh); err != nil {
		t.Errorf("the instance on the old secret: Verify of a token the rotated one cached: %v", err)
	}
	if n := srv.Calls() - calls; n != 1 {
		t.Errorf("the instance on the old secret made %d provider calls for the rotated one's record, want 1", n)
	}

	for name, in := range map[string]*instance{"old": old, "rotated": rotated, "peer": peer} {
		if s := in.Stats(); s.RedisErrors != 0 || s.Failures != 0 {
			t.Errorf("the %s instance's Stats = %+v, want no Redis error and no failure", name, s)
		}
	}
}
