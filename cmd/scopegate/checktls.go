package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/scopegate/scopegate/internal/tlsfiles"
)

// tlsFlags are check's flags for a listener with tls, and with
// client_ca_file mutual TLS. Any of the files or --server-name means TLS:
// they mean nothing without it.
type tlsFlags struct {
	on                                    bool
	caFile, certFile, keyFile, serverName string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "tls", false, "connect over TLS, verifying the server against the system's CAs or --ca-file (implied by the other TLS flags)")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM bundle of the CAs that verify the server's certificate, instead of the system's")
	fs.StringVar(&f.certFile, "cert-file", "", "client certificate chain (PEM) for mutual TLS, with --key-file")
	fs.StringVar(&f.keyFile, "key-file", "", "the client certificate's private key (PEM)")
	fs.StringVar(&f.serverName, "server-name", "", "the name the server's certificate must have, sent as SNI (default: the host of --addr)")
}

// credentials returns the transport credentials that the flags, parsed
// by fs, ask for: plaintext unless one of them means TLS.
func (f *tlsFlags) credentials(fs *flag.FlagSet) (credentials.TransportCredentials, error) {
	implied := f.caFile != "" || f.certFile != "" || f.keyFile != "" || f.serverName != ""
	switch {
	case !f.on && !implied:
		return insecure.NewCredentials(), nil
	case !f.on && isSet(fs, "tls"):
		return nil, errors.New("--tls=false with --ca-file, --cert-file, --key-file or --server-name, which need TLS")
	case (f.certFile == "") != (f.keyFile == ""):
		return nil, errors.New("--cert-file and --key-file go together: give both for mutual TLS, or neither")
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.serverName}
	if f.caFile != "" {
		pool, err := tlsfiles.Pool(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		conf.RootCAs = pool
	}
	if f.certFile != "" {
		certPEM, err := os.ReadFile(f.certFile)
		if err != nil {
			return nil, fmt.Errorf("--cert-file: %w", err)
		}
		keyPEM, err := os.ReadFile(f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--key-file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("--cert-file %s and --key-file %s: %w", f.certFile, f.keyFile, err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(conf), nil
}

// hint returns a line to add to err, the failure of a check, when it may
// come of a listener's TLS that the flags do not match: gRPC says only
// that the connection failed.
func (f *tlsFlags) hint(err error) string {
	msg := err.Error()
	if status.Code(err) != codes.Unavailable || strings.Contains(msg, "connection refused") {
		return ""
	}
	switch {
	case !f.on && f.caFile == "" && f.certFile == "" && f.serverName == "":
		return "\n  if the listener serves TLS (tls in its config), add --tls and --ca-file"
	case f.certFile == "" && !strings.Contains(msg, "handshake failed"):
		return "\n  if the listener requires client certificates (tls.client_ca_file), add --cert-file and --key-file"
	}
	return ""
}
