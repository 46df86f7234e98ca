package main

import (
	"google.golang.org/protobuf/proto"

	"bytes"
	"strings"
	"testing"
	"time"
)

func TestTallyPercentiles(t *testing.T) {
	a, b := newTally(), newTally()
	// 1 to 1000 µs, one of each, split between two callers.
	for us := 1; us <= 1000; us++ {
		tl := a
		if us%2 == 0 {
			tl = b
		}
		tl.record(time.Duration(us) * time.Microsecond)
		tl.outcomes[outcome{allow: true, reason: "allowed"}]++
	}
	b.errors["grpc Unavailable"] = 2
	a.merge(b)
	s := a.stream(2)
	if s.Requests != 1000 || s.RPS != 500 {
		t.Errorf("requests %d, rps %v; want 1000, 500", s.Requests, s.RPS)
	}
	// Three significant digits: each value is within 0.1 % of the exact
	// percentile.
	for _, c := range []struct {
		name      string
		got, want int64
	}{{"p50", s.Latency.P50, 500}, {"p90", s.Latency.P90, 900}, {"p99", s.Latency.P99, 990}, {"p99.9", s.Latency.P999, 999}, {"max", s.Latency.Max, 1000}} {
		if c.got < c.want || float64(c.got) > float64(c.want)*1.001 {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if s.Outcomes["allow allowed"] != 1000 || s.Errs() != 2 {
		t.Errorf("outcomes %v, errors %v", s.Outcomes, s.Errors)
	}
}

func TestTallyClampsLatency(t *testing.T) {
	tl := newTally()
	tl.record(0)
	tl.record(time.Hour)
	s := tl.stream(1)
	if s.Requests != 2 || s.Latency.P50 != 1 || s.Latency.Max < maxLatency {
		t.Errorf("%+v", s)
	}
}

func TestEmptyTally(t *testing.T) {
	s := newTally().stream(0)
	if s.Requests != 0 || s.RPS != 0 || s.Latency != (Latency{}) || s.Outcomes != nil || s.Errors != nil {
		t.Errorf("%+v", s)
	}
}

func TestJudge(t *testing.T) {
	tl := newTally()
	resp, err := proto.Marshal(allowed)
	if err != nil {
		t.Fatal(err)
	}
	tl.judge(ExpectAllow, resp, nil)
	tl.judge(ExpectDeny, resp, nil)
	tl.judge(ExpectAny, resp, nil)
	if got := tl.outcomes[outcome{allow: true}]; got != 3 {
		t.Errorf("allow outcomes %d, want 3", got)
	}
	if got := tl.errors["unexpected allow"]; got != 1 {
		t.Errorf("errors %v, want one unexpected allow", tl.errors)
	}
}

func TestWriteText(t *testing.T) {
	r := &Result{
		Addr: "127.0.0.1:9001", Concurrency: 16, Conns: 2, Warmup: 1, Seconds: 3,
		Stream: Stream{Requests: 60000, RPS: 20000, Latency: Latency{P50: 400, P90: 700, P99: 1200, P999: 25000, Max: 30000},
			Outcomes: map[string]int64{"allow allowed": 59990, "deny bad_signature": 10}, Errors: map[string]int64{"unexpected deny bad_signature": 10}},
		Server: &Usage{CPUSeconds: 1.5, CPUPerCheck: 25, RSS: 30 << 20, PeakRSS: 31 << 20},
	}
	var b bytes.Buffer
	r.WriteText(&b)
	for _, want := range []string{
		"16 callers over 2 connections",
		"60000 (20000 rps)",
		"p50 400µs  p90 700µs  p99 1200µs  p99.9 25.0ms  max 30.0ms",
		"outcomes  allow allowed 59990, deny bad_signature 10",
		"errors    unexpected deny bad_signature 10",
		"CPU 25.0 µs/check (1.50s), RSS 30.0 MiB (peak 31.0 MiB)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
}
