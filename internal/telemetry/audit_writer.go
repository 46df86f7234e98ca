package telemetry

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// maxQueued bounds the bytes of lines that a buffered Audit holds for its
// writer: a second or so of a busy listener's denies. A line that would
// go past it is dropped, so that a sink that stops taking lines costs the
// checks nothing but their lines.
const maxQueued = 1 << 20

// closeTimeout bounds how long Close waits for the sink to take the lines
// that wait: a sink that blocks must not hold up shutdown.
const closeTimeout = 2 * time.Second

// dropReportEvery is the least time between two log lines that say how
// many audit lines were dropped.
const dropReportEvery = 10 * time.Second

// lineQueue is a buffered Audit's lines on their way to w. Checks add
// lines to it and never wait for w: one goroutine, the writer, does the
// writes, which may block as long as w likes. When the lines waiting
// reach maxQueued, new ones are dropped and counted.
type lineQueue struct {
	w          io.Writer
	flushAfter time.Duration
	logger     *slog.Logger

	mu      sync.Mutex
	pending []byte // whole lines not yet taken by the writer
	lines   int    // lines in pending
	closed  bool   // lines are no longer taken

	spare []byte // the writer's: the buffer it wrote last, pending's next

	wake chan struct{} // a line came to an empty pending
	full chan struct{} // pending holds a write's worth
	quit chan struct{} // closed by close
	done chan struct{} // closed when the writer returns

	unwritten  atomic.Int64 // lines taken by the writer and not yet written
	abandoned  atomic.Bool  // close gave up on w: the writer writes no more
	dropped    atomic.Uint64
	reported   atomic.Uint64 // dropped as of the last report
	lastReport atomic.Int64  // when the last report was, in Unix nanoseconds
	reporting  atomic.Bool   // a report is being logged
}

func newLineQueue(w io.Writer, flushAfter time.Duration, logger *slog.Logger) *lineQueue {
	if logger == nil {
		logger = slog.Default()
	}
	q := &lineQueue{
		w: w, flushAfter: flushAfter, logger: logger,
		pending: make([]byte, 0, 2*pipeBuf), spare: make([]byte, 0, 2*pipeBuf),
		wake: make(chan struct{}, 1), full: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	go q.run()
	return q
}

// add queues line, or drops it when the queue is full or closed. It never
// waits for w.
func (q *lineQueue) add(line []byte, now time.Time) {
	q.mu.Lock()
	if q.closed || len(q.pending)+len(line) > maxQueued {
		q.mu.Unlock()
		q.drop(1, now)
		return
	}
	wasEmpty := len(q.pending) == 0
	q.pending = append(q.pending, line...)
	q.lines++
	n := len(q.pending)
	q.mu.Unlock()
	if wasEmpty {
		signal(q.wake)
	}
	if n >= pipeBuf && n-len(line) < pipeBuf {
		signal(q.full)
	}
}

// signal notes an event on c, which holds one, without waiting.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run is the writer: it writes the lines as they come, those that make
// less than a write after they waited flushAfter for others, until close.
func (q *lineQueue) run() {
	defer close(q.done)
	t := time.NewTimer(q.flushAfter)
	t.Stop()
	for {
		select {
		case <-q.wake:
		case <-q.quit:
			q.writeQueued()
			return
		}
		t.Reset(q.flushAfter)
		select {
		case <-t.C:
		case <-q.full:
		case <-q.quit:
		}
		t.Stop()
		q.writeQueued()
	}
}

// writeQueued writes the lines that wait, if any.
func (q *lineQueue) writeQueued() {
	q.mu.Lock()
	out, lines := q.pending, q.lines
	q.pending, q.lines = q.spare[:0], 0
	q.unwritten.Store(int64(lines))
	q.mu.Unlock()
	q.writeLines(out)
	q.spare = out
}

// writeLines writes out, whole lines, in writes of at most pipeBuf bytes
// but for a longer line, which is written alone. As with slog, a failed
// write is not the checks' concern: its lines are counted as dropped.
func (q *lineQueue) writeLines(out []byte) {
	for len(out) > 0 && !q.abandoned.Load() {
		n := len(out)
		if n > pipeBuf {
			if n = bytes.LastIndexByte(out[:pipeBuf], '\n') + 1; n == 0 {
				n = bytes.IndexByte(out, '\n') + 1
			}
		}
		lines := bytes.Count(out[:n], []byte{'\n'})
		_, err := q.w.Write(out[:n])
		out = out[n:]
		if q.abandoned.Load() {
			// close counted these lines as dropped.
			return
		}
		q.unwritten.Add(-int64(lines))
		if err != nil {
			q.drop(lines, time.Now())
		}
	}
}

// drop counts n dropped lines and, at most every dropReportEvery, logs how
// many were dropped since it last did: from a goroutine of its own, so
// that a logger that writes to the same blocked pipe as the audit log
// does not block the check that dropped a line.
func (q *lineQueue) drop(n int, now time.Time) {
	q.dropped.Add(uint64(n))
	if q.reporting.Load() {
		return
	}
	last := q.lastReport.Load()
	if now.UnixNano()-last < int64(dropReportEvery) || !q.lastReport.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	q.reporting.Store(true)
	go func() {
		defer q.reporting.Store(false)
		q.report()
	}()
}

// report logs how many lines were dropped since the last report.
func (q *lineQueue) report() {
	total := q.dropped.Load()
	if n := total - q.reported.Swap(total); n > 0 {
		q.logger.Warn("audit log: lines dropped: its output does not take them as fast as checks are decided, or fails",
			"dropped", n, "dropped_total", total)
	}
}

// close stops taking lines and waits, at most closeTimeout, for the writer
// to write those that wait; past that, it drops them and says so.
func (q *lineQueue) close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	close(q.quit)
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case <-q.done:
		q.report()
		return nil
	case <-t.C:
	}
	q.abandoned.Store(true)
	q.mu.Lock()
	lost := q.lines + int(q.unwritten.Load())
	q.mu.Unlock()
	q.dropped.Add(uint64(lost))
	q.report()
	err := fmt.Errorf("audit log: its output took no more lines for %v: the last %d are dropped", closeTimeout, lost)
	q.logger.Error(err.Error())
	return err
}
