package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/examples"
	"github.com/scopegate/scopegate/internal/config"
	"github.com/scopegate/scopegate/internal/devidp"
	"github.com/scopegate/scopegate/policy"
)

// devClientID is the client of the demo setup. Its secret is fresh at every
// start.
const devClientID = "demo-client"

// devSetup is the demo of `serve --dev`: a built-in client-credentials
// issuer on loopback, a config that trusts it, and the example policy.
type devSetup struct {
	Config    *config.Config
	Policy    *policy.Policy
	issuerURL string
	secret    string
	srv       *http.Server
}

func startDev(addr string, logger *slog.Logger) (*devSetup, error) {
	pol, err := policy.Parse("examples/policy.yaml", examples.Policy)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	d := &devSetup{Policy: pol, secret: hex.EncodeToString(secret)}

	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dev issuer: %w", err)
	}
	d.issuerURL = "http://" + lis.Addr().String()
	idp, err := devidp.New(devidp.Config{
		Issuer: d.issuerURL,
		Clients: []devidp.Client{{
			ID:       devClientID,
			Secret:   d.secret,
			Scopes:   []string{"orders:read", "inventory:read"},
			Audience: []string{"scopegate-dev"},
		}},
	})
	if err != nil {
		lis.Close()
		return nil, err
	}
	d.srv = &http.Server{Handler: idp.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := d.srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("dev issuer stopped", "err", err)
		}
	}()

	d.Config = &config.Config{
		Listen: config.Listen{GRPC: "127.0.0.1:9001", Admin: "127.0.0.1:9002"},
		Issuers: []authz.Issuer{{
			Issuer:    d.issuerURL,
			JWKSURI:   d.issuerURL + "/jwks.json",
			Audiences: []string{"scopegate-dev"},
		}},
	}
	return d, nil
}

// PrintWelcome prints, ready to paste, how to get a token and check two
// requests with it: one the demo client may make and one it may not.
func (d *devSetup) PrintWelcome(w io.Writer, grpcAddr string) {
	fmt.Fprintf(w, `
scopegate is serving the demo setup (loopback only).

  ext_authz gRPC:  %[1]s
  dev issuer:      %[2]s   (JWKS at %[2]s/jwks.json)
  client:          %[3]s
  secret:          %[4]s   (scopes orders:read inventory:read)
  policy:          examples/policy.yaml

Get a token with the client-credentials grant:

  TOKEN=$(curl -s -u %[3]s:%[4]s -d grant_type=client_credentials %[2]s/dev/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

Ask scopegate as Envoy would, with scopegate on your PATH (make build, then
export PATH=$PWD/bin:$PATH). This one is allowed (orders:read):

  scopegate check --addr %[1]s --method GET --path /orders/42 --token "$TOKEN"

and this one is denied with 403 insufficient_scope (it needs orders:write):

  scopegate check --addr %[1]s --method POST --path /orders --token "$TOKEN"

`, grpcAddr, d.issuerURL, devClientID, d.secret)
}

// Close stops the dev issuer.
func (d *devSetup) Close() { d.srv.Close() }
