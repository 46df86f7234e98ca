package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// grants is a Verifier for which every token is valid with the scope s0.
type grants struct{}

func (grants) Verify(context.Context, string) (*authz.Claims, error) {
	return &authz.Claims{ClientID: "c", Subject: "c", Scopes: []string{"s0"}}, nil
}

// generation returns valid policy file number i: its one route, g<i>,
// requires s0 when i is even and s1 when it is odd.
func generation(i int) string {
	return fmt.Sprintf("version: 1\nroutes:\n  - name: g%d\n    match: { path: \"/**\" }\n    require: { scopes: { all_of: [s%d] } }\n", i, i%2)
}

// TestReloadUnderLoad rewrites the policy file many times, valid and
// invalid versions alternating, while checks run, and asserts that every
// decision is the one of a valid version, made whole by that version.
func TestReloadUnderLoad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(generation(0)), 0o644); err != nil {
		t.Fatal(err)
	}
	first, err := policy.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	// What each valid version decides for the checks below.
	type outcome struct {
		route string
		allow bool
	}
	valid := map[string]outcome{first.Version: {"g0", true}}
	const generations = 20
	for i := 1; i <= generations; i++ {
		p, err := policy.Parse(file, []byte(generation(i)))
		if err != nil {
			t.Fatal(err)
		}
		valid[p.Version] = outcome{fmt.Sprint("g", i), i%2 == 0}
	}
	last, _ := policy.Parse(file, []byte(generation(generations)))

	a := authz.New(first, grants{}, authz.Options{})
	ps := newPolicyState(a, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w := &policy.Watcher{File: file, Version: first.Version, Debounce: 5 * time.Millisecond, OnChange: ps.changed}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)

	var (
		stop    atomic.Bool
		checks  atomic.Int64
		wg      sync.WaitGroup
		badOnce sync.Once
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &authz.Request{Method: "GET", Host: "api.example.com", Path: "/orders/1", Authorization: "Bearer t"}
			for !stop.Load() {
				d := a.Check(context.Background(), r)
				checks.Add(1)
				want, ok := valid[d.PolicyVersion]
				if !ok || d.Route != want.route || d.Allow != want.allow || d.Reason == authz.ReasonInternal {
					badOnce.Do(func() {
						t.Errorf("decision %+v matches no valid policy version (want, for its version: %+v, known: %v)", d, want, ok)
					})
				}
			}
		}()
	}

	for i := 1; i <= generations; i++ {
		write := func(content string) {
			// Half are written in place, half by rename, as editors do.
			if i%2 == 0 {
				if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
					t.Error(err)
				}
				return
			}
			tmp := file + ".tmp"
			if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
				t.Error(err)
			}
			if err := os.Rename(tmp, file); err != nil {
				t.Error(err)
			}
		}
		write(fmt.Sprintf("version: 1\nroutes:\n  - name: broken%d\n    match: { path: \"/**\" }\n    publik: true\n", i))
		time.Sleep(40 * time.Millisecond)
		write(generation(i))
		time.Sleep(40 * time.Millisecond)
	}
	for deadline := time.Now().Add(testutil.WaitTimeout); a.Policy().Version != last.Version; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("policy version %s after the last write, want %s", a.Policy().Version, last.Version)
		}
	}
	stop.Store(true)
	testutil.Wait(t, &wg, testutil.WaitTimeout, "the checks during the reloads")

	if checks.Load() < generations {
		t.Errorf("only %d checks ran", checks.Load())
	}
	if ps.ok.Load() == 0 || ps.failed.Load() == 0 {
		t.Errorf("reloads: %d ok, %d failed; want some of each", ps.ok.Load(), ps.failed.Load())
	}
}

// TestAdminAfterAFailedReload checks what the admin endpoints say when the
// last reload failed: the last good policy at /policy with the error, and
// /readyz still ready.
func TestAdminAfterAFailedReload(t *testing.T) {
	first, err := policy.Parse("policy.yaml", []byte(generation(0)))
	if err != nil {
		t.Fatal(err)
	}
	a := authz.New(first, grants{}, authz.Options{})
	ps := newPolicyState(a, slog.New(slog.NewTextHandler(io.Discard, nil)))
	next, _ := policy.Parse("policy.yaml", []byte(generation(1)))
	ps.changed(next, nil)
	_, bad := policy.Parse("policy.yaml", []byte("version: 1\nroutes:\n  - name: x\n    publik: true\n"))
	ps.changed(nil, bad)

	var draining atomic.Bool
	// A verifier without JWT issuers is ready: only the reload is tested.
	srv := httptest.NewServer(adminMux(&verifier{}, &draining, ps, false))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d after a failed reload, want 200", resp.StatusCode)
	}

	resp, err = http.Get(srv.URL + "/policy")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		File          string    `json:"file"`
		Version       string    `json:"version"`
		LoadedAt      time.Time `json:"loaded_at"`
		ReloadsOK     int64     `json:"reloads_ok"`
		ReloadsFailed int64     `json:"reloads_failed"`
		LastError     string    `json:"last_error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Type") != "application/json" || got.File != "policy.yaml" || got.Version != next.Version ||
		got.LoadedAt.IsZero() || got.ReloadsOK != 1 || got.ReloadsFailed != 1 || got.LastError != bad.Error() {
		t.Errorf("/policy = %+v, want version %s, 1 reload ok, 1 failed with %q", got, next.Version, bad)
	}
}

// syncBuffer is a bytes.Buffer that a process can write while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServeReloadsThePolicy runs the binary: an edit of the policy file is
// served without a restart, an invalid edit is logged with its line and
// keeps the last good policy, and SIGHUP reloads.
func TestServeReloadsThePolicy(t *testing.T) {
	bin := buildBinary(t)
	idp := testutil.NewIdP(t)
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(generation(0)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("issuers:\n  - issuer: %s\n    jwks_uri: %s\npolicy: { file: policy.yaml }\n", idp.Issuer(), idp.JWKSURL())), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfg, "--grpc", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	// waitFor polls until cond holds on the server's log.
	waitFor := func(what string, cond func(log string) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(stderr.String()); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 10s; log:\n%s", what, stderr.String())
			}
		}
	}
	waitFor("start", func(log string) bool { return strings.Contains(log, "scopegate serving") })
	admin := field(t, stderr.String(), `admin=(\S+)`)
	type status struct {
		Version       string `json:"version"`
		ReloadsOK     int64  `json:"reloads_ok"`
		ReloadsFailed int64  `json:"reloads_failed"`
		LastError     string `json:"last_error"`
	}
	get := func() status {
		t.Helper()
		resp, err := http.Get("http://" + admin + "/policy")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s status
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	waitUntil := func(what string, cond func(status) bool) status {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if s := get(); cond(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 10s: /policy = %+v; log:\n%s", what, get(), stderr.String())
			}
		}
	}

	next, _ := policy.Parse(policyFile, []byte(generation(1)))
	if err := os.WriteFile(policyFile, []byte(generation(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil("reload of the edit", func(s status) bool { return s.Version == next.Version && s.ReloadsOK == 1 })

	if err := os.WriteFile(policyFile, []byte("version: 1\nroutes:\n  - name: x\n    publik: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := waitUntil("failed reload", func(s status) bool { return s.ReloadsFailed == 1 })
	if s.Version != next.Version || !strings.Contains(s.LastError, policyFile+":4:5") {
		t.Errorf("after an invalid edit: /policy = %+v, want version %s and the error at line 4", s, next.Version)
	}
	waitFor("failure log line", func(log string) bool { return strings.Contains(log, "policy reload failed") })
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d after a failed reload, want 200", resp.StatusCode)
	}

	if err := os.WriteFile(policyFile, []byte(generation(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil("reload of the fix", func(s status) bool { return s.ReloadsOK == 2 && s.LastError == "" })
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil("reload on SIGHUP", func(s status) bool { return s.ReloadsOK == 3 && s.Version == next.Version })
}

func TestProfilesAreServedOnlyWhenAskedFor(t *testing.T) {
	p, err := policy.Parse("policy.yaml", []byte(generation(0)))
	if err != nil {
		t.Fatal(err)
	}
	ps := newPolicyState(authz.New(p, grants{}, authz.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tt := range []struct {
		pprof bool
		want  int
	}{{false, http.StatusNotFound}, {true, http.StatusOK}} {
		var draining atomic.Bool
		srv := httptest.NewServer(adminMux(&verifier{}, &draining, ps, tt.pprof))
		resp, err := http.Get(srv.URL + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("with pprof %v: /debug/pprof/goroutine = %d, want %d", tt.pprof, resp.StatusCode, tt.want)
		}
	}
}
