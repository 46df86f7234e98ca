package authz

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// PeerVerifier is a Verifier that tells the sources of checks apart, so
// that one source cannot spend for everyone what the Verifier rations, such
// as the requests an Introspector may send. Authorizer.Check passes it the
// request's Peer; Verify is VerifyFrom with an unknown peer.
type PeerVerifier interface {
	Verifier
	VerifyFrom(ctx context.Context, token, peer string) (*Claims, error)
}

// verifyFrom verifies token with v, from peer when v tells peers apart.
func verifyFrom(ctx context.Context, v Verifier, token, peer string) (*Claims, error) {
	if pv, ok := v.(PeerVerifier); ok {
		return pv.VerifyFrom(ctx, token, peer)
	}
	return v.Verify(ctx, token)
}

// The introspection budget's memory of peers.
const (
	// knownPeerWindow is how long a peer that presented a valid token
	// keeps its share of the reserve, at least: twice max_ttl when that is
	// longer, since a token that is used all along is introspected again
	// only once its cached answer expires.
	knownPeerWindow = 10 * time.Minute
	// maxBudgetPeers bounds each of the budget's maps of peers.
	maxBudgetPeers = 10_000
)

// budget rations the requests an Introspector sends, MaxRate a second in
// all. Peers that presented a valid token within window (known peers) may
// spend the whole rate, the reserved share first. Every other peer
// (strangers, such as whoever sends random bearer strings) may spend only
// the rest, open, and each of them at most peerRate a second: a flood of
// junk from a few addresses cannot lock out a client that arrives with a
// new valid token, and however many addresses it comes from, it cannot
// take the reserve from the clients that already hold valid tokens. Each
// share is a token bucket whose burst is its rate a second.
type budget struct {
	open, reserved, peer float64 // rates, requests per second
	window               time.Duration

	mu        sync.Mutex
	openB     bucket
	reservedB bucket
	known     map[netip.Addr]time.Time // peer → when it last presented a valid token
	strangers map[netip.Addr]*bucket
}

func newBudget(maxRate, reserved, perPeer int, window time.Duration) *budget {
	return &budget{
		open: float64(maxRate - reserved), reserved: float64(reserved), peer: float64(perPeer),
		window:    window,
		known:     make(map[netip.Addr]time.Time),
		strangers: make(map[netip.Addr]*bucket),
	}
}

// allow reports whether a request for a check from peer may be sent at
// now, and spends it if so.
func (b *budget) allow(peer netip.Addr, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.openB.fill(now, b.open)
	if last, ok := b.known[peer]; ok {
		if now.Sub(last) < b.window {
			b.reservedB.fill(now, b.reserved)
			return b.reservedB.take() || b.openB.take()
		}
		delete(b.known, peer)
	}
	if !peer.IsValid() {
		// Checks whose source is unknown cannot be told apart: a limit
		// per peer would hold them all to one peer's share.
		return b.openB.take()
	}
	s := b.strangers[peer]
	if s == nil {
		evictOne(b.strangers)
		s = &bucket{}
		b.strangers[peer] = s
	}
	s.fill(now, b.peer)
	if s.tokens < 1 || b.openB.tokens < 1 {
		return false
	}
	s.take()
	b.openB.take()
	return true
}

// vouch notes that peer presented a valid token at now.
func (b *budget) vouch(peer netip.Addr, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.known[peer]; !ok {
		evictOne(b.known)
		delete(b.strangers, peer)
	}
	b.known[peer] = now
}

// evictOne makes room in m for one more peer, when it is full, by dropping
// one picked at random: simpler than a least-recently-used list, and as
// good against a flood from more addresses than m holds.
func evictOne[V any](m map[netip.Addr]V) {
	if len(m) < maxBudgetPeers {
		return
	}
	for k := range m {
		delete(m, k)
		return
	}
}

// bucket is a token bucket, filled at a rate given at each use; the zero
// bucket is full.
type bucket struct {
	tokens float64
	at     time.Time // of the last fill; zero before the first
}

// fill adds what rate has added since the last fill, up to a burst of one
// second's worth.
func (k *bucket) fill(now time.Time, rate float64) {
	switch d := now.Sub(k.at); {
	case k.at.IsZero():
		k.tokens, k.at = rate, now
	case d > 0:
		k.tokens, k.at = min(rate, k.tokens+d.Seconds()*rate), now
	}
}

// take spends one token, if there is one.
func (k *bucket) take() bool {
	if k.tokens < 1 {
		return false
	}
	k.tokens--
	return true
}

// peerOf returns the address under which the budget counts the checks from
// peer, a request's source address with or without a port, as the adapters
// fill Request.Peer ("192.0.2.1:5000", "[2001:db8::1]:5000"), or an
// address alone. An IPv6 address counts
// as its /64, the block one host usually holds. A peer that is no address
// counts as the zero Addr, one peer for all of them, which the budget
// does not limit as one stranger.
func peerOf(peer string) netip.Addr {
	a, err := netip.ParseAddr(peer)
	if err != nil {
		if ap, err := netip.ParseAddrPort(peer); err == nil {
			a = ap.Addr()
		} else if i := strings.LastIndexByte(peer, ':'); i < 0 {
			return netip.Addr{}
		} else if a, err = netip.ParseAddr(peer[:i]); err != nil {
			return netip.Addr{}
		}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
