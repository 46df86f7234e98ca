package main

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/scopegate/scopegate/internal/devidp"
)

// What the harness's tokens say: a client with the scopes that the routes
// of the harness's policies require, for the audience its configs accept.
const (
	benchClient   = "bench-client"
	benchAudience = "bench-api"
)

var benchScopes = []string{"orders:read", "bench:read"}

// tokenTTL is the lifetime of the harness's tokens: longer than any run,
// so that none expires while it is measured.
const tokenTTL = 12 * time.Hour

// issuer is the harness's own token issuer: fresh keys at every start,
// and their JWKS served on loopback, so that scopegate can be configured
// to trust it.
type issuer struct {
	idp *devidp.IdP
	// forger holds other keys, to sign tokens whose signatures do not
	// verify with the keys their kid names.
	forger *devidp.IdP
	srv    *http.Server
	url    string
}

// startIssuer serves a new issuer's JWKS on addr, a loopback address; its
// URL, http://addr, is the iss of its tokens.
func startIssuer(addr string) (*issuer, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	is := &issuer{url: "http://" + lis.Addr().String()}
	is.idp, err = devidp.New(devidp.Config{Issuer: is.url, TTL: tokenTTL})
	if err == nil {
		is.forger, err = devidp.New(devidp.Config{Issuer: is.url, TTL: tokenTTL})
	}
	if err != nil {
		lis.Close()
		return nil, err
	}
	is.srv = &http.Server{Handler: is.idp.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go is.srv.Serve(lis)
	return is, nil
}

// jwksURL returns the URL of the issuer's JWKS.
func (is *issuer) jwksURL() string { return is.url + devidp.JWKSPath }

// Close stops serving the JWKS.
func (is *issuer) Close() error { return is.srv.Close() }

// tokenKind says what a minted token is good for.
type tokenKind int

const (
	validToken   tokenKind = iota
	badSignature           // names the issuer's key, signed by another
	unknownKey             // names a key the issuer never had
)

// mint returns n distinct tokens of kind signed with alg (devidp.RS256,
// ES256 or EdDSA). It signs on every core: an RS256 signature takes about
// a millisecond to make.
func (is *issuer) mint(ctx context.Context, n int, alg string, kind tokenKind) ([]string, error) {
	tokens := make([]string, n)
	g, ctx := errgroup.WithContext(ctx)
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		g.Go(func() error {
			for i := w; i < n; i += workers {
				if err := ctx.Err(); err != nil {
					return err
				}
				tok, err := is.mintOne(alg, kind)
				if err != nil {
					return err
				}
				tokens[i] = tok
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return tokens, nil
}

func (is *issuer) mintOne(alg string, kind tokenKind) (string, error) {
	claims := is.idp.Claims(benchClient, benchScopes, []string{benchAudience})
	switch kind {
	case validToken:
		return is.idp.Mint(claims, devidp.Signing{Alg: alg})
	case badSignature:
		return is.forger.Mint(claims, devidp.Signing{Alg: alg, Header: map[string]any{"kid": is.idp.KeyID(alg)}})
	case unknownKey:
		return is.idp.Mint(claims, devidp.Signing{Alg: alg, Header: map[string]any{"kid": rand.Text()}})
	}
	return "", errors.New("unknown token kind")
}
