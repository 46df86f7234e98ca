package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/scopegate/scopegate/internal/devidp"
)

// The settings of a suite's runs: short, so that the whole suite ends in
// minutes on two cores. CPU per check, the figure that matters most, needs
// no more.
const (
	suiteWarmup   = 500 * time.Millisecond
	suiteDuration = 3 * time.Second
	// Runs of unique tokens are shorter: every token they send needs a
	// signature that the harness makes first.
	uniqueDuration = 1500 * time.Millisecond
	// primeConcurrency sends the tokens that warm a cache.
	primeConcurrency = 64
	// serveTimeout bounds a server's start: a policy of 10,000 routes to
	// compile, the issuer's keys to fetch.
	serveTimeout = 30 * time.Second
)

// suiteConcurrency is the concurrency of every scenario's runs.
var suiteConcurrency = []int{1, 16, 64}

// The sizes of the token sets, and the rate of the flood.
const (
	// uniqueTokens serves a run of unique tokens, warmup included, at up
	// to 8,000 checks/s, more than this machine verifies. A run that
	// spends them all ends early rather than send one twice.
	uniqueTokens = 16_000
	warmTokens   = 10_000  // sent round-robin to a warm cache
	memoryTokens = 100_000 // cached to measure memory
	floodRate    = 5_000   // requests a second of unknown kids
	floodTokens  = 20_000  // distinct unknown kids, sent round-robin
)

// The junk flood against introspection: at junkFactor × max_rate, from
// junkPeers source addresses, beside new valid tokens from one more at
// newTokenRate a second.
const (
	junkMaxRate    = 100 // introspection's max_rate, the default
	junkFactor     = 4
	junkPeers      = 8
	junkTokenCount = 20_000 // distinct, sent round-robin: none again within negative_ttl
	newTokenRate   = 20
	junkDuration   = 8 * time.Second
)

// suite runs the scenarios of the performance report and collects their
// results. Every run has a server of its own, started for it, so that no
// run inherits another's cache or heap and unique tokens can be sent
// again to the next server.
type suite struct {
	gate     string // the scopegate binary
	self     string // this binary, which serves the floor
	dir      string // the servers' configs and logs
	conns    int
	iss      *issuer
	intro    *introspection
	redis    *redisServer // nil when redis-server is not installed
	progress io.Writer
	report   *Report
}

// scenario is a server, configured for it, and the traffic sent to it at
// each concurrency.
type scenario struct {
	ScenarioInfo
	floor  bool // serve the floor rather than scopegate
	routes int  // the size of scopegate's policy; 0 means 10
	// uses lists the token sets that the scenario sends.
	uses []*tokenSet
	// prime, when set, returns tokens sent to the server once each before
	// the run, to fill its cache.
	prime func() []string
	// mix returns the traffic of the run at concurrency c.
	mix func(c int) *Mix
	// alone, when set, returns traffic measured just before the mix's, on
	// a server of its own, as a baseline: the result is the scenario's
	// name with "-alone".
	alone    func(c int) *Mix
	duration time.Duration // 0 means suiteDuration
	memory   bool          // one run that records scopegate's memory before and after
	// opaque configures introspection beside the issuer; l1 bounds its
	// in-process cache (0: the default) and redis adds the shared tier.
	opaque bool
	l1     int
	redis  bool
	// auditOff turns the audit log off; the other scenarios run scopegate
	// as deployed, with it on.
	auditOff bool
	// maxRate, when set, is introspection's max_rate, and the opaque
	// tokens have their token_format (gateConfig.IntrospectionMaxRate).
	maxRate int
	// conc, when set, replaces suiteConcurrency.
	conc []int
}

// tokenSet is a set of tokens that scenarios send. It is minted before
// the first scenario that uses it runs, so that signing does not share
// the CPU with a server being measured.
type tokenSet struct {
	n      int
	alg    string
	kind   tokenKind
	about  string
	tokens []string
}

// tokenSets are the token sets of the scenarios.
type tokenSets struct {
	hot, badSig, kids *tokenSet
	unique            map[string]*tokenSet // by algorithm
	opaque, junk      []string             // made, not minted
}

func newTokenSets() *tokenSets {
	return &tokenSets{
		hot:    &tokenSet{n: 1, alg: devidp.RS256, kind: validToken, about: "hot token"},
		badSig: &tokenSet{n: 1, alg: devidp.RS256, kind: badSignature, about: "token with a bad signature"},
		kids:   &tokenSet{n: floodTokens, alg: devidp.EdDSA, kind: unknownKey, about: "tokens naming unknown keys"},
		unique: map[string]*tokenSet{
			devidp.RS256: {n: uniqueTokens, alg: devidp.RS256, kind: validToken, about: "RS256 tokens"},
			devidp.ES256: {n: uniqueTokens, alg: devidp.ES256, kind: validToken, about: "ES256 tokens"},
			// Enough for the memory scenario too.
			devidp.EdDSA: {n: memoryTokens, alg: devidp.EdDSA, kind: validToken, about: "EdDSA tokens"},
		},
		opaque: opaqueTokens(uniqueTokens),
		junk:   junkTokens(junkTokenCount),
	}
}

// mint mints the sets of uses not minted yet.
func (s *suite) mint(ctx context.Context, uses []*tokenSet) error {
	for _, t := range uses {
		if t.tokens != nil {
			continue
		}
		start := time.Now()
		tokens, err := s.iss.mint(ctx, t.n, t.alg, t.kind)
		if err != nil {
			return fmt.Errorf("minting the %s: %w", t.about, err)
		}
		t.tokens = tokens
		fmt.Fprintf(s.progress, "minted %d %s in %v\n", t.n, t.about, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// scenarios returns the scenarios of the report, in the order they run.
// Their mixes read the token sets they use, once those are minted.
func (s *suite) scenarios(t *tokenSets) []*scenario {
	orders := func(tokens *Tokens, expect Expect) []Request {
		return []Request{{Method: "GET", Host: benchHost, Path: "/orders/42", Tokens: tokens, Expect: expect}}
	}
	hot := func(int) *Mix { return &Mix{Requests: orders(RoundRobin(t.hot.tokens), ExpectAllow)} }
	warm := func(int) *Mix {
		return &Mix{Requests: orders(RoundRobin(t.unique[devidp.RS256].tokens[:warmTokens]), ExpectAllow)}
	}
	warmOpaque := t.opaque[:warmTokens]
	opaqueMix := func(int) *Mix { return &Mix{Requests: orders(RoundRobin(warmOpaque), ExpectAllow)} }
	scs := []*scenario{
		{ScenarioInfo: ScenarioInfo{Name: "floor", Group: groupJWT, Title: "Floor: always-allow ext_authz server"},
			floor: true, uses: []*tokenSet{t.hot}, mix: hot},
		{ScenarioInfo: ScenarioInfo{Name: "jwt-hot", Group: groupJWT, Title: "JWT, one hot token (RS256)", Warm: true},
			uses: []*tokenSet{t.hot}, mix: hot},
		{ScenarioInfo: ScenarioInfo{Name: "jwt-warm", Group: groupJWT, Title: "JWT, 10,000 tokens round-robin, cache warm (RS256)", Warm: true},
			uses:  []*tokenSet{t.unique[devidp.RS256]},
			prime: func() []string { return t.unique[devidp.RS256].tokens[:warmTokens] }, mix: warm},
		{ScenarioInfo: ScenarioInfo{Name: "jwt-warm-audit-off", Group: groupJWT, Title: "JWT, 10,000 tokens round-robin, cache warm, audit log off"},
			uses:  []*tokenSet{t.unique[devidp.RS256]},
			prime: func() []string { return t.unique[devidp.RS256].tokens[:warmTokens] }, mix: warm, auditOff: true},
	}
	for _, alg := range []string{devidp.RS256, devidp.ES256, devidp.EdDSA} {
		scs = append(scs, &scenario{
			ScenarioInfo: ScenarioInfo{Name: "jwt-unique-" + alg, Group: groupJWT, Title: "JWT, every token unique (" + alg + ")", Alg: alg},
			uses:         []*tokenSet{t.unique[alg]},
			mix: func(int) *Mix {
				return &Mix{Requests: orders(Unique(t.unique[alg].tokens[:uniqueTokens]), ExpectAllow)}
			},
			duration: uniqueDuration,
		})
	}
	scs = append(scs,
		&scenario{ScenarioInfo: ScenarioInfo{Name: "opaque-l1", Group: groupOpaque, Title: "Opaque, 10,000 tokens round-robin, L1 hit", Warm: true},
			opaque: true, prime: func() []string { return warmOpaque }, mix: opaqueMix},
	)
	if s.redis != nil {
		scs = append(scs, &scenario{
			ScenarioInfo: ScenarioInfo{Name: "opaque-redis", Group: groupOpaque, Redis: true,
				Title: "Opaque, 10,000 tokens round-robin, Redis hit (L1 of one entry)",
				Note:  "scopegate cannot turn its in-process cache off; with room for one entry, every check misses it and finds the token in Redis"},
			opaque: true, l1: 1, redis: true, prime: func() []string { return warmOpaque }, mix: opaqueMix})
	}
	scs = append(scs,
		&scenario{ScenarioInfo: ScenarioInfo{Name: "opaque-miss", Group: groupOpaque, Title: "Opaque, every token unique: introspection answers in 1 ms"},
			opaque: true, duration: uniqueDuration,
			mix: func(int) *Mix { return &Mix{Requests: orders(Unique(t.opaque), ExpectAllow)} }},
		&scenario{ScenarioInfo: ScenarioInfo{Name: junkFlood, Group: groupOpaque,
			Title: fmt.Sprintf("New opaque tokens at %d/s beside junk at %d × max_rate", newTokenRate, junkFactor),
			Note: fmt.Sprintf("max_rate %d; every valid token is new, from one source address; the junk, in the tokens' token_format, "+
				"comes at %s/s from %d others, so that every string costs a request; checks/s and latency are the valid tokens'",
				junkMaxRate, thousands(junkFactor*junkMaxRate), junkPeers)},
			opaque: true, maxRate: junkMaxRate, conc: []int{4}, duration: junkDuration,
			mix: func(int) *Mix {
				flood := make([]Request, junkPeers)
				junk := RoundRobin(t.junk)
				for i := range flood {
					flood[i] = Request{Method: "GET", Host: benchHost, Path: "/orders/42", Tokens: junk, Expect: ExpectDeny,
						Peer: fmt.Sprintf("127.0.0.%d", i+2)}
				}
				return &Mix{Requests: orders(Unique(t.opaque), ExpectAllow), Rate: newTokenRate,
					Flood: &Flood{Rate: junkFactor * junkMaxRate, Requests: flood}}
			}},
		&scenario{ScenarioInfo: ScenarioInfo{Name: "deny-bad-signature", Group: groupDeny, Title: "Invalid signature (RS256), one token"},
			uses: []*tokenSet{t.badSig},
			mix:  func(int) *Mix { return &Mix{Requests: orders(RoundRobin(t.badSig.tokens), ExpectDeny)} }},
		&scenario{ScenarioInfo: ScenarioInfo{Name: "deny-missing", Group: groupDeny, Title: "Missing token"},
			mix: func(int) *Mix { return &Mix{Requests: orders(nil, ExpectDeny)} }},
		&scenario{ScenarioInfo: ScenarioInfo{Name: "deny-missing-audit-off", Group: groupDeny, Title: "Missing token, audit log off"},
			mix: func(int) *Mix { return &Mix{Requests: orders(nil, ExpectDeny)} }, auditOff: true},
		&scenario{ScenarioInfo: ScenarioInfo{Name: "kid-flood", Group: groupDeny,
			Title: "One hot token beside a flood of unknown kids at 5,000/s",
			Note:  "checks/s and latency are the valid traffic's; CPU per check counts the flood's checks too"},
			uses:  []*tokenSet{t.hot, t.kids},
			alone: hot,
			mix: func(int) *Mix {
				return &Mix{Requests: orders(RoundRobin(t.hot.tokens), ExpectAllow),
					Flood: &Flood{Rate: floodRate, Requests: orders(RoundRobin(t.kids.tokens), ExpectDeny)}}
			}},
		&scenario{ScenarioInfo: ScenarioInfo{Name: "floor-kid-flood", Group: groupDeny,
			Title: "The floor beside the same flood",
			Note: "the ceiling of the scenario above on this machine: the floor answers the flood without deciding anything, " +
				"so what valid traffic loses here is the cost of 5,000 calls a second to the harness and to gRPC on the shared cores"},
			floor: true, uses: []*tokenSet{t.hot, t.kids},
			alone: hot,
			mix: func(int) *Mix {
				return &Mix{Requests: orders(RoundRobin(t.hot.tokens), ExpectAllow),
					Flood: &Flood{Rate: floodRate, Requests: orders(RoundRobin(t.kids.tokens), ExpectAny)}}
			}},
	)
	for _, n := range []int{10, 1_000, 10_000} {
		scs = append(scs, &scenario{
			ScenarioInfo: ScenarioInfo{Name: fmt.Sprintf("policy-%d", n), Group: groupPolicy,
				Title: fmt.Sprintf("%s routes, one hot token, 8 routes in turn", thousands(float64(n))), Routes: n},
			routes: n, uses: []*tokenSet{t.hot},
			mix: func(int) *Mix {
				rs := policyTargets(n, 8)
				tokens := RoundRobin(t.hot.tokens)
				for i := range rs {
					rs[i].Tokens = tokens
				}
				return &Mix{Requests: rs}
			},
		})
	}
	scs = append(scs, &scenario{
		ScenarioInfo: ScenarioInfo{Name: "memory", Group: groupMemory, Title: thousands(memoryTokens) + " distinct tokens cached (EdDSA)"},
		uses:         []*tokenSet{t.unique[devidp.EdDSA]},
		mix:          func(int) *Mix { return &Mix{Requests: orders(Unique(t.unique[devidp.EdDSA].tokens), ExpectAllow)} },
		// One pass over the tokens, however long it takes.
		duration: 5 * time.Minute, memory: true,
	})
	return scs
}

// run runs the scenarios named in only, and the floor, or all of them
// when only is empty.
func (s *suite) run(ctx context.Context, only []string) error {
	cost, err := sigVerifyCost()
	if err != nil {
		return err
	}
	s.report.SigVerify = cost
	if s.redis == nil {
		s.report.Skipped = append(s.report.Skipped, "Opaque tokens, Redis hit: redis-server is not installed (apt-get install redis-server).")
	}
	all := s.scenarios(newTokenSets())
	var scs []*scenario
	for _, sc := range all {
		if len(only) == 0 || sc.floor || slices.Contains(only, sc.Name) {
			scs = append(scs, sc)
		}
	}
	for _, name := range only {
		if !slices.ContainsFunc(all, func(sc *scenario) bool { return sc.Name == name }) {
			return fmt.Errorf("no scenario %q", name)
		}
	}
	// The floor is measured again after half the scenarios and at the end
	// (see Report.floor).
	floor := scs[0]
	again := func(name, title string) *scenario {
		sc := *floor
		sc.Name, sc.Title = name, title
		return &sc
	}
	scs = slices.Insert(scs, 1+len(scs)/2, again(floorPasses[1], "Floor, again after half the scenarios"))
	scs = append(scs, again(floorPasses[2], "Floor, again at the end"))
	for _, sc := range scs {
		if err := s.mint(ctx, sc.uses); err != nil {
			return err
		}
		s.report.Scenarios = append(s.report.Scenarios, sc.ScenarioInfo)
		conc := suiteConcurrency
		switch {
		case sc.memory:
			conc = []int{primeConcurrency}
		case sc.conc != nil:
			conc = sc.conc
		}
		for _, c := range conc {
			if sc.alone != nil {
				if err := s.measure(ctx, sc, sc.Name+"-alone", c, sc.alone(c)); err != nil {
					return err
				}
			}
			if err := s.measure(ctx, sc, sc.Name, c, sc.mix(c)); err != nil {
				return err
			}
		}
	}
	return nil
}

// measure starts the server of sc, runs mix against it at concurrency c,
// records the result under name and stops the server.
func (s *suite) measure(ctx context.Context, sc *scenario, name string, c int, mix *Mix) error {
	fail := func(err error) error { return fmt.Errorf("%s at concurrency %d: %w", name, c, err) }
	srv, addr, err := s.start(ctx, sc, fmt.Sprintf("%s-c%d", name, c))
	if err != nil {
		return fail(err)
	}
	defer srv.stop()
	if sc.prime != nil {
		l := &Load{Addr: addr, Concurrency: primeConcurrency, Conns: s.conns, Duration: time.Minute,
			Mix: &Mix{Requests: []Request{{Method: "GET", Host: benchHost, Path: "/orders/42", Tokens: Unique(sc.prime())}}}}
		res, err := l.Run(ctx)
		if err != nil {
			return fail(fmt.Errorf("priming: %w", err))
		}
		if n := res.Errs(); n > 0 || !res.Exhausted {
			return fail(fmt.Errorf("priming: %d errors (%s), every token sent: %v", n, counts(res.Errors), res.Exhausted))
		}
	}
	var before int64
	if sc.memory {
		if before, _, err = memory(srv.pid()); err != nil {
			return fail(err)
		}
	}
	l := &Load{
		Addr: addr, Concurrency: c, Conns: s.conns,
		Warmup: suiteWarmup, Duration: cmp.Or(sc.duration, suiteDuration),
		Mix: mix, ServerPID: srv.pid(),
	}
	if sc.memory {
		// Every token is measured: the window is the whole pass.
		l.Warmup = 0
	}
	res, err := l.Run(ctx)
	if err != nil {
		return fail(err)
	}
	res.Scenario = name
	s.report.Results = append(s.report.Results, res)
	if sc.memory {
		s.report.Memory = &MemoryResult{Tokens: mix.Requests[0].Tokens.Len(), Sent: res.Requests, RSSBefore: before, RSSAfter: res.Server.RSS}
	}
	fmt.Fprintf(s.progress, "%-24s c=%-3d %8.0f checks/s  p50 %-7s p99 %-7s CPU %5.1f µs/check  RSS %-9s errors %s\n",
		name, c, res.RPS, micros(res.Latency.P50), micros(res.Latency.P99),
		res.Server.CPUPerCheck, mib(res.Server.RSS), counts(res.Errors))
	return nil
}

// start starts the server of sc and waits until it serves. Its config and
// log are named after run.
func (s *suite) start(ctx context.Context, sc *scenario, run string) (*server, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	logFile := filepath.Join(s.dir, run+".log")
	var srv *server
	if sc.floor {
		srv, err = startServer("the floor", logFile, s.self, "-serve-floor", addr, "-serve-for", "30m")
	} else {
		dir := filepath.Join(s.dir, run)
		var admin, config string
		if err = os.MkdirAll(dir, 0o755); err == nil {
			admin, err = freeAddr()
		}
		if err == nil {
			g := &gateConfig{GRPC: addr, Admin: admin, Issuer: s.iss, Routes: max(sc.routes, 10)}
			if sc.opaque {
				g.Introspection, g.IntrospectionL1, g.IntrospectionMaxRate = s.intro, sc.l1, sc.maxRate
			}
			if sc.redis {
				g.Redis = s.redis.addr
			}
			g.AuditOff = sc.auditOff
			config, err = g.write(dir)
		}
		if err != nil {
			return nil, "", err
		}
		srv, err = startServer("scopegate", logFile, s.gate, "serve", "--config", config)
	}
	if err != nil {
		return nil, "", err
	}
	if err := srv.waitServing(ctx, addr, serveTimeout); err != nil {
		srv.stop()
		return nil, "", err
	}
	return srv, addr, nil
}

// freeAddr returns a loopback address whose port is free now, for a server
// that must be told its address before it starts.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// machine describes the machine the suite runs on.
func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// suiteOptions configures -suite.
type suiteOptions struct {
	Out      string // the Markdown report; the .json and .svg go beside it
	Gate     string // the scopegate binary
	GoBench  string // go test -bench output to include, if any
	Render   bool   // rewrite the report from its .json
	Revision string
	Command  string   // the command line, for the report
	Only     []string // the scenarios to run, beside the floor; all when empty
}

// suiteConns is the number of gRPC connections of every run, as an Envoy
// with two worker threads opens to its ext_authz cluster.
const suiteConns = 2

// runSuite runs the suite, unless o.Render, and writes the report.
func runSuite(ctx context.Context, o suiteOptions, progress io.Writer) error {
	base := strings.TrimSuffix(o.Out, ".md")
	jsonFile, svgFile := base+".json", base+".svg"
	var rep *Report
	if o.Render {
		var err error
		if rep, err = readReport(jsonFile); err != nil {
			return err
		}
	} else {
		var err error
		if rep, err = measureSuite(ctx, o, progress); err != nil {
			return err
		}
		if err := rep.writeJSON(jsonFile); err != nil {
			return err
		}
	}
	var md, chart strings.Builder
	rep.writeMarkdown(&md, filepath.Base(svgFile))
	rep.writeChart(&chart)
	if err := os.WriteFile(o.Out, []byte(md.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(svgFile, []byte(chart.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(progress, "wrote %s, %s and %s\n", o.Out, jsonFile, svgFile)
	return nil
}

// measureSuite runs every scenario and returns the report of the run.
func measureSuite(ctx context.Context, o suiteOptions, progress io.Writer) (*Report, error) {
	rep := &Report{Date: time.Now(), Machine: machine(), Command: o.Command, Revision: o.Revision, Skipped: slices.Clone(skipped)}
	if _, err := os.Stat(o.Gate); err != nil {
		return nil, fmt.Errorf("the scopegate binary: %w (make build makes bin/scopegate)", err)
	}
	if o.GoBench != "" {
		f, err := os.Open(o.GoBench)
		if err != nil {
			return nil, err
		}
		rep.GoBench, err = parseGoBench(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.GoBench, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "scopegate-bench-")
	if err != nil {
		return nil, err
	}
	iss, err := startIssuer("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer iss.Close()
	intro, err := startIntrospection(iss.url)
	if err != nil {
		return nil, err
	}
	defer intro.Close()
	s := &suite{gate: o.Gate, self: self, dir: dir, conns: suiteConns, iss: iss, intro: intro, progress: progress, report: rep}
	if s.redis, err = startRedis(filepath.Join(dir, "redis.log")); err != nil && !errors.Is(err, exec.ErrNotFound) {
		return nil, err
	}
	if s.redis != nil {
		defer s.redis.stop()
	}
	if err := s.run(ctx, o.Only); err != nil {
		// The servers' logs explain most failures.
		return nil, fmt.Errorf("%w (the servers' configs and logs are in %s)", err, dir)
	}
	os.RemoveAll(dir)
	return rep, nil
}

// skipped lists the scenarios of the issue that the suite cannot run,
// and why.
var skipped = []string{
	"scopegate without metrics: they cannot be turned off, so every figure includes them.",
}
