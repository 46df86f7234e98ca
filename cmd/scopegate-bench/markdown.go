package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/scopegate/scopegate/internal/devidp"
)

// The targets that the report checks, from the performance issue.
const (
	targetConcurrency = 16   // where throughput and p99 are compared
	warmCPUFactor     = 1.25 // warm cache: CPU per check ≤ 1.25 × the floor's
	warmRPSFactor     = 0.85 // throughput ≥ 0.85 × the floor's
	warmP99Factor     = 1.25 // p99 ≤ 1.25 × the floor's
	redisP50Factor    = 2.0  // Redis hit: p50 < 2 × the floor's
	uniqueSigFactor   = 1.15 // unique tokens: CPU ≤ floor + 1.15 × one verification
	floodKeep         = 0.90 // valid traffic keeps 90 % of its throughput in a flood
	junkKeep          = 0.90 // new opaque tokens keep 90 % success beside junk
	policyFlatness    = 0.10 // CPU per check within 10 % from 10 to 10,000 routes
	maxWarmAllocs     = 15   // allocations per in-process check, warm cache
	memoryLimit       = 100 << 20
)

// referenceSigVerify is what the issue gives as the CPU time of one
// signature verification on this machine, in microseconds.
var referenceSigVerify = map[string]float64{devidp.RS256: 30, devidp.ES256: 53, devidp.EdDSA: 42}

// result returns the result of scenario name at concurrency c, or nil.
func (r *Report) result(name string, c int) *Result {
	for _, res := range r.Results {
		if res.Scenario == name && res.Concurrency == c {
			return res
		}
	}
	return nil
}

// floorPasses name the results of the floor's passes over a suite.
var floorPasses = []string{"floor", "floor-middle", "floor-last"}

// floor returns what the ratios of concurrency c compare with: the
// floor's passes at c, their median figure by figure (the mean of the
// middle two of an even number), or nil when none was measured.
func (r *Report) floor(c int) *Result {
	var passes []*Result
	for _, name := range floorPasses {
		if res := r.result(name, c); res != nil {
			passes = append(passes, res)
		}
	}
	if len(passes) == 0 {
		return nil
	}
	median := func(f func(*Result) float64) float64 {
		vs := make([]float64, len(passes))
		for i, p := range passes {
			vs[i] = f(p)
		}
		slices.Sort(vs)
		n := len(vs)
		return (vs[(n-1)/2] + vs[n/2]) / 2
	}
	fl := &Result{Scenario: "floor", Concurrency: c}
	fl.RPS = median(func(p *Result) float64 { return p.RPS })
	fl.Latency.P50 = int64(median(func(p *Result) float64 { return float64(p.Latency.P50) }))
	fl.Latency.P99 = int64(median(func(p *Result) float64 { return float64(p.Latency.P99) }))
	if passes[0].Server != nil {
		fl.Server = &Usage{CPUPerCheck: median(cpuOf)}
	}
	return fl
}

// ratio returns a / b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// writeMarkdown writes the report as a Markdown page that shows chart, the
// file name of its SVG chart.
func (r *Report) writeMarkdown(w io.Writer, chart string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# Performance\n\n")
	p("<!-- Written by `make bench` (cmd/scopegate-bench) from performance.json: change the harness, not this page. -->\n\n")
	if h := r.headline(); h != "" {
		p("%s\n\n", h)
	}
	p("![Throughput, p99 latency and server CPU per check of each scenario](%s)\n\n", chart)
	r.writeMethod(w)
	groups := []string{groupJWT, groupOpaque, groupDeny, groupPolicy}
	for _, g := range groups {
		r.writeGroup(w, g)
	}
	r.writeMemory(w)
	r.writeGoBench(w)
	r.writeTargets(w)
	if len(r.Skipped) > 0 {
		p("## Not measured\n\n")
		for _, s := range r.Skipped {
			p("- %s\n", s)
		}
		p("\n")
	}
}

// headline states the warm cache against the floor in one sentence.
func (r *Report) headline() string {
	warm, fl := r.result("jwt-warm", targetConcurrency), r.floor(targetConcurrency)
	if warm == nil || fl == nil || warm.Server == nil || fl.Server == nil {
		return ""
	}
	return fmt.Sprintf("**Headline.** With its verified-token cache warm, scopegate spends %.1f µs of CPU per check, "+
		"**×%.2f the floor's** %.1f µs (an always-allow ext_authz server with the same gRPC settings); "+
		"at concurrency %d it answers %s checks/s, ×%.2f the floor's, with a p99 of %s, ×%.2f the floor's. "+
		"Measured in one run on the machine below.",
		warm.Server.CPUPerCheck, ratio(warm.Server.CPUPerCheck, fl.Server.CPUPerCheck), fl.Server.CPUPerCheck,
		targetConcurrency, thousands(warm.RPS), ratio(warm.RPS, fl.RPS),
		micros(warm.Latency.P99), ratio(float64(warm.Latency.P99), float64(fl.Latency.P99)))
}

func (r *Report) writeMethod(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	m := r.Machine
	p("## How these figures were produced\n\n")
	p("- **Machine:** %s, %d cores, %s", cmp.Or(m.CPU, "unknown CPU"), m.Cores, m.OS)
	if m.Kernel != "" {
		p(" (Linux %s)", m.Kernel)
	}
	p(", %s. ", m.Go)
	if m.LoadAvg != "" {
		p("Load average when the run started: %s. ", m.LoadAvg)
	}
	p("Other jobs share the machine, so throughput and latency are noisy; CPU per check is the steadier figure.\n")
	p("- **Date:** %s", r.Date.UTC().Format("2006-01-02 15:04 UTC"))
	if r.Revision != "" {
		p(", revision `%s`", r.Revision)
	}
	p(".\n")
	p("- **Command:** `make bench`, which builds `bin/scopegate` and `bin/scopegate-bench`, runs the in-process benchmark, then `%s`.\n", r.Command)
	p("- **Servers:** every run starts its own server on loopback, so that none inherits another's cache or heap: " +
		"either `scopegate serve --config` with a config and policy that the harness writes, trusting the harness's own issuer " +
		"(fresh RS256, ES256 and EdDSA keys, its JWKS served on loopback), " +
		"or the floor, `scopegate-bench -serve-floor`, an always-allow ext_authz server with the same gRPC server settings as scopegate's.\n")
	p("- **scopegate as deployed:** metrics on (they always are) and the audit log written to a file, every deny and %.0f %% of the allows; "+
		"the scenarios marked *audit log off* turn it off. Opaque tokens are introspected at a local endpoint that answers after %v, "+
		"with scopegate's limits on introspection raised (max_concurrent %d, max_rate %s/s) so that a run measures introspection rather than the limiter; "+
		"Redis is a local `redis-server`.\n",
		100*auditAllowSample, introspectionDelay, introspectionMaxConcurrent, thousands(introspectionMaxRate))
	p("- **Load:** the harness stands in for Envoy, sending the CheckRequest that Envoy sends for `GET /orders/42` (or the policy's routes in turn); "+
		"at concurrency c, c callers each keep one call under way (a closed loop) over %d gRPC connections. "+
		"Each run warms up for %v, then measures for %v (%v with unique tokens, and less if they run out); a cache is filled before its run. "+
		"The harness runs on the same cores as the server.\n", suiteConns, suiteWarmup, suiteDuration, uniqueDuration)
	p("- **Figures:** latency as the harness sees it (HdrHistogram, 3 significant digits); server CPU per check is the server's user + system time from `/proc/PID/stat` over the measured window, divided by the checks answered; RSS from `/proc/PID/status` at its end. " +
		"Every ratio (×) is to the floor at the same concurrency in the same run: the floor is measured three times, first, after half the scenarios and last, " +
		"and a ratio is to the median of the three passes, figure by figure, so that one pass caught by the machine's other work does not skew every ratio. " +
		"The raw figures are in [performance.json](performance.json).\n\n")
}

// writeGroup writes the table of the scenarios of group g.
func (r *Report) writeGroup(w io.Writer, g string) {
	var infos []ScenarioInfo
	for _, s := range r.Scenarios {
		if s.Group == g {
			infos = append(infos, s)
		}
	}
	if len(infos) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## %s\n\n", g)
	p("| scenario | c | checks/s | × floor | p50 | p90 | p99 | × floor | p99.9 | max | CPU µs/check | × floor | RSS | errors |\n")
	p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, s := range infos {
		for _, res := range r.Results {
			if res.Scenario != s.Name {
				continue
			}
			fl := r.floor(res.Concurrency)
			p("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				s.Title, res.Concurrency, thousands(res.RPS), times(res.RPS, flField(fl, func(f *Result) float64 { return f.RPS })),
				micros(res.Latency.P50), micros(res.Latency.P90), micros(res.Latency.P99),
				times(float64(res.Latency.P99), flField(fl, func(f *Result) float64 { return float64(f.Latency.P99) })),
				micros(res.Latency.P999), micros(res.Latency.Max),
				cpu(res), times(cpuOf(res), flField(fl, cpuOf)), rss(res), errorsOf(res))
		}
	}
	p("\n")
	for _, s := range infos {
		if s.Note != "" {
			p("*%s:* %s.\n\n", s.Title, s.Note)
		}
	}
	switch g {
	case groupOpaque:
		r.writeJunkFlood(w)
	case groupDeny:
		r.writeFlood(w)
	case groupPolicy:
		r.writeFlatness(w)
	}
}

func flField(fl *Result, f func(*Result) float64) float64 {
	if fl == nil {
		return 0
	}
	return f(fl)
}

func cpuOf(r *Result) float64 {
	if r.Server == nil {
		return 0
	}
	return r.Server.CPUPerCheck
}

func cpu(r *Result) string {
	if r.Server == nil {
		return "–"
	}
	return strconv.FormatFloat(r.Server.CPUPerCheck, 'f', 1, 64)
}

func rss(r *Result) string {
	if r.Server == nil {
		return "–"
	}
	return mib(r.Server.RSS)
}

func errorsOf(r *Result) string {
	if n := r.Errs(); n > 0 {
		return counts(r.Errors)
	}
	return "0"
}

// times formats a / b as a ratio, or a dash when there is no b.
func times(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return "×" + strconv.FormatFloat(a/b, 'f', 2, 64)
}

// thousands formats n rounded to a whole number, with thousands separated.
func thousands(n float64) string {
	s := strconv.FormatInt(int64(n+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// writeFlood compares the valid traffic beside the flood with the same
// traffic alone, and with what the floor keeps beside the same flood.
func (r *Report) writeFlood(w io.Writer) {
	rows := r.floodRows("kid-flood")
	if len(rows) == 0 {
		return
	}
	floor := r.floodRows("floor-kid-flood")
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("Valid traffic beside the flood of unknown kids, against the same traffic alone, measured just before on a server of its own, " +
		"and the same for the floor:\n\n")
	p("| c | alone, checks/s | beside the flood, checks/s | kept | the floor kept | flood asked | flood answered/s | flood errors |\n")
	p("|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, row := range rows {
		f := row.flood.Flood
		p("| %d | %s | %s | %.0f %% | %s | %s/s | %s | %s |\n", row.c, thousands(row.alone.RPS), thousands(row.flood.RPS),
			100*row.kept(), floorKept(floor, row.c), thousands(float64(f.Rate)), thousands(f.RPS), counts(f.Errors))
	}
	p("\n")
}

// junkFlood names the scenario of new opaque tokens beside a flood of junk
// bearer strings.
const junkFlood = "opaque-junk-flood"

// allowedShare is the share of the requests of s that were allowed.
func allowedShare(s *Stream) float64 {
	var n int64
	for o, c := range s.Outcomes {
		if o == "allow" || strings.HasPrefix(o, "allow ") {
			n += c
		}
	}
	return ratio(float64(n), float64(s.Requests))
}

// writeJunkFlood states what the new valid tokens got beside the junk.
func (r *Report) writeJunkFlood(w io.Writer) {
	for _, res := range r.Results {
		if res.Scenario != junkFlood || res.Flood == nil {
			continue
		}
		fmt.Fprintf(w, "New valid opaque tokens beside the junk flood: **%.1f %%** of %d allowed (%s); the junk, asked at %s/s, got %s.\n\n",
			100*allowedShare(&res.Stream), res.Requests, counts(res.Outcomes), thousands(float64(res.Flood.Rate)), counts(res.Flood.Outcomes))
	}
}

// floorKept is the share of its throughput that the floor kept beside
// the flood at concurrency c, or "–" when it was not measured.
func floorKept(rows []floodRow, c int) string {
	for _, row := range rows {
		if row.c == c {
			return fmt.Sprintf("%.0f %%", 100*row.kept())
		}
	}
	return "–"
}

type floodRow struct {
	c            int
	alone, flood *Result
}

func (f floodRow) kept() float64 { return ratio(f.flood.RPS, f.alone.RPS) }

// floodRows pairs the results of the flood scenario name with those of
// its traffic alone.
func (r *Report) floodRows(name string) []floodRow {
	var rows []floodRow
	for _, res := range r.Results {
		if res.Scenario != name || res.Flood == nil {
			continue
		}
		if alone := r.result(name+"-alone", res.Concurrency); alone != nil {
			rows = append(rows, floodRow{res.Concurrency, alone, res})
		}
	}
	return rows
}

// writeFlatness compares the CPU per check of the largest policy with the
// smallest's.
func (r *Report) writeFlatness(w io.Writer) {
	for _, c := range suiteConcurrency {
		small, large := r.result("policy-10", c), r.result("policy-10000", c)
		if small == nil || large == nil || small.Server == nil || large.Server == nil {
			continue
		}
		fmt.Fprintf(w, "At concurrency %d, a check against 10,000 routes costs ×%.2f the CPU of one against 10.\n", c, ratio(cpuOf(large), cpuOf(small)))
	}
	fmt.Fprintln(w)
}

func (r *Report) writeMemory(w io.Writer) {
	m := r.Memory
	if m == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## %s\n\n", groupMemory)
	p("scopegate's resident memory before and after checking %s distinct valid tokens (EdDSA), which its verified-token cache (default size 100,000) then holds:\n\n", thousands(float64(m.Tokens)))
	p("| before | after | per cached token |\n|--:|--:|--:|\n")
	p("| %s | %s | %s |\n\n", mib(m.RSSBefore), mib(m.RSSAfter), bytesEach(m.RSSAfter-m.RSSBefore, m.Tokens))
}

func bytesEach(total int64, n int) string {
	if n == 0 {
		return "–"
	}
	return thousands(float64(total)/float64(n)) + " B"
}

func (r *Report) writeGoBench(w io.Writer) {
	if len(r.GoBench) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## In process\n\n")
	p("`go test -run='^$' -bench='^BenchmarkCheck$' -benchmem ./authz`: one whole decision without gRPC (path normalization, route match, token verification, requirements), with the verified-token cache warm (cached) and off (uncached: one RS256 verification each).\n\n")
	p("| benchmark | ns/op | B/op | allocs/op |\n|---|--:|--:|--:|\n")
	for _, b := range r.GoBench {
		p("| %s | %s | %d | %d |\n", b.Name, thousands(b.NsPerOp), b.BytesPerOp, b.AllocsPerOp)
	}
	p("\n")
}

// target is one target of the issue and how the run measured up to it.
type target struct {
	what, measured string
	met            bool
}

func (r *Report) targets() []target {
	var ts []target
	fl := r.floor(targetConcurrency)
	for _, info := range r.Scenarios {
		warm := r.result(info.Name, targetConcurrency)
		if !info.Warm || warm == nil || fl == nil || warm.Server == nil || fl.Server == nil {
			continue
		}
		c := ratio(cpuOf(warm), cpuOf(fl))
		ts = append(ts, target{fmt.Sprintf("%s: CPU per check ≤ %.2f × the floor's", info.Title, warmCPUFactor),
			fmt.Sprintf("×%.2f (%.1f against %.1f µs)", c, cpuOf(warm), cpuOf(fl)), c <= warmCPUFactor})
		t := ratio(warm.RPS, fl.RPS)
		ts = append(ts, target{fmt.Sprintf("%s: throughput ≥ %.2f × the floor's at concurrency %d", info.Title, warmRPSFactor, targetConcurrency),
			fmt.Sprintf("×%.2f (%s against %s checks/s)", t, thousands(warm.RPS), thousands(fl.RPS)), t >= warmRPSFactor})
		l := ratio(float64(warm.Latency.P99), float64(fl.Latency.P99))
		ts = append(ts, target{fmt.Sprintf("%s: p99 ≤ %.2f × the floor's at concurrency %d", info.Title, warmP99Factor, targetConcurrency),
			fmt.Sprintf("×%.2f (%s against %s)", l, micros(warm.Latency.P99), micros(fl.Latency.P99)), l <= warmP99Factor})
	}
	for _, info := range r.Scenarios {
		if !info.Redis {
			continue
		}
		var parts []string
		met := true
		for _, c := range []int{1, targetConcurrency} {
			res, f := r.result(info.Name, c), r.floor(c)
			if res == nil || f == nil {
				continue
			}
			x := ratio(float64(res.Latency.P50), float64(f.Latency.P50))
			parts = append(parts, fmt.Sprintf("×%.2f at c=%d (%s against %s)", x, c, micros(res.Latency.P50), micros(f.Latency.P50)))
			met = met && x < redisP50Factor
		}
		if len(parts) > 0 {
			ts = append(ts, target{fmt.Sprintf("%s: p50 < %.0f × the floor's", info.Title, redisP50Factor), strings.Join(parts, ", "), met})
		}
	}
	for _, alg := range []string{devidp.RS256, devidp.ES256, devidp.EdDSA} {
		u := r.result("jwt-unique-"+alg, targetConcurrency)
		sig := r.SigVerify[alg]
		if u == nil || fl == nil || u.Server == nil || fl.Server == nil || sig == 0 {
			continue
		}
		limit := cpuOf(fl) + uniqueSigFactor*sig
		ts = append(ts, target{fmt.Sprintf("every token unique, %s: CPU per check ≤ floor + %.2f × one verification", alg, uniqueSigFactor),
			fmt.Sprintf("%.1f µs against %.1f + %.2f × %.1f = %.1f µs (the issue's reference: %.0f µs a verification)",
				cpuOf(u), cpuOf(fl), uniqueSigFactor, sig, limit, referenceSigVerify[alg]), cpuOf(u) <= limit})
	}
	if rows := r.floodRows("kid-flood"); len(rows) > 0 {
		worst := slices.MinFunc(rows, func(a, b floodRow) int { return cmp.Compare(a.kept(), b.kept()) })
		floor := r.floodRows("floor-kid-flood")
		var parts []string
		for _, row := range rows {
			part := fmt.Sprintf("%.0f %% at c=%d", 100*row.kept(), row.c)
			if k := floorKept(floor, row.c); k != "–" {
				part += " (the floor: " + k + ")"
			}
			parts = append(parts, part)
		}
		ts = append(ts, target{fmt.Sprintf("random-kid flood at 5,000/s: valid traffic keeps ≥ %.0f %% of its throughput", 100*floodKeep),
			strings.Join(parts, ", "), worst.kept() >= floodKeep})
	}
	for _, res := range r.Results {
		if res.Scenario == junkFlood && res.Flood != nil {
			share := allowedShare(&res.Stream)
			ts = append(ts, target{fmt.Sprintf("junk bearer strings at %d × max_rate: new valid opaque tokens keep ≥ %.0f %% success", junkFactor, 100*junkKeep),
				fmt.Sprintf("%.1f %% of %d", 100*share, res.Requests), share >= junkKeep})
		}
	}
	if small, large := r.result("policy-10", targetConcurrency), r.result("policy-10000", targetConcurrency); small != nil && large != nil && small.Server != nil && large.Server != nil {
		g := ratio(cpuOf(large), cpuOf(small))
		ts = append(ts, target{fmt.Sprintf("policy size: CPU per check flat within %.0f %% from 10 to 10,000 routes", 100*policyFlatness),
			fmt.Sprintf("×%.2f at concurrency %d (%.1f against %.1f µs)", g, targetConcurrency, cpuOf(large), cpuOf(small)),
			g <= 1+policyFlatness && g >= 1-policyFlatness})
	}
	for _, b := range r.GoBench {
		if b.Name == "BenchmarkCheck/cached" {
			ts = append(ts, target{fmt.Sprintf("in process, warm cache: ≤ %d allocations per check", maxWarmAllocs),
				fmt.Sprintf("%d allocs/op, %s ns/op", b.AllocsPerOp, thousands(b.NsPerOp)), b.AllocsPerOp <= maxWarmAllocs})
		}
	}
	if m := r.Memory; m != nil {
		ts = append(ts, target{fmt.Sprintf("memory: %s cached tokens under 100 MiB RSS in total", thousands(float64(m.Tokens))),
			mib(m.RSSAfter), m.RSSAfter < memoryLimit})
	}
	return ts
}

func (r *Report) writeTargets(w io.Writer) {
	ts := r.targets()
	if len(ts) == 0 {
		return
	}
	fmt.Fprintf(w, "## Targets\n\n| target | measured | met |\n|---|---|---|\n")
	for _, t := range ts {
		met := "**no**"
		if t.met {
			met = "yes"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.what, t.measured, met)
	}
	fmt.Fprintln(w)
}
