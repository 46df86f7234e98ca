package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/credentials/insecure"

	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
)

// TestServeAnswersChecksWhileNobodyReadsTheAuditLog runs the binary with
// its stdout, where the audit log goes, a pipe that nobody reads, or whose
// reader has gone: checks are answered all the same, the lines that do
// not fit or cannot be written are dropped and counted, and shutdown does
// not wait for the pipe. A reader gone must not end the process with
// SIGPIPE, which would leave Envoy's failure mode to decide.
func TestServeAnswersChecksWhileNobodyReadsTheAuditLog(t *testing.T) {
	bin := buildBinary(t)
	for _, tt := range []struct {
		name     string
		readerOn bool
	}{
		{"unread pipe", true},
		{"pipe whose reader has gone", false},
	} {
		t.Run(tt.name, func(t *testing.T) { auditPipe(t, bin, tt.readerOn) })
	}
}

func auditPipe(t *testing.T, bin string, readerOn bool) {
	insp := testutil.NewIntrospectionServer(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"policy.yaml": opsPolicy,
		"secret":      insp.ClientSecret,
		"config.yaml": fmt.Sprintf(`listen: { grpc: 127.0.0.1:0, admin: 127.0.0.1:0 }
introspection:
  endpoint: %s
  client_id: %s
  client_secret_file: secret
policy: { file: policy.yaml }
`, insp.URL, insp.ClientID),
	})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// The read end stays open, and unread, until the process is gone, or
	// closes once the process has started.
	defer r.Close()
	s := startServerWithStdout(t, bin, filepath.Join(dir, "config.yaml"), w)
	w.Close()
	if !readerOn {
		r.Close()
	}
	c := authClient(t, s.grpc, insecure.NewCredentials())

	// 2,000 denies with lines of more than 1 KiB: more than the pipe and
	// the audit log's queue hold together.
	const workers, each = 8, 250
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		answered int
		failures []string
	)
	for range workers {
		wg.Go(func() {
			headers := map[string]string{"x-request-id": strings.Repeat("r", 1024)}
			for range each {
				resp, err := c.Check(ctx, envoy.CheckRequest("GET", "api.example.com", "/orders/1", headers))
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case resp.GetDeniedResponse().GetStatus().GetCode() != 401:
					failures = append(failures, fmt.Sprintf("answered %v, want a 401", resp))
				default:
					answered++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if answered != workers*each {
		t.Fatalf("%d of %d checks answered within 60s while nobody reads the audit log; first failure: %v\n%s",
			answered, workers*each, failures[:min(len(failures), 1)], s.stderr.String())
	}

	_, mfs := scrapeMetrics(t, s.admin)
	if got := sample(mfs, "scopegate_audit_dropped_lines_total"); got <= 0 {
		t.Errorf("scopegate_audit_dropped_lines_total = %v, want some lines dropped", got)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.stderr.String(), "lines dropped"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for the log to say that audit lines were dropped:\n%s", s.stderr.String())
		}
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM, with an audit log that nobody reads:\n%s", s.stderr.String())
	}
	if readerOn && !strings.Contains(s.stderr.String(), "took no more lines") {
		t.Errorf("the log does not say that the audit lines still waiting at shutdown were dropped:\n%s", s.stderr.String())
	}
}
