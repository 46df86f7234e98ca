package main

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/scopegate/scopegate/internal/devidp"
)

// Report is what a suite measured, as performance.json holds it: the
// source of performance.md and its chart.
type Report struct {
	Date     time.Time `json:"date"`
	Machine  Machine   `json:"machine"`
	Command  string    `json:"command"`
	Revision string    `json:"revision,omitempty"`
	// SigVerify is the CPU time of one signature verification, by
	// algorithm, in microseconds, measured by the harness.
	SigVerify map[string]float64 `json:"sig_verify_us"`
	Scenarios []ScenarioInfo     `json:"scenarios"` // in the order they ran
	Results   []*Result          `json:"results"`
	Memory    *MemoryResult      `json:"memory,omitempty"`
	GoBench   []GoBench          `json:"go_bench,omitempty"`
	// Skipped lists the scenarios that were not measured, and why.
	Skipped []string `json:"skipped,omitempty"`
}

// Machine describes where a suite ran.
type Machine struct {
	CPU     string `json:"cpu"`
	Cores   int    `json:"cores"`
	OS      string `json:"os"`
	Kernel  string `json:"kernel,omitempty"`
	Go      string `json:"go"`
	LoadAvg string `json:"load_avg,omitempty"` // when the suite started
}

// ScenarioInfo describes a scenario for the report.
type ScenarioInfo struct {
	Name  string `json:"name"`
	Group string `json:"group"`
	Title string `json:"title"`
	Note  string `json:"note,omitempty"`
	// What the targets of the report need to know.
	Warm   bool   `json:"warm,omitempty"`   // a warm token cache
	Redis  bool   `json:"redis,omitempty"`  // tokens found in Redis
	Alg    string `json:"alg,omitempty"`    // every token unique, signed with Alg
	Routes int    `json:"routes,omitempty"` // the policy's size
}

// The groups of scenarios, each a table of the report.
const (
	groupJWT    = "Floor and JWT"
	groupOpaque = "Opaque tokens"
	groupDeny   = "Denials"
	groupPolicy = "Policy size"
	groupMemory = "Memory"
)

// MemoryResult is scopegate's memory before and after caching Tokens
// distinct tokens.
type MemoryResult struct {
	Tokens    int   `json:"tokens"`
	Sent      int64 `json:"sent"` // checks measured; the rest ran before the window
	RSSBefore int64 `json:"rss_before_bytes"`
	RSSAfter  int64 `json:"rss_after_bytes"`
}

// GoBench is one line of `go test -bench -benchmem` output.
type GoBench struct {
	Name        string  `json:"name"`
	NsPerOp     float64 `json:"ns_per_op"`
	BytesPerOp  int64   `json:"bytes_per_op"`
	AllocsPerOp int64   `json:"allocs_per_op"`
}

// parseGoBench reads the benchmark lines of `go test -bench -benchmem`
// output, such as
//
//	BenchmarkCheck/cached-2  	  912345	      1311 ns/op	     480 B/op	       9 allocs/op
func parseGoBench(r io.Reader) ([]GoBench, error) {
	var out []GoBench
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		b := GoBench{Name: f[0]}
		// The name ends with -GOMAXPROCS, which is not part of it.
		if i := strings.LastIndexByte(b.Name, '-'); i > 0 {
			if _, err := strconv.Atoi(b.Name[i+1:]); err == nil {
				b.Name = b.Name[:i]
			}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, unit := f[i], f[i+1]
			var err error
			switch unit {
			case "ns/op":
				b.NsPerOp, err = strconv.ParseFloat(v, 64)
			case "B/op":
				b.BytesPerOp, err = strconv.ParseInt(v, 10, 64)
			case "allocs/op":
				b.AllocsPerOp, err = strconv.ParseInt(v, 10, 64)
			}
			if err != nil {
				return nil, fmt.Errorf("%q: %s: %w", sc.Text(), unit, err)
			}
		}
		out = append(out, b)
	}
	return out, sc.Err()
}

// writeJSON writes r to name.
func (r *Report) writeJSON(name string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(name, append(b, '\n'), 0o644)
}

// readReport reads a report that writeJSON wrote.
func readReport(name string) (*Report, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &r, nil
}

// sigVerifySpan is how long the harness verifies signatures of each
// algorithm to measure them: /proc counts CPU time in 10 ms ticks.
const sigVerifySpan = 500 * time.Millisecond

// sigVerifyCost measures the CPU time of one signature verification of
// each of the harness's algorithms, in microseconds, as a token verifier
// makes it: the unit of the target for unique tokens.
func sigVerifyCost() (map[string]float64, error) {
	digest := sha256.Sum256([]byte("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJiZW5jaCJ9"))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	rsaSig, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, digest[:])
	if err != nil {
		return nil, err
	}
	ecSig, err := ecdsa.SignASN1(rand.Reader, ecKey, digest[:])
	if err != nil {
		return nil, err
	}
	edSig := ed25519.Sign(edKey, digest[:])
	verify := map[string]func() bool{
		devidp.RS256: func() bool { return rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, digest[:], rsaSig) == nil },
		devidp.ES256: func() bool { return ecdsa.VerifyASN1(&ecKey.PublicKey, digest[:], ecSig) },
		devidp.EdDSA: func() bool { return ed25519.Verify(edKey.Public().(ed25519.PublicKey), digest[:], edSig) },
	}
	cost := make(map[string]float64, len(verify))
	pid := os.Getpid()
	for alg, v := range verify {
		before, err := cpuTime(pid)
		if err != nil {
			return nil, err
		}
		n := 0
		for start := time.Now(); time.Since(start) < sigVerifySpan; n++ {
			if !v() {
				return nil, errors.New("a " + alg + " signature did not verify")
			}
		}
		after, err := cpuTime(pid)
		if err != nil {
			return nil, err
		}
		cost[alg] = float64((after - before).Microseconds()) / float64(n)
	}
	return cost, nil
}
