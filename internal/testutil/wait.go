package testutil

import (
	"sync"
	"testing"
	"time"
)

// WaitTimeout is a bound for the waits of tests on things that happen at
// once on an idle machine: long enough for a loaded one under -race, short
// enough that a test that would hang fails with a message instead.
const WaitTimeout = 30 * time.Second

// Recv returns the next value of ch, or the zero value once ch is closed,
// and fails the test, saying what it waited for, when neither happens
// within timeout.
func Recv[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("waited %v for %s", timeout, what)
		panic("unreachable")
	}
}

// Wait waits for wg, and fails the test, saying what it waited for, when
// wg is not done within timeout. The goroutines still running then are
// left to the end of the test binary.
func Wait(t testing.TB, wg *sync.WaitGroup, timeout time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	Recv(t, done, timeout, what)
}
