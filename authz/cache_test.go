package authz_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
)

// testCache runs the tests every TokenCache must pass.
func testCache(t *testing.T, c authz.TokenCache) {
	ctx := context.Background()
	until := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli())
	claims := &authz.Claims{
		Issuer: "https://idp.example.com", Subject: "svc", ClientID: "svc",
		Audience: []string{"orders"}, Scopes: []string{"orders:read"},
		Expiry: time.Unix(time.Now().Add(time.Hour).Unix(), 0),
	}
	// Enough keys to land on every node of a cluster.
	for i := range 30 {
		active, inactive := authz.TokenKey(newToken(t)), authz.TokenKey(newToken(t))
		for key, want := range map[[32]byte]authz.CachedToken{
			active:   {Claims: claims, Until: until},
			inactive: {Until: until},
		} {
			if err := c.Set(ctx, key, want); err != nil {
				t.Fatalf("Set %d: %v", i, err)
			}
			got, ok, err := c.Get(ctx, key)
			if err != nil || !ok {
				t.Fatalf("Get %d after Set = ok %v, err %v; want a hit", i, ok, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Get %d:\n got %+v\nwant %+v", i, got, want)
			}
		}
	}
	if _, ok, err := c.Get(ctx, authz.TokenKey(newToken(t))); ok || err != nil {
		t.Errorf("Get of an unknown key = ok %v, err %v; want a miss", ok, err)
	}

	key := authz.TokenKey(newToken(t))
	if err := c.Set(ctx, key, authz.CachedToken{Claims: claims, Until: time.Now().Add(100 * time.Millisecond)}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, ok, err := c.Get(ctx, key); ok || err != nil {
		t.Errorf("Get of a stale entry = ok %v, err %v; want a miss", ok, err)
	}
}

func TestMemoryCache(t *testing.T) {
	testCache(t, authz.NewMemoryCache(0))
}

func TestRedisCache(t *testing.T) {
	testCache(t, authz.NewRedisCache(redisClient(t, testutil.Redis(t)), "test", []byte("secret"), 2*time.Second))
}

func TestIntrospectRedisTier(t *testing.T) {
	testIntrospectRedisTier(t, []string{testutil.Redis(t)})
}

func TestRedisCluster(t *testing.T) {
	addrs := testutil.RedisCluster(t)
	t.Run("cache", func(t *testing.T) {
		testCache(t, authz.NewRedisCache(redisClient(t, addrs...), "test", []byte("secret"), 2*time.Second))
	})
	t.Run("introspect", func(t *testing.T) {
		testIntrospectRedisTier(t, addrs)
	})
}

// testIntrospectRedisTier checks that Introspectors with separate memory
// caches share answers through Redis at addrs, and that Redis never holds a
// token.
func testIntrospectRedisTier(t *testing.T, addrs []string) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	// A generous timeout, lest a Redis slowed by a busy machine send
	// checks to the provider.
	cfg.Cache.Redis = &authz.Redis{Addrs: addrs, Timeout: 2 * time.Second}
	first, second := newIntrospector(t, cfg), newIntrospector(t, cfg)
	ctx := context.Background()
	active, inactive := newToken(t), newToken(t)
	srv.Register(active, activeResponse())
	for _, in := range []*authz.Introspector{first, second} {
		c, err := in.Verify(ctx, active)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if c.ClientID != "billing" || len(c.Scopes) != 2 {
			t.Fatalf("claims = %+v", c)
		}
		_, err = in.Verify(ctx, inactive)
		wantReason(t, err, authz.ReasonInactive, false)
	}
	if n := srv.Calls(); n != 2 {
		t.Errorf("provider calls = %d, want 2: the second instance should find both answers in Redis", n)
	}
	if s := second.Stats(); s.L2Hits != 2 || s.Calls != 0 {
		t.Errorf("second instance's Stats = %+v, want 2 L2 hits and no calls", s)
	}

	// Redis holds the answers under hashes of the provider and the
	// tokens, and no token.
	client := redisClient(t, addrs...)
	found := 0
	want := map[string]bool{
		redisKeyOf(srv, active):   true,
		redisKeyOf(srv, inactive): true,
	}
	scanRedis(t, client, func(key, value string) {
		if want[key] {
			found++
		}
		for _, token := range []string{active, inactive} {
			if strings.Contains(key, token) || strings.Contains(value, token) {
				t.Errorf("Redis key %s or its value contains a token", key)
			}
		}
	})
	if found != len(want) {
		t.Errorf("found %d of the %d keys of the tokens checked", found, len(want))
	}
}

func TestIntrospectRedisDown(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	rs := testutil.StartRedis(t)
	cfg := introspectionConfig(t, srv)
	// Longer than the default, lest a Redis slowed by a busy machine send
	// checks to the provider; short enough to bound a check when Redis
	// is stuck.
	cfg.Cache.Redis = &authz.Redis{Addrs: []string{rs.Addr}, Timeout: 250 * time.Millisecond}
	first, second := newIntrospector(t, cfg), newIntrospector(t, cfg)
	ctx := context.Background()
	verify := func(in *authz.Introspector, token string) {
		t.Helper()
		if _, err := in.Verify(ctx, token); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	token := func() string {
		tok := newToken(t)
		srv.Register(tok, activeResponse())
		return tok
	}
	calls := func(want int) {
		t.Helper()
		if n := srv.Calls(); n != want {
			t.Fatalf("provider calls = %d, want %d", n, want)
		}
	}

	a := token()
	verify(first, a)
	verify(second, a)
	calls(1)

	// Down: checks go to the provider.
	rs.Stop()
	b := token()
	verify(first, b)
	verify(second, b)
	calls(3)
	verify(first, b) // the memory caches still work
	verify(second, a)
	calls(3)
	if s := first.Stats(); s.RedisErrors == 0 {
		t.Errorf("Stats = %+v, want Redis errors counted", s)
	}

	// Back, empty: the clients reconnect by themselves and share again.
	rs.Start()
	c := token()
	verify(first, c)
	verify(second, c)
	calls(4)

	// Stuck: every Redis call gives up after its timeout.
	rs.Pause()
	defer rs.Resume()
	// Redis stays stuck until the test ends: only its timeout lets the
	// check go on to the provider.
	d := token()
	errc := make(chan error, 1)
	go func() {
		_, err := first.Verify(ctx, d)
		errc <- err
	}()
	if err := testutil.Recv(t, errc, testutil.WaitTimeout, "Verify with Redis stuck to give up on Redis and ask the provider"); err != nil {
		t.Fatalf("Verify with Redis stuck: %v", err)
	}
	calls(5)
}

func hexKey(token string) string {
	k := authz.TokenKey(token)
	return hex.EncodeToString(k[:])
}

// redisKeyOf returns the Redis key of the answer about token that an
// Introspector asking srv caches, as RedisKeyPrefix documents it.
func redisKeyOf(srv *testutil.IntrospectionServer, token string) string {
	return authz.RedisKeyPrefix + namespaceOf(srv) + ":" + hexKey(token)
}

func TestRedisCacheTakesOnlyItsOwnRecords(t *testing.T) {
	client := redisClient(t, testutil.Redis(t))
	ctx := context.Background()
	secret := []byte("the key of the provider's client")
	c := authz.NewRedisCache(client, "test", secret, 2*time.Second)
	entry := authz.CachedToken{
		Claims: &authz.Claims{ClientID: "admin-svc", Scopes: []string{"orders:admin"}},
		Until:  time.UnixMilli(time.Now().Add(time.Minute).UnixMilli()),
	}
	rawKey := func(key [32]byte) string { return authz.RedisKeyPrefix + "test:" + hex.EncodeToString(key[:]) }
	tests := []struct {
		name string
		// read returns the cache and the key to read back the entry that
		// c stored under key, after doing to Redis what the row says.
		read func(t *testing.T, key [32]byte) (authz.TokenCache, [32]byte)
		hit  bool
	}{
		{"its own record", func(t *testing.T, key [32]byte) (authz.TokenCache, [32]byte) {
			return c, key
		}, true},
		{"another provider's namespace", func(t *testing.T, key [32]byte) (authz.TokenCache, [32]byte) {
			return authz.NewRedisCache(client, "other", secret, 2*time.Second), key
		}, false},
		{"another client secret", func(t *testing.T, key [32]byte) (authz.TokenCache, [32]byte) {
			return authz.NewRedisCache(client, "test", []byte("a guess"), 2*time.Second), key
		}, false},
		{"a record moved to another token's key", func(t *testing.T, key [32]byte) (authz.TokenCache, [32]byte) {
			other := authz.TokenKey(newToken(t))
			v, err := client.Get(ctx, rawKey(key)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if err := client.Set(ctx, rawKey(other), v, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			return c, other
		}, false},
		{"a record tampered with", func(t *testing.T, key [32]byte) (authz.TokenCache, [32]byte) {
			v, err := client.Get(ctx, rawKey(key)).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			v[len(v)/2] ^= 1
			if err := client.Set(ctx, rawKey(key), v, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			return c, key
		}, false},
		{"a record of another release, under the same secret", func(t *testing.T, key [32]byte) (authz.TokenCache, [32]byte) {
			v, err := client.Get(ctx, rawKey(key)).Result()
			if err != nil {
				t.Fatal(err)
			}
			rec := "\x01" + v[1:len(v)-sha256.Size] // the release before cnf
			if err := client.Set(ctx, rawKey(key), authz.RecordMAC(secret, []byte(rec), rawKey(key), rec), time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			return c, key
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := authz.TokenKey(newToken(t))
			if err := c.Set(ctx, key, entry); err != nil {
				t.Fatalf("Set: %v", err)
			}
			r, k := tt.read(t, key)
			got, ok, err := r.Get(ctx, k)
			// A record that is not c's is a miss, not a failure of Redis.
			if ok != tt.hit || err != nil {
				t.Fatalf("Get = ok %v, err %v; want ok %v and no error", ok, err, tt.hit)
			}
			if ok && !reflect.DeepEqual(got, entry) {
				t.Errorf("Get:\n got %+v\nwant %+v", got, entry)
			}
		})
	}
}

func TestIntrospectorsShareRedisOnlyWithTheSameProvider(t *testing.T) {
	addr := testutil.Redis(t)
	staging, production := testutil.NewIntrospectionServer(t), testutil.NewIntrospectionServer(t)
	tests := []struct {
		name   string
		second *testutil.IntrospectionServer
		shared bool
	}{
		{"the same provider", staging, true},
		// Both have the same client_id and secret: the endpoint alone
		// tells them apart.
		{"staging and production", production, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withRedis := func(srv *testutil.IntrospectionServer) authz.Introspection {
				cfg := introspectionConfig(t, srv)
				cfg.Cache.Redis = &authz.Redis{Addrs: []string{addr}, Timeout: 2 * time.Second}
				return cfg
			}
			first, second := newIntrospector(t, withRedis(staging)), newIntrospector(t, withRedis(tt.second))
			// Admin in staging, unknown in production.
			token := newToken(t)
			staging.Register(token, activeResponse())
			ctx := context.Background()
			if _, err := first.Verify(ctx, token); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			_, err := second.Verify(ctx, token)
			s := second.Stats()
			if tt.shared {
				if err != nil || s.L2Hits != 1 || s.Calls != 0 {
					t.Errorf("second Verify = %v with Stats %+v; want the answer from Redis", err, s)
				}
				return
			}
			wantReason(t, err, authz.ReasonInactive, false)
			if s.L2Hits != 0 || s.Calls != 1 {
				t.Errorf("second Stats = %+v; want no Redis hit and a call to its own provider", s)
			}
		})
	}
}

func TestIntrospectRedisAnswerCannotBeMovedToAnotherToken(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	addr := testutil.Redis(t)
	cfg.Cache.Redis = &authz.Redis{Addrs: []string{addr}, Timeout: 2 * time.Second}
	ctx := context.Background()
	admin, garbage := newToken(t), newToken(t)
	srv.Register(admin, activeResponse())
	if _, err := newIntrospector(t, cfg).Verify(ctx, admin); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// One who can write to Redis, but does not hold the client secret,
	// copies the admin's answer to the key of a token of their own.
	client := redisClient(t, addr)
	v, err := client.Get(ctx, redisKeyOf(srv, admin)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Set(ctx, redisKeyOf(srv, garbage), v, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	in := newIntrospector(t, cfg)
	_, err = in.Verify(ctx, garbage)
	wantReason(t, err, authz.ReasonInactive, false)
	// Refused as a miss, as a record of an instance on another client
	// secret is: Redis itself did not fail.
	if s := in.Stats(); s.L2Hits != 0 || s.L2Misses != 1 || s.RedisErrors != 0 || s.Calls != 1 {
		t.Errorf("Stats = %+v, want the record refused as a Redis miss and the provider asked", s)
	}
}

// redisClient returns a client of its own for the test to look into Redis
// at addrs.
func redisClient(t *testing.T, addrs ...string) redis.UniversalClient {
	t.Helper()
	c, err := (&authz.Redis{Addrs: addrs, Timeout: 5 * time.Second}).NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// scanRedis calls fn with every scopegate token key of every master of
// client and its value, one call at a time.
func scanRedis(t *testing.T, client redis.UniversalClient, fn func(key, value string)) {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, authz.RedisKeyPrefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			v, err := c.Get(ctx, it.Val()).Result()
			if err == redis.Nil {
				continue // expired since the scan saw it
			}
			if err != nil {
				return err
			}
			mu.Lock()
			fn(it.Val(), v)
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	switch c := client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		t.Fatalf("unexpected Redis client %T", client)
	}
	if err != nil {
		t.Fatalf("scanning Redis: %v", err)
	}
}

func TestMemoryCacheMissesStaleEntries(t *testing.T) {
	c := authz.NewMemoryCache(0)
	ctx := context.Background()
	for _, until := range []time.Time{{}, time.Now().Add(-time.Second)} {
		key := authz.TokenKey(newToken(t))
		if err := c.Set(ctx, key, authz.CachedToken{Claims: &authz.Claims{}, Until: until}); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := c.Get(ctx, key); ok || err != nil {
			t.Errorf("Get of an entry stored stale, fresh until %v = %+v, %v, %v; want a miss", until, got, ok, err)
		}
	}
}

func TestMemoryCacheKeepsFarUntil(t *testing.T) {
	c := authz.NewMemoryCache(0)
	ctx := context.Background()
	claims := &authz.Claims{Subject: "svc"}
	// Unix nanoseconds end in 2262: an answer fresh until later stays
	// fresh.
	key := authz.TokenKey(newToken(t))
	if err := c.Set(ctx, key, authz.CachedToken{Claims: claims, Until: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.Get(ctx, key); !ok || err != nil || got.Claims != claims || got.Until.Year() < 2262 {
		t.Errorf("Get of an entry fresh until the year 3000 = %+v, %v, %v; want it, fresh until 2262 at least", got, ok, err)
	}
}
