package tlsfiles_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/internal/tlsfiles"
)

// interval is the servers' interval: the tests wait twice as long for a
// change to be seen.
const interval = 20 * time.Millisecond

// files is a set of PEM files in a temporary folder.
type files struct {
	tlsfiles.Files
}

func newFiles(t *testing.T) *files {
	dir := t.TempDir()
	return &files{tlsfiles.Files{
		CertFile:     filepath.Join(dir, "tls.crt"),
		KeyFile:      filepath.Join(dir, "tls.key"),
		ClientCAFile: filepath.Join(dir, "ca.crt"),
	}}
}

// write replaces the files as a secret volume does: each is written aside
// and renamed into place.
func (f *files) write(t *testing.T, cert, key, clientCA []byte) {
	t.Helper()
	for name, data := range map[string][]byte{f.CertFile: cert, f.KeyFile: key, f.ClientCAFile: clientCA} {
		if err := os.WriteFile(name+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(name+".tmp", name); err != nil {
			t.Fatal(err)
		}
	}
}

// serve serves an echo over TLS from s until the test ends, and returns
// its address.
func serve(t *testing.T, s *tlsfiles.Server) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", s.Config())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		lis.Close()
		testutil.Wait(t, &wg, testutil.WaitTimeout, "the echo server's connections to close")
	})
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
	return lis.Addr().String()
}

// dial makes a TLS connection to addr that trusts roots and presents cert, if any.
func dial(t *testing.T, addr string, roots *x509.CertPool, cert, key []byte) (*tls.Conn, error) {
	t.Helper()
	conf := &tls.Config{RootCAs: roots}
	if cert != nil {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// echo sends a message on c and reads it back: with TLS 1.3, a server
// refuses a client certificate after the client's handshake is done, and
// the client learns it here.
func echo(c *tls.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := []byte("ping")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func serverName(c *tls.Conn) string {
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestMutualTLSRefusesClientsWithoutAnAcceptedCertificate(t *testing.T) {
	serverCA, clientCA, otherCA := testutil.NewCA(t, "server CA"), testutil.NewCA(t, "client CA"), testutil.NewCA(t, "other CA")
	f := newFiles(t)
	cert, key := serverCA.Issue(t, "scopegate")
	f.write(t, cert, key, clientCA.PEM)
	s, err := tlsfiles.NewServer(f.Files, interval, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s)

	goodCert, goodKey := clientCA.Issue(t, "envoy")
	otherCert, otherKey := otherCA.Issue(t, "intruder")
	tests := []struct {
		name      string
		cert, key []byte
		ok        bool
	}{
		{"no certificate", nil, nil, false},
		{"a certificate of another CA", otherCert, otherKey, false},
		{"a certificate of the client CA", goodCert, goodKey, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := dial(t, addr, serverCA.Pool(), tt.cert, tt.key)
			if err == nil {
				err = echo(c)
			}
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestRotatedFilesServeNewHandshakesWhileOldConnectionsGoOn(t *testing.T) {
	serverCA := testutil.NewCA(t, "server CA")
	oldClientCA, newClientCA := testutil.NewCA(t, "old client CA"), testutil.NewCA(t, "new client CA")
	f := newFiles(t)
	oldCert, oldKey := serverCA.Issue(t, "old")
	f.write(t, oldCert, oldKey, oldClientCA.PEM)
	s, err := tlsfiles.NewServer(f.Files, interval, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s)
	oldClientCert, oldClientKey := oldClientCA.Issue(t, "envoy")
	newClientCert, newClientKey := newClientCA.Issue(t, "envoy")

	before, err := dial(t, addr, serverCA.Pool(), oldClientCert, oldClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := echo(before); err != nil || serverName(before) != "old" {
		t.Fatalf("before the rotation: %v, server %q", err, serverName(before))
	}

	newCert, newKey := serverCA.Issue(t, "new")
	f.write(t, newCert, newKey, newClientCA.PEM)
	time.Sleep(2 * interval)

	after, err := dial(t, addr, serverCA.Pool(), newClientCert, newClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := echo(after); err != nil || serverName(after) != "new" {
		t.Errorf("a new handshake after the rotation: %v, server %q, want the new certificate", err, serverName(after))
	}
	if err := echo(before); err != nil {
		t.Errorf("the connection made before the rotation: %v", err)
	}
	if c, err := dial(t, addr, serverCA.Pool(), oldClientCert, oldClientKey); err == nil && echo(c) == nil {
		t.Error("a client certificate of the replaced client CA is still accepted")
	}
	if got := s.NotAfter(); !got.Equal(leaf(t, newCert).NotAfter) {
		t.Errorf("NotAfter %v, want the new certificate's %v", got, leaf(t, newCert).NotAfter)
	}
}

func TestBrokenFilesKeepTheLastGoodOnesServing(t *testing.T) {
	ca := testutil.NewCA(t, "CA")
	f := newFiles(t)
	goodCert, goodKey := ca.Issue(t, "good")
	f.write(t, goodCert, goodKey, ca.PEM)
	var logs bytes.Buffer
	var mu sync.Mutex
	s, err := tlsfiles.NewServer(f.Files, interval, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s)
	clientCert, clientKey := ca.Issue(t, "envoy")

	// A new certificate whose key is not written yet.
	newCert, _ := ca.Issue(t, "new")
	f.write(t, newCert, goodKey, ca.PEM)
	for range 3 {
		time.Sleep(2 * interval)
		c, err := dial(t, addr, ca.Pool(), clientCert, clientKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := echo(c); err != nil || serverName(c) != "good" {
			t.Fatalf("while the files are broken: %v, server %q, want the last good certificate", err, serverName(c))
		}
	}
	mu.Lock()
	n := strings.Count(logs.String(), "cannot load the changed certificate files")
	mu.Unlock()
	if n != 1 {
		t.Errorf("the broken files were reported %d times, want once:\n%s", n, logs.String())
	}
}

func TestNewServerNamesTheFileThatFails(t *testing.T) {
	ca := testutil.NewCA(t, "CA")
	cert, key := ca.Issue(t, "scopegate")
	tests := []struct {
		name            string
		cert, key, ca   []byte
		missing, substr string
	}{
		{"missing key", cert, key, ca.PEM, "key", "key_file"},
		{"key of another certificate", cert, func() []byte { _, k := ca.Issue(t, "x"); return k }(), ca.PEM, "", "tls.crt and"},
		{"client CA without a certificate", cert, key, []byte("not PEM"), "", "ca.crt: no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFiles(t)
			f.write(t, tt.cert, tt.key, tt.ca)
			if tt.missing == "key" {
				os.Remove(f.KeyFile)
			}
			_, err := tlsfiles.NewServer(f.Files, 0, nil)
			if err == nil || !strings.Contains(err.Error(), tt.substr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.substr)
			}
		})
	}
}

func leaf(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestNewServerReportsEveryFileThatFails(t *testing.T) {
	ca := testutil.NewCA(t, "CA")
	cert, key := ca.Issue(t, "scopegate")
	_, otherKey := ca.Issue(t, "other")
	type want struct{ field, substr string }
	tests := []struct {
		name          string
		cert, key, ca []byte
		remove        []string // of cert, key, ca
		want          []want   // one per error, in order
	}{
		{"every file missing", nil, nil, nil, []string{"cert", "key", "ca"}, []want{
			{"cert_file", "tls.crt: no such file"}, {"key_file", "tls.key: no such file"}, {"client_ca_file", "ca.crt: no such file"}}},
		{"no certificate, a missing key and a CA that is not PEM", []byte("not PEM"), nil, []byte("not PEM"), []string{"key"}, []want{
			{"cert_file", "tls.crt: no PEM certificate in it"}, {"key_file", "tls.key: no such file"}, {"client_ca_file", "ca.crt: no PEM certificate in it"}}},
		{"a key of another certificate and a CA that is not PEM", cert, otherKey, []byte("not PEM"), nil, []want{
			{"key_file", "tls.crt and "}, {"client_ca_file", "ca.crt: no PEM certificate in it"}}},
		{"a certificate that does not parse and a missing CA", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}), key, nil, []string{"ca"}, []want{
			{"cert_file", "tls.crt: certificate 1: "}, {"client_ca_file", "ca.crt: no such file"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFiles(t)
			f.write(t, tt.cert, tt.key, tt.ca)
			for _, which := range tt.remove {
				os.Remove(map[string]string{"cert": f.CertFile, "key": f.KeyFile, "ca": f.ClientCAFile}[which])
			}
			_, err := tlsfiles.NewServer(f.Files, 0, nil)
			var errs tlsfiles.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %T %v, want tlsfiles.Errors", err, err)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, w := range tt.want {
				if errs[i].Field != w.field || !strings.Contains(errs[i].Err.Error(), w.substr) {
					t.Errorf("error %d = %v, want %s: ...%s...", i, errs[i], w.field, w.substr)
				}
			}
		})
	}
}
