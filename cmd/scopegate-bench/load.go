package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// callGrace is how long the calls still under way when a run stops may
// take before they are cancelled, so that a server that hangs cannot keep
// a run from ending.
const callGrace = 5 * time.Second

// floodCallers bounds the calls of a flood under way at once. Enough to
// keep 5,000 requests a second going at a few milliseconds each.
const floodCallers = 32

// Load is one load run against an ext_authz gRPC server: Concurrency
// callers, each with one call under way at a time (a closed loop), over
// Conns connections, as Envoy's worker threads call ext_authz.
type Load struct {
	Addr        string // host:port of the server, on loopback
	Concurrency int
	Conns       int
	Warmup      time.Duration // before measuring: connections, caches, the server's heap
	Duration    time.Duration // measured
	Mix         *Mix
	// ServerPID, when set, is the server's process, whose CPU time and
	// memory are read from /proc.
	ServerPID int
}

// check reports what makes l unusable.
func (l *Load) check() error {
	switch {
	case l.Concurrency < 1:
		return errors.New("the concurrency must be at least 1")
	case l.Conns < 1:
		return errors.New("the number of connections must be at least 1")
	case l.Duration <= 0:
		return errors.New("the duration must be positive")
	case l.Warmup < 0:
		return errors.New("the warmup must not be negative")
	}
	if err := checkLoopback(l.Addr); err != nil {
		return err
	}
	return l.Mix.check()
}

// checkLoopback refuses an address that is not on loopback: the harness
// floods what it is pointed at, so it may only be pointed at this machine.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not a host:port address", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("refusing %s: scopegate-bench sends load to loopback addresses only", addr)
	}
	return nil
}

// The phases of a run. Callers read the phase after every call: only the
// calls that end while measuring are counted.
const (
	warming int32 = iota
	measuring
	stopped
)

// loadRun is the state that the callers of a run share.
type loadRun struct {
	phase     atomic.Int32
	done      chan struct{} // closed when the run stops
	exhausted chan struct{} // closed when a unique token pool runs out
	once      sync.Once
}

func (r *loadRun) exhaust() { r.once.Do(func() { close(r.exhausted) }) }

// wait waits for d to pass, a unique token pool to run out or ctx to end,
// and reports which ended it.
func (r *loadRun) wait(ctx context.Context, d time.Duration) (exhausted bool, err error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return false, nil
	case <-r.exhausted:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// Run runs the load and returns what it measured. It stops by itself,
// after the warmup and the duration, or earlier when a unique token pool
// runs out or ctx ends.
func (l *Load) Run(ctx context.Context) (*Result, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if l.ServerPID != 0 {
		if _, err := cpuTime(l.ServerPID); err != nil {
			return nil, fmt.Errorf("reading the server's CPU time: %w", err)
		}
	}
	conns := make([]*grpc.ClientConn, min(l.Conns, l.Concurrency))
	for i := range conns {
		cc, err := grpc.NewClient(l.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
		if err != nil {
			return nil, err
		}
		defer cc.Close()
		conns[i] = cc
	}

	r := &loadRun{done: make(chan struct{}), exhausted: make(chan struct{})}
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	closed := make([]*caller, l.Concurrency)
	seq := order(l.Mix.Requests)
	var paced *pacer
	if l.Mix.Rate > 0 {
		paced = &pacer{start: time.Now(), interval: time.Second / time.Duration(l.Mix.Rate)}
	}
	for i := range closed {
		c, err := newCaller(r, conns[i%len(conns)], l.Mix.Requests, seq, i)
		if err != nil {
			return nil, err
		}
		closed[i] = c
		if paced != nil {
			wg.Go(func() { c.openLoop(callCtx, paced) })
		} else {
			wg.Go(func() { c.closedLoop(callCtx) })
		}
	}
	var flood []*caller
	if f := l.Mix.Flood; f != nil {
		p := &pacer{start: time.Now(), interval: time.Second / time.Duration(f.Rate)}
		fseq := order(f.Requests)
		for i := range floodCallers {
			c, err := newCaller(r, conns[i%len(conns)], f.Requests, fseq, i)
			if err != nil {
				return nil, err
			}
			flood = append(flood, c)
			wg.Go(func() { c.openLoop(callCtx, p) })
		}
	}
	// stop ends the run and waits for its callers.
	stop := func() {
		r.phase.Store(stopped)
		close(r.done)
		defer time.AfterFunc(callGrace, cancel).Stop()
		wg.Wait()
	}

	exhausted, err := r.wait(ctx, l.Warmup)
	if err != nil || exhausted {
		stop()
		if exhausted {
			return nil, errors.New("the unique tokens ran out during the warmup: give more tokens or a shorter warmup")
		}
		return nil, err
	}
	r.phase.Store(measuring)
	from := time.Now()
	before, err := l.sample()
	if err != nil {
		stop()
		return nil, err
	}
	exhausted, err = r.wait(ctx, l.Duration)
	r.phase.Store(stopped)
	secs := time.Since(from).Seconds()
	after, serr := l.sample()
	stop()
	if err = errors.Join(err, serr); err != nil {
		return nil, err
	}

	res := &Result{
		Addr: l.Addr, Concurrency: l.Concurrency, Conns: len(conns),
		Warmup: l.Warmup.Seconds(), Seconds: secs, Exhausted: exhausted,
		Stream: merged(closed).stream(secs),
	}
	checks := res.Requests
	if f := l.Mix.Flood; f != nil {
		res.Flood = &FloodResult{Rate: f.Rate, Stream: merged(flood).stream(secs)}
		checks += res.Flood.Requests
	}
	res.Harness = usage(after.harness-before.harness, checks)
	if l.ServerPID != 0 {
		u := usage(after.server-before.server, checks)
		if u.RSS, u.PeakRSS, err = memory(l.ServerPID); err != nil {
			return nil, fmt.Errorf("reading the server's memory: %w", err)
		}
		res.Server = &u
	}
	return res, nil
}

// sample is the CPU time used so far by the server and by the harness.
type sample struct{ server, harness time.Duration }

func (l *Load) sample() (sample, error) {
	var s sample
	if l.ServerPID != 0 {
		var err error
		if s.server, err = cpuTime(l.ServerPID); err != nil {
			return s, fmt.Errorf("reading the server's CPU time: %w", err)
		}
	}
	// The harness's own CPU time only explains a result; without /proc it
	// is left out.
	s.harness, _ = cpuTime(os.Getpid())
	return s, nil
}

func usage(cpu time.Duration, checks int64) Usage {
	u := Usage{CPUSeconds: cpu.Seconds()}
	if checks > 0 {
		u.CPUPerCheck = float64(cpu.Microseconds()) / float64(checks)
	}
	return u
}

func merged(cs []*caller) *tally {
	t := newTally()
	for _, c := range cs {
		t.merge(c.tally)
	}
	return t
}

// caller sends the requests of a mix one at a time and tallies the
// answers.
type caller struct {
	run   *loadRun
	conn  *grpc.ClientConn
	reqs  []prepared
	seq   []int // the order of reqs, by weight
	next  int
	tally *tally
	// req and resp are the messages of the call under way, reused.
	req, resp raw
}

// prepared is a request of the mix with the encoding of its CheckRequest
// without an authorization header, which each call adds to a copy.
type prepared struct {
	*Request
	msg []byte
}

// newCaller returns a caller of rs in the order seq, starting at offset
// in it so that callers do not all send the same request at once.
func newCaller(r *loadRun, conn *grpc.ClientConn, rs []Request, seq []int, offset int) (*caller, error) {
	c := &caller{run: r, conn: conn, seq: seq, next: offset % len(seq), tally: newTally()}
	for i := range rs {
		msg, err := encodeRequest(&rs[i])
		if err != nil {
			return nil, err
		}
		c.reqs = append(c.reqs, prepared{Request: &rs[i], msg: msg})
	}
	return c, nil
}

func (c *caller) closedLoop(ctx context.Context) {
	for c.run.phase.Load() != stopped && c.call(ctx) {
	}
}

func (c *caller) openLoop(ctx context.Context, p *pacer) {
	for p.wait(c.run) && c.call(ctx) {
	}
}

// call sends the next request of the mix and tallies it if it ends while
// the run is measuring. It reports false when a unique token pool has run
// out.
func (c *caller) call(ctx context.Context) bool {
	p := &c.reqs[c.seq[c.next]]
	c.next = (c.next + 1) % len(c.seq)
	// gRPC is done with the last call's message once Invoke returns.
	c.req.b = append(c.req.b[:0], p.msg...)
	if p.Tokens != nil {
		h, ok := p.Tokens.take()
		if !ok {
			c.run.exhaust()
			return false
		}
		c.req.b = appendAuthorization(c.req.b, h)
	}
	start := time.Now()
	err := c.conn.Invoke(ctx, authv3.Authorization_Check_FullMethodName, &c.req, &c.resp)
	took := time.Since(start)
	if c.run.phase.Load() == measuring {
		c.tally.record(took)
		c.tally.judge(p.Expect, c.resp.b, err)
	}
	return true
}

// judge tallies the answer resp, a CheckResponse's encoding, to a request
// that expected want.
func (t *tally) judge(want Expect, resp []byte, err error) {
	if err != nil {
		t.errors["grpc "+status.Code(err).String()]++
		return
	}
	a, ok := readAnswer(resp)
	if !ok {
		t.errors["malformed response"]++
		return
	}
	o := outcome{allow: a.code == int32(codes.OK), reason: a.reason}
	t.outcomes[o]++
	if want != ExpectAny && o.allow != (want != ExpectDeny) {
		t.errors["unexpected "+o.String()]++
	}
}

// pacer hands out the send times of an open-loop stream, one every
// interval from start, to whichever of its callers is free.
type pacer struct {
	start    time.Time
	interval time.Duration
	n        atomic.Int64
}

// wait waits for the next send time and reports whether the run goes on.
func (p *pacer) wait(r *loadRun) bool {
	due := p.start.Add(time.Duration(p.n.Add(1)-1) * p.interval)
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.done:
			return false
		}
	}
	return r.phase.Load() != stopped
}
