//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// running holds the process groups that the suite started and has not
// stopped yet, so that an interrupt stops them too: each runs in a group
// of its own, which the terminal's Ctrl-C does not reach.
var running = struct {
	sync.Mutex
	pgids map[int]bool
}{pgids: map[int]bool{}}

// killGroup kills the process group pgid with everything in it.
func killGroup(pgid int) {
	syscall.Kill(-pgid, syscall.SIGKILL)
}

// stopOnInterrupt makes an interrupt or a SIGTERM kill every process
// group still running and remove dir before the test binary exits.
func stopOnInterrupt(dir string) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-c
		// The lock stays held until the exit, so that no test starts
		// another process meanwhile.
		running.Lock()
		for pgid := range running.pgids {
			killGroup(pgid)
		}
		os.RemoveAll(dir)
		fmt.Fprintf(os.Stderr, "e2e: %v: stopped the processes the suite started\n", sig)
		os.Exit(1)
	}()
}

// process is a program the suite runs, with its output in a log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string        // the file holding its stdout and stderr
	done chan struct{} // closed when it has exited
}

// start runs bin with args as a process group of its own, with the
// environment env, or the suite's own if env is nil. The group is killed
// when the test ends, and the log is shown if the test failed.
func start(t *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	out, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = sysProcAttr()
	running.Lock()
	err = p.cmd.Start()
	if err == nil {
		running.pgids[p.cmd.Process.Pid] = true
	}
	running.Unlock()
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.output())
		}
	})
	return p
}

// stop kills the process group and waits for the process to exit.
func (p *process) stop() {
	pgid := p.cmd.Process.Pid
	running.Lock()
	if running.pgids[pgid] {
		killGroup(pgid)
		delete(running.pgids, pgid)
	}
	running.Unlock()
	<-p.done
}

// output returns what the process has written so far.
func (p *process) output() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// waitOutput waits until the process has written s, failing the test if
// it takes longer than timeout.
func (p *process) waitOutput(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !strings.Contains(p.output(), s); {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %v", p.name, s, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady waits until url answers 200 OK, failing the test if p exits
// first or it takes longer than timeout.
func (p *process) waitReady(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before %s answered: %v", p.name, url, p.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not answer 200 OK within %v: %v", p.name, url, timeout, err)
		}
	}
}

// freeAddr returns a loopback address whose port is free now, for a
// process that must be told its address before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
