package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scopegate/scopegate/internal/devidp"
)

// setupOptions configures -setup.
type setupOptions struct {
	Dir        string
	IssuerAddr string // where the JWKS is served
	GRPC       string // scopegate's listen addresses in the config
	Admin      string
	Tokens     int // valid tokens to mint
	Routes     int // the policy's size
	Alg        string
	Serve      time.Duration // how long the JWKS is served
}

// The mix that -setup writes.
const setupMix = `# A request mix for scopegate-bench -mix, written by scopegate-bench -setup.
host: api.example.com
requests:
  - { method: GET, path: /orders/42, tokens: valid, weight: 18 }
  - { method: GET, path: /orders/42, tokens: bad-signature, expect: deny }
  - { method: GET, path: /orders/42, expect: deny }  # no token
tokens:
  valid: { file: tokens.txt }
  bad-signature: { file: bad-signature.txt }
  unknown-kid: { file: unknown-kid.txt }
# A flood of tokens naming unknown keys beside the requests:
# flood:
#   rate: 5000
#   requests:
#     - { method: GET, path: /orders/42, tokens: unknown-kid, expect: deny }
`

// setup writes into o.Dir what a load run against a scopegate started by
// hand needs: scopegate's config and policy, trusting the harness's
// issuer; token files; a mix. Then it serves the issuer's JWKS until ctx
// ends or for o.Serve, whichever comes first.
func setup(ctx context.Context, o setupOptions, stdout io.Writer) error {
	for _, addr := range []string{o.GRPC, o.Admin} {
		if err := checkLoopback(addr); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	iss, err := startIssuer(o.IssuerAddr)
	if err != nil {
		return err
	}
	defer iss.Close()
	config, err := (&gateConfig{GRPC: o.GRPC, Admin: o.Admin, Issuer: iss, Routes: o.Routes}).write(o.Dir)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		n    int
		alg  string
		kind tokenKind
	}{
		{"tokens.txt", o.Tokens, o.Alg, validToken},
		{"bad-signature.txt", 100, o.Alg, badSignature},
		{"unknown-kid.txt", 1000, devidp.EdDSA, unknownKey},
	}
	for _, f := range files {
		tokens, err := iss.mint(ctx, f.n, f.alg, f.kind)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.Dir, f.name), []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	mix := filepath.Join(o.Dir, "mix.yaml")
	if err := os.WriteFile(mix, []byte(setupMix), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `scopegate-bench: wrote %s, its policy of %d routes, token files and %s.
The issuer %s serves its JWKS for at most %v (Ctrl-C stops it). In another terminal:

  scopegate serve --config %s
  scopegate-bench -addr %s -mix %s -c 16 -d 10s -server-pid "$(pgrep -nf 'scopegate serve')"
`, config, o.Routes, mix, iss.url, o.Serve, config, o.GRPC, mix)
	ctx, cancel := context.WithTimeout(ctx, o.Serve)
	defer cancel()
	<-ctx.Done()
	return nil
}
