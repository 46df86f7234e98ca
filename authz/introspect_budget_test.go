package authz_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
)

// opaqueFormat is the form of newToken's tokens.
var opaqueFormat = authz.TokenFormat{Prefix: "op_", Alphabet: "base64url", Segments: 1, MinLength: 46, MaxLength: 46}

func TestIntrospectTokenFormatRefusesWithoutARequest(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	cfg.TokenFormat = &opaqueFormat
	cfg.Cache.Redis = &authz.Redis{Addrs: []string{testutil.Redis(t)}, Timeout: 2 * time.Second}
	// A budget of one request: a junk token that spent it would lock the
	// valid token out.
	cfg.MaxRate = 1
	in := newIntrospector(t, cfg)
	valid := newToken(t)
	srv.Register(valid, activeResponse())
	idp := testutil.NewIdP(t)
	ctx := context.Background()
	for _, junk := range []string{
		"dGhpcyBpcyBub3QgYSB0b2tlbg",
		"op_" + strings.Repeat("A", 42),
		"op_" + strings.Repeat("A", 44),
		"op_" + strings.Repeat("A", 21) + "." + strings.Repeat("A", 21),
		"xx_" + strings.Repeat("A", 43),
		idp.Token(t),
	} {
		_, err := in.Verify(ctx, junk)
		wantReason(t, err, authz.ReasonTokenMalformed, false)
	}
	if s := in.Stats(); s.Calls != 0 || s.Throttled != 0 || s.L2Hits+s.L2Misses+s.RedisErrors != 0 {
		t.Errorf("Stats = %+v: tokens out of format reached the provider, the budget or Redis", s)
	}
	if _, err := in.Verify(ctx, valid); err != nil {
		t.Errorf("Verify of a token in the format: %v", err)
	}
}

func TestIntrospectTokenFormatLetsIntrospectedJWTsThrough(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	cfg := introspectionConfig(t, srv)
	cfg.TokenFormat = &opaqueFormat
	idp, other := testutil.NewIdP(t), testutil.NewIdP(t)
	in, err := authz.NewIntrospector(cfg, authz.IntrospectorOptions{JWTIssuers: map[string]bool{idp.Issuer(): true}})
	if err != nil {
		t.Fatalf("NewIntrospector: %v", err)
	}
	t.Cleanup(func() { in.Close() })
	jwt := idp.Token(t)
	srv.Register(jwt, activeResponse())
	ctx := context.Background()
	if _, err := in.Verify(ctx, jwt); err != nil {
		t.Errorf("Verify of a JWT of an introspect_jwts issuer: %v", err)
	}
	_, err = in.Verify(ctx, other.Token(t))
	wantReason(t, err, authz.ReasonTokenMalformed, false)
}

// TestIntrospectBudgetKeepsNewTokensGoing pins the fairness of the
// introspection budget: a flood of junk, in the provider's format so that
// every string costs a request, locks out neither a peer that presented a
// valid token before nor, from one address, a newcomer.
func TestIntrospectBudgetKeepsNewTokensGoing(t *testing.T) {
	tests := []struct {
		name        string
		floodPeers  int
		vouched     bool // the peer with the new token presented a valid one before the flood
		wantRefused bool // the flood is refused in part
	}{
		{"a peer that presented a valid token, beside junk from many addresses", 100, true, true},
		{"a newcomer, beside junk from one address", 1, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := testutil.NewIntrospectionServer(t)
			cfg := introspectionConfig(t, srv)
			cfg.TokenFormat = &opaqueFormat
			// The shares refill slowly beside the few milliseconds the
			// test takes: 5 and 5 a second, 1 a second per stranger.
			cfg.MaxRate, cfg.ReservedRate, cfg.MaxRatePerPeer = 10, 5, 1
			in := newIntrospector(t, cfg)
			ctx := context.Background()
			const client = "192.0.2.10:40000"
			if tt.vouched {
				earlier := newToken(t)
				srv.Register(earlier, activeResponse())
				if _, err := in.VerifyFrom(ctx, earlier, client); err != nil {
					t.Fatalf("VerifyFrom of the client's earlier token: %v", err)
				}
			}
			refused := 0
			for i := range 100 {
				_, err := in.VerifyFrom(ctx, newToken(t), fmt.Sprintf("198.51.100.%d:5000", i%tt.floodPeers))
				var te *authz.TokenError
				switch {
				case errors.As(err, &te) && te.Reason == authz.ReasonInactive:
				case errors.As(err, &te) && te.Reason == authz.ReasonIntrospectionDown && te.Unavailable:
					refused++
				default:
					t.Fatalf("VerifyFrom of junk: %v", err)
				}
			}
			if tt.wantRefused && refused == 0 {
				t.Fatalf("none of a flood of 100 junk tokens was refused by a budget of 10 a second")
			}
			token := newToken(t)
			srv.Register(token, activeResponse())
			if _, err := in.VerifyFrom(ctx, token, client); err != nil {
				t.Errorf("VerifyFrom of a new valid token beside the flood: %v", err)
			}
		})
	}
}
