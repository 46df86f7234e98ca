package envoy_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/envoy"
	"github.com/scopegate/scopegate/internal/testutil"
	"github.com/scopegate/scopegate/policy"
)

// hydraLike returns a token in the form of Ory Hydra's access tokens.
func hydraLike() string {
	b := make([]byte, 64)
	rand.Read(b)
	enc := base64.RawURLEncoding
	return "ory_at_" + enc.EncodeToString(b[:32]) + "." + enc.EncodeToString(b[32:])
}

// TestIntrospectionBudgetIsFairAcrossSourceAddresses pins, through the
// gRPC listener, that the introspection budget tells Envoy's source
// addresses apart: junk from a flood of addresses is refused without
// locking out the client that presented a valid token, and junk out of
// the provider's format costs nothing.
func TestIntrospectionBudgetIsFairAcrossSourceAddresses(t *testing.T) {
	srv := testutil.NewIntrospectionServer(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(srv.ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := authz.NewIntrospector(authz.Introspection{
		Endpoint: srv.URL, ClientID: srv.ClientID, ClientSecretFile: secret, Timeout: 5 * time.Second,
		MaxRate: 10, ReservedRate: 5, MaxRatePerPeer: 1,
		TokenFormat: &authz.TokenFormat{Prefix: "ory_at_", Alphabet: "base64url", Segments: 2, MinLength: 94, MaxLength: 94},
	}, authz.IntrospectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	pol, err := policy.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	client := serve(t, authz.New(pol, &authz.Router{Introspector: in}, authz.Options{}))
	check := func(source, token string) (status int, reason string) {
		t.Helper()
		req := envoy.CheckRequest("GET", "api.example.com", "/orders/1", bearer(token))
		req.Attributes.Source.Address.GetSocketAddress().Address = source
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := client.Check(ctx, req)
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		return deniedStatus(resp), resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
	}
	valid := func() string {
		tok := hydraLike()
		srv.Register(tok, active("orders:read"))
		return tok
	}

	const known = "192.0.2.10"
	if status, reason := check(known, valid()); status != 200 {
		t.Fatalf("the client's first token: %d %s", status, reason)
	}
	if status, reason := check("203.0.113.1", "not-an-ory-token"); status != 401 || reason != string(authz.ReasonTokenMalformed) {
		t.Errorf("a token out of the provider's format: %d %s, want 401 %s", status, reason, authz.ReasonTokenMalformed)
	}
	calls := srv.Calls()
	if calls != 1 {
		t.Errorf("provider calls = %d, want 1: a token out of format was introspected", calls)
	}
	refused := 0
	for i := range 50 {
		switch status, reason := check(fmt.Sprintf("198.51.100.%d", i), hydraLike()); {
		case status == 503 && reason == string(authz.ReasonIntrospectionDown):
			refused++
		case status != 401 || reason != string(authz.ReasonInactive):
			t.Fatalf("junk in the provider's format: %d %s", status, reason)
		}
	}
	if refused == 0 {
		t.Fatal("no junk token was refused by a budget of 10 a second")
	}
	if status, reason := check(known, valid()); status != 200 {
		t.Errorf("the client's new token beside the flood: %d %s, want 200 from the reserve", status, reason)
	}
}

// deniedStatus is the HTTP status of a CheckResponse: 200 for an allow.
func deniedStatus(resp *authv3.CheckResponse) int {
	if d := resp.GetDeniedResponse(); d != nil {
		return int(d.GetStatus().GetCode())
	}
	return 200
}
