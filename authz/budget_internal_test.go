package authz

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestPeerOf(t *testing.T) {
	tests := []struct{ peer, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.1:5000", "192.0.2.1"},
		{"[2001:db8::1]:5000", "2001:db8::"},
		{"2001:db8::1", "2001:db8::"},
		{"2001:db8:0:0:1:2:3:4:5000", "2001:db8::"}, // Envoy's IPv6 address and port, no brackets
		{"2001:db8:0:1::9:443", "2001:db8:0:1::"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"fe80::1%eth0", "fe80::"},
		{"", "invalid IP"},
		{"unix:/run/envoy.sock", "invalid IP"},
		{"example.com:80", "invalid IP"},
	}
	for _, tt := range tests {
		if got := peerOf(tt.peer).String(); got != tt.want {
			t.Errorf("peerOf(%q) = %s, want %s", tt.peer, got, tt.want)
		}
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestBudgetKeepsTheReserveForKnownPeers(t *testing.T) {
	b := newBudget(10, 5, 2, time.Minute)
	now := time.Unix(1000, 0)
	known, stranger := addr("192.0.2.1"), addr("198.51.100.1")
	b.vouch(known, now)
	// A flood from many strangers spends the open share and no more.
	allowed := 0
	for i := range 100 {
		if b.allow(addr(fmt.Sprintf("203.0.113.%d", i)), now) {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("strangers got %d requests, want the open share of 5", allowed)
	}
	if b.allow(stranger, now) {
		t.Error("a new stranger got a request past the open share")
	}
	for i := range 5 {
		if !b.allow(known, now) {
			t.Fatalf("the known peer was refused its request %d of the reserve", i+1)
		}
	}
	if b.allow(known, now) {
		t.Error("the known peer got more than the whole budget")
	}
	// A second refills the shares.
	now = now.Add(time.Second)
	if !b.allow(stranger, now) {
		t.Error("a stranger was refused once the open share refilled")
	}
	// Past the window, the known peer is a stranger again.
	now = now.Add(time.Minute)
	for range 2 {
		b.allow(known, now)
	}
	if b.allow(known, now) {
		t.Error("a peer whose valid token is older than the window was not limited as a stranger")
	}
}

func TestBudgetLimitsEachStranger(t *testing.T) {
	b := newBudget(100, 50, 3, time.Minute)
	now := time.Unix(1000, 0)
	flood, newcomer := addr("203.0.113.1"), addr("192.0.2.7")
	allowed := 0
	for range 100 {
		if b.allow(flood, now) {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("one stranger got %d requests, want max_rate_per_peer's 3", allowed)
	}
	if !b.allow(newcomer, now) {
		t.Error("a flood from one address locked out a newcomer")
	}
	// Checks of unknown source are held to the open share only.
	unknown := 0
	for range 100 {
		if b.allow(netip.Addr{}, now) {
			unknown++
		}
	}
	if unknown != 50-3-1 {
		t.Errorf("checks of unknown source got %d requests, want the rest of the open share, 46", unknown)
	}
	// Once vouched for, a peer is not limited as a stranger.
	b.vouch(flood, now)
	if !b.allow(flood, now) {
		t.Error("a peer that presented a valid token is still limited as a stranger")
	}
}

func TestBudgetBoundsItsPeers(t *testing.T) {
	b := newBudget(100, 50, 1, time.Minute)
	now := time.Unix(1000, 0)
	for i := range 2 * maxBudgetPeers {
		p := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		b.allow(p, now)
		b.vouch(p, now)
	}
	if len(b.strangers) > maxBudgetPeers || len(b.known) > maxBudgetPeers {
		t.Errorf("the budget holds %d strangers and %d known peers, more than %d", len(b.strangers), len(b.known), maxBudgetPeers)
	}
}
