package telemetry_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/telemetry"
)

// requestIDs returns the request_id of each line of each write, in order,
// and fails unless each write is whole JSON lines.
func requestIDs(t *testing.T, writes []string) []string {
	t.Helper()
	var ids []string
	for _, w := range writes {
		if !strings.HasSuffix(w, "\n") {
			t.Fatalf("a write does not end a line: %q", w)
		}
		for l := range strings.Lines(w) {
			var line struct {
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("not a JSON line: %v: %q", err, l)
			}
			ids = append(ids, line.RequestID)
		}
	}
	return ids
}

func (w *lineWriter) written() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

func TestBufferedAuditWritesWholeLinesInOrder(t *testing.T) {
	var w lineWriter
	a := telemetry.NewBufferedAudit(&w, 1, time.Hour, nil)
	deny := &authz.Decision{Status: 403, Reason: authz.ReasonNoRoute}
	var want []string
	record := func(d *authz.Decision) {
		r := request()
		r.RequestID = strconv.Itoa(len(want))
		want = append(want, r.RequestID)
		a.Record(r, d, 0)
	}

	record(deny)
	if got := w.written(); len(got) != 0 {
		t.Fatalf("a line was written at once: %q", got)
	}
	for range 100 {
		record(deny)
	}
	waitFor(t, "a write of the lines that outgrew a write, an hour before the flush", func() bool { return len(w.written()) > 0 })
	// A line longer than the buffer goes alone, after those before it.
	record(&authz.Decision{Status: 403, Description: strings.Repeat("d", 5000)})
	record(deny)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got := w.written()
	for _, s := range got {
		if len(s) > 4096 && strings.Count(s, "\n") > 1 {
			t.Errorf("a write of %d bytes and %d lines, want at most 4096 bytes or one line", len(s), strings.Count(s, "\n"))
		}
	}
	if ids := requestIDs(t, got); strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("lines of requests %v, want %v", ids, want)
	}

	// Once closed, it drops lines, and counts them.
	n := len(got)
	record(deny)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.written(); len(got) != n {
		t.Fatalf("%d writes after Close, want none", len(got)-n)
	}
	if got := a.Dropped(); got != 1 {
		t.Fatalf("%d lines dropped, want the one recorded after Close", got)
	}
}

// waitFor waits, at most 10 seconds, until cond holds, and fails saying
// what it waited for if it does not.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

func TestBufferedAuditWritesWaitingLinesSoon(t *testing.T) {
	var w lineWriter
	a := telemetry.NewBufferedAudit(&w, 1, time.Millisecond, nil)
	defer a.Close()
	// Twice: the second line waits on a timer that the first one used.
	for i := 1; i <= 2; i++ {
		a.Record(request(), &authz.Decision{Status: 403}, 0)
		waitFor(t, fmt.Sprintf("line %d to be written", i), func() bool { return len(w.written()) >= i })
	}
}

func TestNilAuditCloses(t *testing.T) {
	var a *telemetry.Audit
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBufferedAuditWritesALineAtATime(t *testing.T) {
	var w lineWriter
	// Lines are written by the Records that fill the buffer and by the
	// timer, which must not overlap either.
	a := telemetry.NewBufferedAudit(&w, 1, time.Microsecond, nil)
	n := recordConcurrently(t, a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if w.overlapped.Load() {
		t.Error("two writes overlapped")
	}
	if got := len(requestIDs(t, w.written())); got != n {
		t.Fatalf("%d lines written, want %d", got, n)
	}
}
