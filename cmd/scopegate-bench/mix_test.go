package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOrderInterleavesByWeight(t *testing.T) {
	seq := order([]Request{{Weight: 3}, {Weight: 0}, {Weight: 1}})
	if len(seq) != 5 {
		t.Fatalf("order %v: want 5 entries", seq)
	}
	n := make([]int, 3)
	for i, r := range seq {
		n[r]++
		if i > 0 && r != 0 && seq[i-1] == r {
			t.Errorf("order %v repeats %d", seq, r)
		}
	}
	if !slices.Equal(n, []int{3, 1, 1}) {
		t.Errorf("order %v: counts %v, want [3 1 1]", seq, n)
	}
}

func TestTokens(t *testing.T) {
	rr := RoundRobin([]string{"a", "b"})
	for _, want := range []string{"Bearer a", "Bearer b", "Bearer a"} {
		if got, ok := rr.take(); !ok || got != want {
			t.Errorf("round-robin take = %q, %v; want %q", got, ok, want)
		}
	}
	u := Unique([]string{"a"})
	if got, ok := u.take(); !ok || got != "Bearer a" {
		t.Errorf("unique take = %q, %v", got, ok)
	}
	if _, ok := u.take(); ok {
		t.Error("a unique pool gave a token twice")
	}
}

func TestLoadMix(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("good.txt", "# valid\ntok1\n\ntok2\n")
	m, err := loadMix(write("mix.yaml", `host: api.example.com
requests:
  - { path: /orders/42, tokens: good, weight: 3 }
  - { method: post, host: other.example.com, path: /orders, expect: deny }
flood:
  rate: 100
  requests:
    - { path: /x, tokens: good, expect: any }
tokens:
  good: { file: good.txt, order: unique }
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.check(); err != nil {
		t.Fatal(err)
	}
	r0, r1 := m.Requests[0], m.Requests[1]
	if r0.Method != "GET" || r0.Host != "api.example.com" || r0.Tokens.Len() != 2 || !r0.Tokens.unique || r0.Weight != 3 {
		t.Errorf("requests[0] = %+v", r0)
	}
	if r1.Method != "POST" || r1.Host != "other.example.com" || r1.Tokens != nil || r1.Expect != ExpectDeny {
		t.Errorf("requests[1] = %+v", r1)
	}
	if m.Flood == nil || m.Flood.Rate != 100 || m.Flood.Requests[0].Tokens != r0.Tokens {
		t.Errorf("flood = %+v", m.Flood)
	}

	_, err = loadMix(write("bad.yaml", `requests:
  - { path: /x, tokens: missing, expect: maybe }
  - { method: GET }
tokens:
  empty: { file: absent.txt }
  good: { file: good.txt, order: shuffled }
`))
	if err == nil {
		t.Fatal("a bad mix loaded")
	}
	for _, want := range []string{`no token pool "missing"`, `"maybe"`, "the path is required", "absent.txt", `"shuffled"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:9001", "[::1]:9001", "localhost:9001", "127.8.9.10:1"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for _, addr := range []string{"10.0.0.1:9001", "example.com:9001", "0.0.0.0:9001", ":9001", "127.0.0.1"} {
		if err := checkLoopback(addr); err == nil {
			t.Errorf("%s was accepted", addr)
		}
	}
}
