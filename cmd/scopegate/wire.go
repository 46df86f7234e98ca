package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/config"
)

// verifier is the token verifier that serve wires from the config: JWTs
// verified locally, other tokens (and the JWTs of issuers marked
// introspect_jwts) introspected.
type verifier struct {
	authz.Router
	jwt *authz.JWTVerifier
	in  *authz.Introspector
}

func newVerifier(ctx context.Context, cfg *config.Config, out outbound, logger *slog.Logger) (*verifier, error) {
	v := &verifier{}
	if cfg.Introspection != nil {
		ic := *cfg.Introspection
		if err := authz.DiscoverIntrospection(ctx, &ic, out.jwks); err != nil {
			return nil, err
		}
		in, err := authz.NewIntrospector(ic, authz.IntrospectorOptions{HTTPClient: out.introspection, Logger: logger, ExtraClaims: cfg.ExtraClaims(), JWTIssuers: cfg.IntrospectIssuers()})
		if err != nil {
			return nil, err
		}
		v.in, v.Router.Introspector = in, in
		v.Router.IntrospectIssuers = cfg.IntrospectIssuers()
	}
	if len(cfg.Issuers) > 0 {
		opts := cfg.JWTOptions()
		opts.Client, opts.Logger = out.jwks, logger
		jwt, err := authz.NewJWTVerifier(ctx, cfg.Issuers, opts)
		if err != nil {
			v.Close()
			return nil, err
		}
		v.jwt, v.Router.JWT = jwt, jwt
	}
	return v, nil
}

// newDPoP returns the DPoP proof verifier of cfg, nil when cfg has no dpop
// block, and the function that closes its Redis client. Proof jtis go to
// the introspection cache's Redis, shared by every instance, when one is
// configured, and to this instance's memory otherwise.
func newDPoP(cfg *config.Config) (*authz.DPoPVerifier, func(), error) {
	if cfg.DPoP == nil {
		return nil, func() {}, nil
	}
	var client redis.UniversalClient
	closeClient := func() {}
	if r := cfg.DPoPRedis(); r != nil {
		c, err := r.NewClient()
		if err != nil {
			return nil, nil, fmt.Errorf("dpop: %w", err)
		}
		client, closeClient = c, func() { c.Close() }
	}
	v, err := authz.NewDPoPVerifier(*cfg.DPoP, client)
	if err != nil {
		closeClient()
		return nil, nil, err
	}
	return v, closeClient, nil
}

// Ready reports whether every issuer's keys were fetched once.
func (v *verifier) Ready() bool { return v.jwt == nil || v.jwt.Ready() }

// Close stops the verifier's background work and closes its connections.
func (v *verifier) Close() {
	if v.jwt != nil {
		v.jwt.Close()
	}
	if v.in != nil {
		v.in.Close()
	}
}
