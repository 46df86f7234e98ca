package testutil

import (
	"net/http"
	"sync"
)

// HeldTransport is an http.RoundTripper that holds every request until
// Release, so that a test knows a request is under way, and for how long,
// without racing a timer. Once released, requests go on through Base, or
// http.DefaultTransport when it is nil; a request whose context ended
// while it was held fails with the context's error, as one to a slow
// server does.
type HeldTransport struct {
	Base http.RoundTripper

	init     sync.Once
	arrived  chan struct{}
	released chan struct{}
	release  sync.Once
}

func (h *HeldTransport) start() {
	h.init.Do(func() {
		h.arrived = make(chan struct{}, 1)
		h.released = make(chan struct{})
	})
}

// RoundTrip holds r until Release or the end of r's context.
func (h *HeldTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h.start()
	select {
	case h.arrived <- struct{}{}:
	default:
	}
	select {
	case <-h.released:
	case <-r.Context().Done():
	}
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	base := h.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// Arrived receives when a request has arrived since the last receive.
func (h *HeldTransport) Arrived() <-chan struct{} {
	h.start()
	return h.arrived
}

// Release lets the held requests, and every later one, go on.
func (h *HeldTransport) Release() {
	h.start()
	h.release.Do(func() { close(h.released) })
}
