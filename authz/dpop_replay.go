package authz

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DPoPReplayKeyPrefix starts the Redis key of every DPoP proof's jti that
// scopegate records; the rest is the hex SHA-256 of the proof key's
// thumbprint and the jti, never the proof.
const DPoPReplayKeyPrefix = "scopegate:dpop:"

// errReplayFull is the refusal of a proof when the in-process replay
// store is full of unexpired jtis: forgetting one would let it be
// replayed.
var errReplayFull = errors.New("dpop replay: the in-process store is full")

// replayStore records the proofs seen, by replay key.
type replayStore interface {
	// firstUse records key for ttl and reports whether it was not
	// recorded already.
	firstUse(ctx context.Context, key [32]byte, ttl time.Duration, now time.Time) (bool, error)
}

// replayKey is the replay key of a proof: its jti is unique per key
// (RFC 9449 §11.1), and hashing keeps the stored keys short and opaque.
func replayKey(jkt, jti string) [32]byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(jkt)))])
	h.Write([]byte(jkt))
	h.Write([]byte(jti))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// redisReplay records proofs in Redis, shared by every instance, with
// SET NX and a TTL.
type redisReplay struct {
	client  redis.UniversalClient
	timeout time.Duration
}

func (r *redisReplay) firstUse(ctx context.Context, key [32]byte, ttl time.Duration, _ time.Time) (bool, error) {
	ctx, cancel := beforeDeadline(ctx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, r.timeout)
	defer cancel()
	first, err := r.client.SetNX(ctx, DPoPReplayKeyPrefix+hex.EncodeToString(key[:]), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("dpop replay: redis SET NX: %w", err)
	}
	return first, nil
}

// memoryReplay records proofs in this instance's memory, at most max at a
// time. Since every entry lives as long, they expire in the order they
// were added: the oldest are dropped from the front of a queue.
type memoryReplay struct {
	mu    sync.Mutex
	max   int
	seen  map[[32]byte]time.Time // key → expiry
	queue []replayEntry          // in the order added
	head  int                    // queue[head:] are live
}

type replayEntry struct {
	key    [32]byte
	expiry time.Time
}

func newMemoryReplay(max int) *memoryReplay {
	return &memoryReplay{max: max, seen: make(map[[32]byte]time.Time)}
}

func (m *memoryReplay) firstUse(_ context.Context, key [32]byte, ttl time.Duration, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(now)
	if exp, ok := m.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	if len(m.seen) >= m.max {
		return false, errReplayFull
	}
	exp := now.Add(ttl)
	m.seen[key] = exp
	m.queue = append(m.queue, replayEntry{key, exp})
	return true, nil
}

// expire drops the entries at the front of the queue that expired by now.
func (m *memoryReplay) expire(now time.Time) {
	for m.head < len(m.queue) && !now.Before(m.queue[m.head].expiry) {
		e := m.queue[m.head]
		if m.seen[e.key].Equal(e.expiry) {
			delete(m.seen, e.key)
		}
		m.queue[m.head] = replayEntry{}
		m.head++
	}
	// Reuse the queue's array once its dead front is half of it.
	if m.head > 0 && m.head >= len(m.queue)/2 {
		m.queue = append(m.queue[:0], m.queue[m.head:]...)
		m.head = 0
	}
}
