package authz

import (
	"sync"
	"time"
)

// breaker is a circuit breaker for one provider: closed, it lets every call
// through; after threshold consecutive failures it opens, letting none
// through until a back-off has passed; then it lets one probe through,
// which closes it or opens it again for twice as long.
type breaker struct {
	threshold              int
	minBackoff, maxBackoff time.Duration

	mu       sync.Mutex
	failures int           // consecutive
	backoff  time.Duration // of the current or last opening
	until    time.Time     // when the current opening ends
	probing  bool          // a probe is under way
}

// allow reports whether a call may go to the provider at now, and whether
// that call is the probe of an open breaker.
func (b *breaker) allow(now time.Time) (probe, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.failures < b.threshold:
		return false, true
	case b.probing || now.Before(b.until):
		return false, false
	}
	b.probing = true
	return true, true
}

// cancel notes that an allowed call was not made after all.
func (b *breaker) cancel(probe bool) {
	if probe {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.probing = false
	}
}

// record notes at now whether an allowed call succeeded.
func (b *breaker) record(probe, success bool, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	if success {
		b.failures, b.backoff = 0, 0
		return
	}
	b.failures++
	switch {
	case probe:
		b.backoff = min(2*b.backoff, b.maxBackoff)
		b.until = now.Add(b.backoff)
	case b.failures == b.threshold:
		b.backoff = b.minBackoff
		b.until = now.Add(b.backoff)
	}
}
