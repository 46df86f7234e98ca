package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const redisMissing = "redis-server not found: install it with apt-get install redis-server"

var sharedRedis struct {
	once sync.Once
	addr string
	err  error
}

// Redis returns the address of a Redis server that the tests of this
// binary share: REDIS_ADDR (default 127.0.0.1:6379) if it answers PING,
// else a redis-server started for this binary, which ends with it. Tests
// sharing it must keep to keys of their own and never flush it. Redis fails
// the test when there is no Redis to be had.
func Redis(t testing.TB) string {
	t.Helper()
	sharedRedis.once.Do(func() {
		addr := os.Getenv("REDIS_ADDR")
		if addr == "" {
			addr = "127.0.0.1:6379"
		}
		if redisPing(addr) == nil {
			sharedRedis.addr = addr
			return
		}
		var s *redisProcess
		s, sharedRedis.err = startRedisProcess(redisFreePort, "")
		if s != nil {
			sharedRedis.addr = s.addr
		}
	})
	if sharedRedis.err != nil {
		t.Fatalf("shared Redis: %v", sharedRedis.err)
	}
	return sharedRedis.addr
}

// RedisServer is a private redis-server that a test can stop and start
// again on the same port, to see its clients lose Redis and find it again.
// It holds nothing on disk: a restart empties it.
type RedisServer struct {
	Addr string
	t    testing.TB
	mu   sync.Mutex
	p    *redisProcess // nil while stopped
}

// StartRedis starts a private redis-server on a free port and stops it when
// the test ends.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	p, err := startRedisProcess(redisFreePort, "")
	if err != nil {
		t.Fatalf("StartRedis: %v", err)
	}
	s := &RedisServer{Addr: p.addr, t: t, p: p}
	t.Cleanup(s.Stop)
	return s
}

// Stop kills the server. Stopping a stopped server does nothing.
func (s *RedisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		s.p.stop()
		s.p = nil
	}
}

// Start starts the stopped server again on its port.
func (s *RedisServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		return
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	p, err := startRedisProcess(func() (string, error) { return port, nil }, "")
	if err != nil {
		s.t.Fatalf("RedisServer.Start: %v", err)
	}
	s.p = p
}

// Pause freezes the server (SIGSTOP): connections still open, but nothing
// is answered, as with a Redis stuck or far away.
func (s *RedisServer) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused server go on (SIGCONT).
func (s *RedisServer) Resume() { s.signal(syscall.SIGCONT) }

func (s *RedisServer) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil {
		s.t.Fatalf("RedisServer: %v to a stopped server", sig)
	}
	if err := s.p.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("RedisServer: %v: %v", sig, err)
	}
}

// RedisCluster starts a Redis Cluster of three masters on free ports for
// the test and returns their addresses once the cluster serves every slot.
// The servers are killed when the test ends.
func RedisCluster(t testing.TB) []string {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found: install it with apt-get install redis-tools")
	}
	dir := t.TempDir()
	addrs := make([]string, 3)
	for i := range addrs {
		nodeDir := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(nodeDir, 0o755); err != nil {
			t.Fatal(err)
		}
		p, err := startRedisProcess(redisClusterFreePort, nodeDir,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		if err != nil {
			t.Fatalf("RedisCluster: %v", err)
		}
		t.Cleanup(p.stop)
		addrs[i] = p.addr
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range addrs {
		host, port, _ := net.SplitHostPort(addr)
		for {
			out, err := exec.Command(cli, "-h", host, "-p", port, "cluster", "info").Output()
			if err == nil && bytes.Contains(out, []byte("cluster_state:ok")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("RedisCluster: %s is not cluster_state:ok after 10s:\n%s", addr, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return addrs
}

// redisProcess is a running redis-server.
type redisProcess struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has ended
}

// startRedisProcess starts redis-server on 127.0.0.1 at the port port
// returns, in dir (the system's temporary folder when empty), keeping
// nothing on disk, and waits until it answers PING. It tries three ports
// before giving up, since a free port may be taken before the server binds
// it.
func startRedisProcess(port func() (string, error), dir string, args ...string) (*redisProcess, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New(redisMissing)
	}
	if dir == "" {
		dir = os.TempDir()
	}
	var lastErr error
	for range 3 {
		p, err := port()
		if err != nil {
			return nil, err
		}
		s, err := runRedis(bin, dir, "127.0.0.1:"+p, append([]string{"--port", p, "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--loglevel", "warning"}, args...))
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func runRedis(bin, dir, addr string, args []string) (*redisProcess, error) {
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	// The kernel kills the server when the thread that started it ends, so
	// that no server outlives its test binary, even one that panics or is
	// killed. Go ends a thread only when a goroutine locked to it exits:
	// lock this one until the server is gone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s := &redisProcess{addr: addr, cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting redis-server: %w", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := redisPing(s.addr)
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("redis-server on %s exited: %s", s.addr, bytes.TrimSpace(out.Bytes()))
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("redis-server on %s does not answer PING: %v", s.addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the server and waits for it to end.
func (p *redisProcess) stop() {
	p.cmd.Process.Kill()
	<-p.done
}

// redisPing sends PING to the server at addr and checks its answer.
func redisPing(addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	return c.Ping(context.Background()).Err()
}

// redisFreePort returns a TCP port of 127.0.0.1 that is free now.
func redisFreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port, nil
}

// redisClusterFreePort returns a free port whose cluster bus port, 10000
// above it, is free too.
func redisClusterFreePort() (string, error) {
	for range 100 {
		p, err := redisFreePort()
		if err != nil {
			return "", err
		}
		n, _ := strconv.Atoi(p)
		if n+10000 > 65535 {
			continue
		}
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(n+10000)); err == nil {
			l.Close()
			return p, nil
		}
	}
	return "", errors.New("no free port with a free cluster bus port")
}
