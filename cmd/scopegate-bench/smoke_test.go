package main

import (
	"context"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestSmoke loads the floor, served in process on loopback, for a second,
// and checks that every call was answered as expected. It times nothing.
func TestSmoke(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := newFloorServer()
	go g.Serve(lis)
	t.Cleanup(g.Stop)

	l := &Load{
		Addr: lis.Addr().String(), Concurrency: 4, Conns: 2,
		Warmup: 200 * time.Millisecond, Duration: 800 * time.Millisecond,
		Mix: &Mix{Requests: []Request{
			{Method: "GET", Host: benchHost, Path: "/orders/42", Tokens: RoundRobin([]string{"a", "b"})},
			{Method: "POST", Host: benchHost, Path: "/orders", Weight: 2},
		}},
	}
	if runtime.GOOS == "linux" {
		// The server is this process.
		l.ServerPID = os.Getpid()
	}
	res, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Outcomes["allow"] != res.Requests {
		t.Errorf("requests %d, outcomes %v: want every request allowed", res.Requests, res.Outcomes)
	}
	if n := res.Errs(); n != 0 {
		t.Errorf("%d errors: %v", n, res.Errors)
	}
	if l.ServerPID != 0 && (res.Server == nil || res.Server.RSS == 0) {
		t.Errorf("no server usage: %+v", res.Server)
	}
}

// TestSmokeFlood runs a flood beside the closed loop and ends a run when
// its unique tokens run out.
func TestSmokeFlood(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := newFloorServer()
	go g.Serve(lis)
	t.Cleanup(g.Stop)

	tokens := make([]string, 2000)
	for i := range tokens {
		tokens[i] = "t" + string(rune('a'+i%26))
	}
	l := &Load{
		Addr: lis.Addr().String(), Concurrency: 2, Conns: 1, Duration: time.Minute,
		Mix: &Mix{
			Requests: []Request{{Method: "GET", Host: benchHost, Path: "/", Tokens: Unique(tokens)}},
			Flood:    &Flood{Rate: 200, Requests: []Request{{Method: "GET", Host: benchHost, Path: "/flood"}}},
		},
	}
	res, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Exhausted || res.Requests == 0 || res.Requests > int64(len(tokens)) {
		t.Errorf("exhausted %v after %d requests of %d tokens", res.Exhausted, res.Requests, len(tokens))
	}
	if res.Flood == nil || res.Flood.Errs() != 0 || res.Errs() != 0 {
		t.Errorf("errors: %v, flood %+v", res.Errors, res.Flood)
	}
}

func TestLoadRefusesRemoteAddresses(t *testing.T) {
	l := &Load{Addr: "192.0.2.1:9001", Concurrency: 1, Conns: 1, Duration: time.Second,
		Mix: &Mix{Requests: []Request{{Method: "GET", Path: "/"}}}}
	if _, err := l.Run(context.Background()); err == nil {
		t.Error("a run against a remote address started")
	}
}
