package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/scopegate/scopegate/authz
BenchmarkCheck/cached-2         	  912345	      1311 ns/op	     480 B/op	       9 allocs/op
BenchmarkCheck/uncached-2       	   30000	     41234.5 ns/op	    7000 B/op	      90 allocs/op
BenchmarkPlain                  	 1000000	      1000 ns/op
PASS
ok  	github.com/scopegate/scopegate/authz	3.2s
`
	got, err := parseGoBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []GoBench{
		{Name: "BenchmarkCheck/cached", NsPerOp: 1311, BytesPerOp: 480, AllocsPerOp: 9},
		{Name: "BenchmarkCheck/uncached", NsPerOp: 41234.5, BytesPerOp: 7000, AllocsPerOp: 90},
		{Name: "BenchmarkPlain", NsPerOp: 1000},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := parseGoBench(strings.NewReader("BenchmarkX-2 10 abc ns/op\n")); err == nil {
		t.Error("a malformed figure was accepted")
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[float64]string{0: "0", 999.4: "999", 1000: "1,000", 37512.6: "37,513", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%v) = %q, want %q", n, got, want)
		}
	}
}

func TestTicks(t *testing.T) {
	if got, want := linearTicks(37000), []float64{0, 10000, 20000, 30000, 40000}; !slices.Equal(got, want) {
		t.Errorf("linearTicks(37000) = %v, want %v", got, want)
	}
	if got, want := logTicks(130, 1900), []float64{100, 200, 500, 1000, 2000}; !slices.Equal(got, want) {
		t.Errorf("logTicks(130, 1900) = %v, want %v", got, want)
	}
}

// sampleReport is a report of the whole suite with made-up figures: the
// floor at 25 µs a check, the warm cache at 30.
func sampleReport() *Report {
	r := &Report{
		Date:      time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
		Machine:   Machine{CPU: "Test CPU", Cores: 2, OS: "linux/amd64", Kernel: "6.1", Go: "go1.26"},
		Command:   "bin/scopegate-bench -suite docs/performance.md",
		SigVerify: map[string]float64{"RS256": 30, "ES256": 53, "EdDSA": 42},
		Memory:    &MemoryResult{Tokens: 100000, Sent: 100000, RSSBefore: 20 << 20, RSSAfter: 80 << 20},
		GoBench:   []GoBench{{Name: "BenchmarkCheck/cached", NsPerOp: 1300, BytesPerOp: 500, AllocsPerOp: 12}},
		Skipped:   []string{"Opaque tokens: not configurable yet."},
	}
	cpu := map[string]float64{"floor": 25, "jwt-hot": 30, "jwt-warm": 30, "jwt-unique-RS256": 70, "opaque-redis": 50, "kid-flood-alone": 30, "kid-flood": 28,
		"floor-kid-flood-alone": 25, "floor-kid-flood": 50, "policy-10": 30, "policy-10000": 32}
	for _, name := range []string{"floor", "jwt-hot", "jwt-warm", "jwt-unique-RS256", "opaque-redis", "kid-flood-alone", "kid-flood",
		"floor-kid-flood-alone", "floor-kid-flood", "policy-10", "policy-10000"} {
		group := groupJWT
		switch {
		case strings.Contains(name, "kid-flood"):
			group = groupDeny
		case strings.HasPrefix(name, "policy"):
			group = groupPolicy
		case strings.HasPrefix(name, "opaque"):
			group = groupOpaque
		}
		if !strings.HasSuffix(name, "-alone") {
			r.Scenarios = append(r.Scenarios, ScenarioInfo{Name: name, Group: group, Title: "Title of " + name,
				Warm: name == "jwt-warm", Redis: name == "opaque-redis"})
		}
		for _, c := range suiteConcurrency {
			p50 := int64(100)
			if name == "opaque-redis" {
				p50 = 250
			}
			res := &Result{Scenario: name, Concurrency: c, Conns: 2, Seconds: 3,
				Stream: Stream{Requests: int64(1000 * c), RPS: 30000 - cpu[name]*100, Latency: Latency{P50: p50, P90: 200, P99: 300 + int64(c), P999: 900, Max: 2000}},
				Server: &Usage{CPUPerCheck: cpu[name], RSS: 30 << 20}}
			if strings.HasSuffix(name, "kid-flood") {
				res.Flood = &FloodResult{Rate: 5000, Stream: Stream{RPS: 4990}}
			}
			r.Results = append(r.Results, res)
		}
	}
	return r
}

func TestWriteMarkdown(t *testing.T) {
	var b strings.Builder
	sampleReport().writeMarkdown(&b, "performance.svg")
	md := b.String()
	for _, want := range []string{
		"**×1.20 the floor's** 25.0 µs",
		"![Throughput, p99 latency and server CPU per check of each scenario](performance.svg)",
		"Test CPU, 2 cores",
		"| Title of jwt-warm | 16 | 27,000 | ×0.98 | 100µs | 200µs | 316µs | ×1.00 | 900µs | 2000µs | 30.0 | ×1.20 | 30.0 MiB | 0 |",
		"| 16 | 27,000 | 27,200 | 101 % | 91 % | 5,000/s | 4,990 | none |",
		"101 % at c=1 (the floor: 91 %)",
		"| Title of kid-flood | 64 | 27,200 |",
		"costs ×1.07 the CPU of one against 10",
		"| 20.0 MiB | 80.0 MiB | 629 B |",
		"| Title of jwt-warm: CPU per check ≤ 1.25 × the floor's | ×1.20 (30.0 against 25.0 µs) | yes |",
		"| every token unique, RS256: CPU per check ≤ floor + 1.15 × one verification | 70.0 µs against 25.0 + 1.15 × 30.0 = 59.5 µs (the issue's reference: 30 µs a verification) | **no** |",
		"| in process, warm cache: ≤ 15 allocations per check | 12 allocs/op, 1,300 ns/op | yes |",
		"| Title of opaque-redis: p50 < 2 × the floor's | ×2.50 at c=1 (250µs against 100µs), ×2.50 at c=16 (250µs against 100µs) | **no** |",
		"## Opaque tokens",
		"- Opaque tokens: not configurable yet.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
}

func TestWriteChartIsWellFormedSVG(t *testing.T) {
	var b bytes.Buffer
	sampleReport().writeChart(&b)
	dec := xml.NewDecoder(&b)
	var elems []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			elems = append(elems, se.Name.Local)
		}
	}
	if len(elems) == 0 || elems[0] != "svg" {
		t.Fatalf("the first element is not svg: %v", elems[:min(len(elems), 3)])
	}
	// A line for each of the four JWT scenarios in each line panel.
	if n := strings.Count(strings.Join(elems, " "), "polyline"); n != 8 {
		t.Errorf("%d polylines, want 8", n)
	}
}

func TestReportRoundTrip(t *testing.T) {
	name := filepath.Join(t.TempDir(), "performance.json")
	want := sampleReport()
	if err := want.writeJSON(name); err != nil {
		t.Fatal(err)
	}
	got, err := readReport(name)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back a different report:\n%+v\n%+v", got, want)
	}
}

func TestRatiosAreToTheMedianFloorPass(t *testing.T) {
	r := &Report{}
	for i, cpu := range []float64{25, 40, 27} {
		r.Results = append(r.Results, &Result{Scenario: floorPasses[i], Concurrency: 16,
			Stream: Stream{RPS: 30000 - cpu*100, Latency: Latency{P50: int64(cpu * 10), P99: int64(cpu * 100)}}, Server: &Usage{CPUPerCheck: cpu}})
	}
	fl := r.floor(16)
	if fl == nil || cpuOf(fl) != 27 || fl.RPS != 27300 || fl.Latency.P50 != 270 || fl.Latency.P99 != 2700 {
		t.Fatalf("floor = %+v, want the median pass: 27 µs, 27,300 checks/s, p50 270, p99 2700", fl)
	}
	r.Results = r.Results[:2]
	if fl := r.floor(16); cpuOf(fl) != 32.5 {
		t.Errorf("floor of two passes = %v µs, want their mean, 32.5", cpuOf(fl))
	}
	if r.floor(64) != nil {
		t.Error("a floor at a concurrency never measured")
	}
}
