package authz

import (
	"context"
	"math"
	"time"

	"github.com/maypok86/otter/v2"
)

// TokenCache holds what a token provider said about tokens, keyed by
// TokenKey, so that a token is not sent to its provider on every request.
// It holds the provider's answers, never decisions, and the answers of one
// provider only: a token that one provider vouches for means nothing to
// another, so a store shared between providers keeps their keys apart, as
// RedisCache does with its namespace.
//
// Get and Set return an error only when the cache itself could not be used
// (a Redis server that cannot be reached). The caller treats a failed Get
// as a miss and a failed Set as done: a cache never decides a check.
type TokenCache interface {
	Get(ctx context.Context, key [32]byte) (t CachedToken, ok bool, err error)
	// Set stores t under key until t.Until.
	Set(ctx context.Context, key [32]byte, t CachedToken) error
}

// CachedToken is a provider's answer about one token, as a TokenCache
// holds it.
type CachedToken struct {
	// Claims are an active token's claims; nil records that the provider
	// said the token is not active. They are shared by every reader of the
	// cache: treat them as read-only.
	Claims *Claims
	// Until is when the answer goes stale and the provider must be asked
	// again.
	Until time.Time
}

// DefaultCacheEntries bounds a MemoryCache made with no explicit bound.
const DefaultCacheEntries = 100_000

// MemoryCache is the in-process TokenCache. It holds at most a fixed number
// of entries, evicting the least useful first, and drops each entry when it
// goes stale. It never fails and is safe for concurrent use.
type MemoryCache struct {
	c *otter.Cache[[32]byte, memoryEntry]
}

// memoryEntry is a CachedToken as a MemoryCache holds it: Until in Unix
// nanoseconds, 8 bytes where a time.Time takes 24, makes each node of the
// cache 96 bytes rather than 112, and a full cache holds 100,000 of them.
type memoryEntry struct {
	claims *Claims
	until  int64
}

// Bounds of the times that Unix nanoseconds can hold.
var (
	minUnixNano = time.Unix(0, math.MinInt64)
	maxUnixNano = time.Unix(0, math.MaxInt64)
)

// unixNano returns t in Unix nanoseconds, clamped to the times that they
// can hold, where time.Time.UnixNano wraps around.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minUnixNano):
		return math.MinInt64
	case t.After(maxUnixNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// NewMemoryCache returns a MemoryCache of at most maxEntries entries, or
// DefaultCacheEntries when maxEntries is not positive.
func NewMemoryCache(maxEntries int) *MemoryCache {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	return &MemoryCache{c: otter.Must(&otter.Options[[32]byte, memoryEntry]{
		MaximumSize: maxEntries,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[[32]byte, memoryEntry]) time.Duration {
			// For a duration that is not positive, otter keeps the entry's
			// deadline, and a new entry has none: an entry stale as it is
			// stored would stay until evicted.
			return max(time.Until(time.Unix(0, e.Value.until)), time.Nanosecond)
		}),
	})}
}

// Get returns the fresh entry for key, if any.
func (m *MemoryCache) Get(_ context.Context, key [32]byte) (CachedToken, bool, error) {
	e, ok := m.c.GetIfPresent(key)
	if !ok {
		return CachedToken{}, false, nil
	}
	return CachedToken{Claims: e.claims, Until: time.Unix(0, e.until)}, true, nil
}

// Set stores t under key until t.Until.
func (m *MemoryCache) Set(_ context.Context, key [32]byte, t CachedToken) error {
	m.c.Set(key, memoryEntry{claims: t.Claims, until: unixNano(t.Until)})
	return nil
}
