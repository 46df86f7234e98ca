package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scopegate/scopegate/internal/testutil"
)

// closedWithin reads from conn until the server closes it, and fails the
// test if that takes longer than bound.
func closedWithin(t *testing.T, conn net.Conn, bound time.Duration, what string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(bound))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the server still held the connection after %v", what, bound)
	}
}

// TestServeDropsClientsThatDoNotFinishConnecting pins that no listener of
// the real binary lets a client hold a connection by never finishing its
// handshake: the headers of its first request, or its HTTP/2 preface.
func TestServeDropsClientsThatDoNotFinishConnecting(t *testing.T) {
	bin := buildBinary(t)
	idp := testutil.NewIdP(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"policy.yaml": opsPolicy,
		"config.yaml": fmt.Sprintf(`listen: { grpc: 127.0.0.1:0, admin: 127.0.0.1:0, http: 127.0.0.1:0 }
issuers:
  - issuer: %s
    jwks_uri: %s
policy: { file: policy.yaml }
`, idp.Issuer(), idp.JWKSURL()),
	})
	s := startServer(t, bin, filepath.Join(dir, "config.yaml"))
	for _, l := range []struct{ name, addr, partial string }{
		{"listen.grpc", s.grpc, "PRI * HTTP/2.0\r\n"},
		{"listen.admin", s.admin, "GET /healthz HTTP/1.1\r\nHost: scopegate\r\n"},
		{"listen.http", s.web, "GET /nginx HTTP/1.1\r\nHost: scopegate\r\n"},
	} {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", l.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, l.partial); err != nil {
				t.Fatal(err)
			}
			closedWithin(t, conn, 6*handshakeTimeout, "a client that stopped halfway through connecting")
		})
	}
}

// TestListenerTimeoutsDropSlowAndIdleClients pins each timeout of the HTTP
// listeners, on the server they are built with. Each case shortens only
// its own timeout, so that the test need not wait for the real one, and
// none of the others can end the connection for it.
func TestListenerTimeoutsDropSlowAndIdleClients(t *testing.T) {
	long := serverTimeouts{readHeader: time.Minute, read: time.Minute, write: time.Minute, idle: time.Minute}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		io.WriteString(w, "ok\n")
	})
	tests := []struct {
		name    string
		shorten func(*serverTimeouts)
		send    func(t *testing.T, conn net.Conn)
	}{
		{"headers sent slowly", func(s *serverTimeouts) { s.readHeader = 50 * time.Millisecond }, func(t *testing.T, conn net.Conn) {
			io.WriteString(conn, "GET / HTTP/1.1\r\nHost: scopegate\r\n")
		}},
		{"a body that does not come", func(s *serverTimeouts) { s.read = 200 * time.Millisecond }, func(t *testing.T, conn net.Conn) {
			io.WriteString(conn, "POST / HTTP/1.1\r\nHost: scopegate\r\nContent-Length: 100\r\n\r\nabc")
		}},
		{"idle after a request", func(s *serverTimeouts) { s.idle = 50 * time.Millisecond }, func(t *testing.T, conn net.Conn) {
			io.WriteString(conn, "GET / HTTP/1.1\r\nHost: scopegate\r\n\r\n")
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer to a whole request: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Close {
				t.Fatalf("got %d (close %v), want 200 on a connection kept alive", resp.StatusCode, resp.Close)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeouts := long
			tt.shorten(&timeouts)
			srv := timeouts.server(handler, slog.New(slog.NewTextHandler(io.Discard, nil)))
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(lis)
			defer srv.Close()
			conn, err := net.Dial("tcp", lis.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			tt.send(t, conn)
			closedWithin(t, conn, 10*time.Second, tt.name)
		})
	}
}

func TestEveryListenerHasEveryTimeout(t *testing.T) {
	for _, tt := range []struct {
		name     string
		t        serverTimeouts
		minWrite time.Duration // the longest answer the listener writes
	}{
		{"listen.http, default check deadline", httpTimeouts(0), 200 * time.Millisecond},
		{"listen.http, a long check deadline", httpTimeouts(30 * time.Second), 30 * time.Second},
		{"listen.admin", adminTimeouts, 30 * time.Second}, // pprof's default CPU profile
	} {
		srv := tt.t.server(http.NotFoundHandler(), slog.New(slog.NewTextHandler(os.Stderr, nil)))
		if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.IdleTimeout <= 0 {
			t.Errorf("%s: read header %v, read %v, idle %v: a client could hold a connection forever", tt.name, srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout)
		}
		if srv.WriteTimeout <= tt.minWrite {
			t.Errorf("%s: write timeout %v cuts off an answer that takes %v", tt.name, srv.WriteTimeout, tt.minWrite)
		}
	}
}
