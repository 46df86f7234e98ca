package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is what one run measured. Its JSON form is what -json prints and
// what the suite compares.
type Result struct {
	// Scenario names the scenario of a suite's run; "" for a single run.
	Scenario    string  `json:"scenario,omitempty"`
	Addr        string  `json:"addr"`
	Concurrency int     `json:"concurrency"`
	Conns       int     `json:"conns"`
	Warmup      float64 `json:"warmup_s"`
	Seconds     float64 `json:"seconds"` // the measured window
	// Exhausted reports that a unique token pool ran out, which ended the
	// measured window early.
	Exhausted bool         `json:"tokens_exhausted,omitempty"`
	Stream                 // the closed-loop requests
	Flood     *FloodResult `json:"flood,omitempty"`
	Server    *Usage       `json:"server,omitempty"` // when the server's pid was given
	Harness   Usage        `json:"harness"`
}

// Stream is what one stream of requests got in the measured window.
type Stream struct {
	Requests int64   `json:"requests"` // answered or failed
	RPS      float64 `json:"rps"`
	Latency  Latency `json:"latency_us"`
	// Outcomes counts the answers by decision and reason, such as
	// "allow allowed" or "deny bad_signature".
	Outcomes map[string]int64 `json:"outcomes,omitempty"`
	// Errors counts failed calls by gRPC code and answers that were not
	// the decision expected.
	Errors map[string]int64 `json:"errors,omitempty"`
}

// FloodResult is what a flood got.
type FloodResult struct {
	Rate int `json:"rate"` // the rate asked for
	Stream
}

// Latency summarizes a latency distribution, in microseconds.
type Latency struct {
	P50  int64 `json:"p50"`
	P90  int64 `json:"p90"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p99_9"`
	Max  int64 `json:"max"`
}

// Usage is a process's use of the machine during the measured window.
type Usage struct {
	CPUSeconds float64 `json:"cpu_s"`
	// CPUPerCheck is CPU time per request answered, of every stream, in
	// microseconds: the steadiest figure on a busy machine.
	CPUPerCheck float64 `json:"cpu_us_per_check"`
	RSS         int64   `json:"rss_bytes,omitempty"`      // at the end of the window
	PeakRSS     int64   `json:"peak_rss_bytes,omitempty"` // over the process's life
}

// Errs returns the number of errors of every kind.
func (s *Stream) Errs() int64 {
	var n int64
	for _, c := range s.Errors {
		n += c
	}
	return n
}

// The range of the latency histograms, in microseconds, and their
// precision: three significant digits.
const (
	maxLatency    = int64(time.Minute / time.Microsecond)
	latencyDigits = 3
)

// outcome is a decision and its reason, as a tally key that costs no
// allocation to build.
type outcome struct {
	allow  bool
	reason string
}

func (o outcome) String() string {
	s := "deny"
	if o.allow {
		s = "allow"
	}
	if o.reason != "" {
		s += " " + o.reason
	}
	return s
}

// tally is one caller's count of its stream, merged with the others' at
// the end of the run so that callers share nothing while they run.
type tally struct {
	hist     *hdrhistogram.Histogram
	outcomes map[outcome]int64
	errors   map[string]int64
}

func newTally() *tally {
	return &tally{
		hist:     hdrhistogram.New(1, maxLatency, latencyDigits),
		outcomes: make(map[outcome]int64),
		errors:   make(map[string]int64),
	}
}

// record counts one call that took d.
func (t *tally) record(d time.Duration) {
	us := min(max(int64((d+time.Microsecond/2)/time.Microsecond), 1), maxLatency)
	t.hist.RecordValue(us) // us is in range
}

func (t *tally) merge(o *tally) {
	t.hist.Merge(o.hist)
	for k, n := range o.outcomes {
		t.outcomes[k] += n
	}
	for k, n := range o.errors {
		t.errors[k] += n
	}
}

// stream summarizes t over a window of seconds.
func (t *tally) stream(seconds float64) Stream {
	s := Stream{Requests: t.hist.TotalCount(), Latency: summarize(t.hist)}
	if seconds > 0 {
		s.RPS = float64(s.Requests) / seconds
	}
	if len(t.outcomes) > 0 {
		s.Outcomes = make(map[string]int64, len(t.outcomes))
		for o, n := range t.outcomes {
			s.Outcomes[o.String()] += n
		}
	}
	if len(t.errors) > 0 {
		s.Errors = maps.Clone(t.errors)
	}
	return s
}

// summarize returns the percentiles of h.
func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50:  h.ValueAtPercentile(50),
		P90:  h.ValueAtPercentile(90),
		P99:  h.ValueAtPercentile(99),
		P999: h.ValueAtPercentile(99.9),
		Max:  h.Max(),
	}
}

// WriteText writes r for a person to read.
func (r *Result) WriteText(w io.Writer) {
	if r.Scenario != "" {
		fmt.Fprintf(w, "scenario  %s\n", r.Scenario)
	}
	fmt.Fprintf(w, "target    %s, %d callers over %d connections, %.2fs measured after %.2fs warmup",
		r.Addr, r.Concurrency, r.Conns, r.Seconds, r.Warmup)
	if r.Exhausted {
		fmt.Fprint(w, " (ended when the unique tokens ran out)")
	}
	fmt.Fprintln(w)
	writeStream(w, "", &r.Stream)
	if f := r.Flood; f != nil {
		writeStream(w, fmt.Sprintf("flood     asked %d rps\n", f.Rate), &f.Stream)
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server    CPU %.1f µs/check (%.2fs), RSS %s (peak %s)\n",
			s.CPUPerCheck, s.CPUSeconds, mib(s.RSS), mib(s.PeakRSS))
	}
	fmt.Fprintf(w, "harness   CPU %.1f µs/check\n", r.Harness.CPUPerCheck)
}

func writeStream(w io.Writer, title string, s *Stream) {
	fmt.Fprint(w, title)
	fmt.Fprintf(w, "requests  %d (%.0f rps)\n", s.Requests, s.RPS)
	l := s.Latency
	fmt.Fprintf(w, "latency   p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		micros(l.P50), micros(l.P90), micros(l.P99), micros(l.P999), micros(l.Max))
	fmt.Fprintf(w, "outcomes  %s\n", counts(s.Outcomes))
	fmt.Fprintf(w, "errors    %s\n", counts(s.Errors))
}

// counts formats a tally as "kind n, kind n", largest first.
func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b))
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + strconv.FormatInt(m[k], 10)
	}
	return strings.Join(parts, ", ")
}

// micros formats a latency in microseconds with a unit that suits it.
func micros(us int64) string {
	if us < 10_000 {
		return strconv.FormatInt(us, 10) + "µs"
	}
	return strconv.FormatFloat(float64(us)/1000, 'f', 1, 64) + "ms"
}

// mib formats a size in bytes in MiB.
func mib(b int64) string {
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB"
}
