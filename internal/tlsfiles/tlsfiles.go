// Package tlsfiles serves TLS from PEM files that may be replaced while the
// server runs, as certificate managers and Kubernetes secret volumes do.
// New handshakes use the files as they are; connections already made keep
// the certificate they were made with.
//
// The files are read again at most once per interval, by a handshake,
// rather than watched: there is no goroutine to stop, and a rename, a
// symlink swap or an in-place write are all seen the same way, by their
// content. A set of files that does not load, such as a certificate whose
// key is not written yet, is reported and skipped: the last good set keeps
// serving.
package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is the least time between two reads of the files when
// NewServer is given none.
const DefaultInterval = 5 * time.Second

// Files names the PEM files of a TLS server.
type Files struct {
	CertFile string `yaml:"cert_file"` // the certificate chain, leaf first
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, holds the CAs that sign client
	// certificates: clients must present one (mutual TLS).
	ClientCAFile string `yaml:"client_ca_file"`
}

// Server is the TLS configuration of a server, read from Files and read
// again when they change. It is safe for concurrent use.
type Server struct {
	files    Files
	interval time.Duration
	log      *slog.Logger

	cur  atomic.Pointer[loaded]
	next atomic.Int64 // when the files may be read again, in Unix nanoseconds

	mu      sync.Mutex // held by the handshake that reads the files
	lastErr string     // why they last failed to load, to report it once
}

// loaded is one set of files and the configuration made of it.
type loaded struct {
	cert, key, ca []byte
	config        *tls.Config
}

// NewServer reads f and returns a Server that reads it again, when a
// handshake comes, at most once per interval (DefaultInterval when zero or
// less). Failures to read the files again go to log, nil meaning
// slog.Default().
func NewServer(f Files, interval time.Duration, log *slog.Logger) (*Server, error) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{files: f, interval: interval, log: log}
	l, err := s.load(nil)
	if err != nil {
		return nil, err
	}
	s.cur.Store(l)
	s.next.Store(time.Now().Add(interval).UnixNano())
	return s, nil
}

// Config returns a server configuration whose handshakes use the files as
// they are, offering nextProtos for ALPN ("h2" for gRPC).
func (s *Server) Config(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := s.current().config.Clone()
			c.NextProtos = nextProtos
			return c, nil
		},
	}
}

// NotAfter returns when the certificate that new handshakes get expires.
func (s *Server) NotAfter() time.Time {
	return s.current().config.Certificates[0].Leaf.NotAfter
}

// current returns the set in use, reading the files again first if the
// interval has passed and no other handshake is reading them.
func (s *Server) current() *loaded {
	l := s.cur.Load()
	if time.Now().UnixNano() < s.next.Load() || !s.mu.TryLock() {
		return l
	}
	defer s.mu.Unlock()
	s.next.Store(time.Now().Add(s.interval).UnixNano())
	l = s.cur.Load()
	n, err := s.load(l)
	if err != nil {
		if err.Error() != s.lastErr {
			s.log.Error("tls: cannot load the changed certificate files; the last good ones keep serving", "err", err)
			s.lastErr = err.Error()
		}
		return l
	}
	s.lastErr = ""
	if n != l {
		s.cur.Store(n)
		s.log.Info("tls: loaded new certificate files", "cert_file", s.files.CertFile,
			"not_after", n.config.Certificates[0].Leaf.NotAfter)
	}
	return n
}

// load reads the files and returns the set they make: prev when they have
// not changed since prev was loaded. Its error, an Errors, lists every
// problem of the files, not only the first.
func (s *Server) load(prev *loaded) (*loaded, error) {
	var l loaded
	var errs Errors
	fail := func(field string, err error) { errs = append(errs, &FileError{Field: field, Err: err}) }
	var certErr, keyErr, caErr error
	if l.cert, certErr = os.ReadFile(s.files.CertFile); certErr != nil {
		fail("cert_file", certErr)
	}
	if l.key, keyErr = os.ReadFile(s.files.KeyFile); keyErr != nil {
		fail("key_file", keyErr)
	}
	if s.files.ClientCAFile != "" {
		if l.ca, caErr = os.ReadFile(s.files.ClientCAFile); caErr != nil {
			fail("client_ca_file", caErr)
		}
	}
	if errs == nil && prev != nil && bytes.Equal(l.cert, prev.cert) && bytes.Equal(l.key, prev.key) && bytes.Equal(l.ca, prev.ca) {
		return prev, nil
	}
	if certErr == nil {
		certErr = checkChain(s.files.CertFile, l.cert)
		if certErr != nil {
			fail("cert_file", certErr)
		}
	}
	var cert tls.Certificate
	if certErr == nil && keyErr == nil {
		// The chain is sound, so what X509KeyPair finds is the key's.
		var err error
		if cert, err = tls.X509KeyPair(l.cert, l.key); err != nil {
			fail("key_file", fmt.Errorf("%s and %s: %w", s.files.CertFile, s.files.KeyFile, err))
		}
	}
	var pool *x509.CertPool
	if s.files.ClientCAFile != "" && caErr == nil {
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(l.ca) {
			fail("client_ca_file", fmt.Errorf("%s: no PEM certificate in it", s.files.ClientCAFile))
		}
	}
	if errs != nil {
		order := []string{"cert_file", "key_file", "client_ca_file"}
		slices.SortStableFunc(errs, func(a, b *FileError) int {
			return slices.Index(order, a.Field) - slices.Index(order, b.Field)
		})
		return nil, errs
	}
	l.config = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if pool != nil {
		l.config.ClientCAs = pool
		l.config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return &l, nil
}

// checkChain returns why the PEM data of the certificate file named file
// is not a certificate chain, or nil.
func checkChain(file string, data []byte) error {
	n := 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("%s: certificate %d: %w", file, n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return nil
}

// FileError is a problem with one of the files of Files.
type FileError struct {
	Field string // the setting naming the file: cert_file, key_file or client_ca_file
	Err   error
}

func (e *FileError) Error() string { return "tls: " + e.Field + ": " + e.Err.Error() }

func (e *FileError) Unwrap() error { return e.Err }

// Errors lists every problem of a set of Files, so that all are fixed in
// one pass.
type Errors []*FileError

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Pool returns the certificates of the PEM bundle in file, to verify
// servers with instead of the system's pool.
func Pool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New(file + ": no PEM certificate in it")
	}
	return pool, nil
}
