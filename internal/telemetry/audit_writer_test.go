package telemetry_test

import (
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/telemetry"
	"github.com/scopegate/scopegate/internal/testutil"
)

// blockedPipe returns the write end of a pipe that nobody reads: once its
// buffer is full, every write to it blocks.
func blockedPipe(t *testing.T) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// Closing the read end last fails the write that blocks with EPIPE,
	// which ends the writer goroutine.
	t.Cleanup(func() { r.Close(); w.Close() })
	return w
}

func TestBufferedAuditNeverWaitsForABlockedOutput(t *testing.T) {
	var log testutil.SyncBuffer
	a := telemetry.NewBufferedAudit(blockedPipe(t), 1, time.Millisecond, slog.New(slog.NewTextHandler(&log, nil)))
	m := telemetry.NewMetrics()
	m.CollectAuditDropped(a.Dropped)

	// 8,000 lines of more than 1 KiB: several times what the pipe and
	// the queue hold.
	const writers, each = 8, 1000
	r := request()
	r.RequestID = strings.Repeat("r", 1024)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				for range each {
					m.ObserveCheck(&authz.Decision{Status: 403, Reason: authz.ReasonNoRoute}, 0)
					a.Record(r, &authz.Decision{Status: 403, Reason: authz.ReasonNoRoute}, 0)
				}
			})
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("checks still wait for an audit output that takes no lines, after 30s")
	}
	took := time.Since(start)

	dropped := a.Dropped()
	if dropped == 0 || dropped >= writers*each {
		t.Fatalf("%d of %d lines dropped, want some but not all: the pipe and the queue take some", dropped, writers*each)
	}
	if got, ok := value(scrape(t, m), "scopegate_audit_dropped_lines_total"); !ok || got != float64(dropped) {
		t.Errorf("scopegate_audit_dropped_lines_total = %v (present: %v), want %d", got, ok, dropped)
	}
	waitFor(t, "the log line that says lines were dropped", func() bool { return strings.Contains(log.String(), "lines dropped") })
	// At most one report every 10 seconds.
	if n, most := strings.Count(log.String(), "lines dropped"), 1+int(took/(10*time.Second)); n > most {
		t.Errorf("%d reports of dropped lines in %v, want at most %d:\n%s", n, took, most, log.String())
	}

	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case err := <-closed:
		if err == nil || !strings.Contains(err.Error(), "dropped") {
			t.Errorf("Close of an audit log whose output takes nothing: %v, want an error saying lines were dropped", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close still waits for an audit output that takes no lines, after 30s")
	}
	if a.Dropped() <= dropped {
		t.Errorf("%d lines dropped after Close, want more than the %d before: the lines that waited", a.Dropped(), dropped)
	}
	if !strings.Contains(log.String(), "took no more lines") {
		t.Errorf("the log does not say that Close gave up on the output:\n%s", log.String())
	}

	// Once closed, lines are dropped at once.
	before := a.Dropped()
	a.Record(r, &authz.Decision{Status: 403}, 0)
	if a.Dropped() != before+1 {
		t.Errorf("a line recorded after Close was not dropped")
	}
}

func TestBufferedAuditDropsNothingWhileTheOutputKeepsUp(t *testing.T) {
	var w lineWriter
	a := telemetry.NewBufferedAudit(&w, 1, time.Millisecond, nil)
	n := recordConcurrently(t, a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(requestIDs(t, w.written())); got != n || a.Dropped() != 0 {
		t.Fatalf("%d of %d lines written, %d dropped; want all written", got, n, a.Dropped())
	}
}

func TestAuditClipsFieldsAfterEscaping(t *testing.T) {
	nul := strings.Repeat("\x00", 5000)
	r := &authz.Request{Method: nul, Host: nul, RequestID: nul, Peer: nul}
	var b testutil.SyncBuffer
	telemetry.NewAudit(&b, 1).Record(r, &authz.Decision{Status: 400, Reason: authz.ReasonBadRequest, Path: nul}, 0)
	line := b.String()
	for _, k := range []string{"method", "host", "path", "request_id", "source"} {
		i := strings.Index(line, `"`+k+`":"`)
		if i < 0 {
			t.Fatalf("no %s in %s", k, line)
		}
		v, _, _ := strings.Cut(line[i+len(k)+4:], `"`)
		// 170 escapes of six bytes: the 171st would pass 1,024.
		if want := strings.Repeat(`\u0000`, 170); v != want {
			t.Errorf("%s written as %d bytes (%.30s...), want the %d of 170 whole escapes", k, len(v), v, len(want))
		}
	}
	if len(line) > 5*1024+1024 {
		t.Errorf("a line of %d bytes, want the request's fields to add at most 1 KiB each", len(line))
	}
}
