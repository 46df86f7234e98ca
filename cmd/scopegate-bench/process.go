package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/scopegate/scopegate/envoy"
)

// stopTimeout is how long a server has to exit after SIGTERM before it is
// killed.
const stopTimeout = 5 * time.Second

// server is a server process that the suite started and measures.
type server struct {
	name string
	cmd  *exec.Cmd
	log  string        // its stdout and stderr
	done chan struct{} // closed when it has exited
}

// startServer starts bin with args, its output going to logFile.
func startServer(name, logFile, bin string, args ...string) (*server, error) {
	out, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	s := &server{name: name, cmd: exec.Command(bin, args...), log: logFile, done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// pid returns the server's process id.
func (s *server) pid() int { return s.cmd.Process.Pid }

// stop asks the server to exit, kills it if it has not within
// stopTimeout, and waits for it.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// waitServing waits until the server answers a CheckRequest on addr, any
// answer: it is then listening and has its keys, if any.
func (s *server) waitServing(ctx context.Context, addr string, timeout time.Duration) error {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	client := authv3.NewAuthorizationClient(cc)
	req := envoy.CheckRequest("GET", benchHost, "/", nil)
	deadline := time.Now().Add(timeout)
	for {
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := client.Check(callCtx, req)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited before it served: %v\n%s", s.name, s.cmd.ProcessState, s.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not serve on %s within %v: %v\n%s", s.name, addr, timeout, err, s.tail())
		}
	}
}

// tail returns the last lines of the server's log, to explain a failure.
func (s *server) tail() string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}
