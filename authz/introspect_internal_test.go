package authz

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	b := breaker{threshold: 3, minBackoff: time.Second, maxBackoff: 3 * time.Second}
	now := time.Unix(1000, 0)
	call := func(success bool) (allowed bool) {
		probe, ok := b.allow(now)
		if ok {
			b.record(probe, success, now)
		}
		return ok
	}
	for i := range 3 {
		if !call(false) {
			t.Fatalf("failure %d was not let through", i+1)
		}
	}
	if call(true) {
		t.Fatal("the breaker let a call through right after opening")
	}
	now = now.Add(999 * time.Millisecond)
	if call(true) {
		t.Fatal("the breaker let a call through before its back-off")
	}

	// One probe at a time: a second call while the probe is out waits.
	now = now.Add(time.Millisecond)
	probe, ok := b.allow(now)
	if !ok || !probe {
		t.Fatalf("allow after the back-off = probe %v, ok %v; want a probe", probe, ok)
	}
	if _, ok := b.allow(now); ok {
		t.Fatal("a second call went through while the probe was out")
	}
	b.record(true, false, now)

	// A failed probe doubles the back-off, up to its maximum.
	for _, backoff := range []time.Duration{2 * time.Second, 3 * time.Second, 3 * time.Second} {
		now = now.Add(backoff - time.Millisecond)
		if call(false) {
			t.Fatalf("a call went through %v into a back-off of %v", backoff-time.Millisecond, backoff)
		}
		now = now.Add(time.Millisecond)
		if !call(false) {
			t.Fatalf("no probe went through after a back-off of %v", backoff)
		}
	}

	now = now.Add(3 * time.Second)
	if !call(true) {
		t.Fatal("no probe went through")
	}
	for i := range 5 {
		if !call(i%2 == 0) {
			t.Fatal("the closed breaker refused a call")
		}
	}
}

func TestBreakerProbeNotMadeLetsAnotherThrough(t *testing.T) {
	b := breaker{threshold: 1, minBackoff: time.Second, maxBackoff: time.Second}
	now := time.Unix(1000, 0)
	b.record(false, false, now)
	now = now.Add(time.Second)
	probe, ok := b.allow(now)
	if !ok || !probe {
		t.Fatalf("allow after the back-off = probe %v, ok %v; want a probe", probe, ok)
	}
	// A probe refused by the rate limit, say: the breaker must not wait
	// for its outcome forever.
	b.cancel(probe)
	if probe, ok := b.allow(now); !ok || !probe {
		t.Fatalf("allow after a cancelled probe = probe %v, ok %v; want another probe", probe, ok)
	}
	// Cancelling a call of a closed breaker changes nothing.
	b.record(true, true, now)
	b.cancel(false)
	if probe, ok := b.allow(now); !ok || probe {
		t.Fatalf("allow of the closed breaker = probe %v, ok %v; want a plain call", probe, ok)
	}
}
