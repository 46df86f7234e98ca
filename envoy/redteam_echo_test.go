package envoy_test

import (
	"strings"
	"testing"

	"github.com/scopegate/scopegate/internal/testutil"
)

// TestRedteamOpaqueBearerInThePathIsNotLogged puts the request's own
// opaque token in its path, with an authorization header that the check
// refuses but that still carries the token: repeated, or with another
// separator after the scheme. Neither the answers nor the audit log may
// hold the token.
func TestRedteamOpaqueBearerInThePathIsNotLogged(t *testing.T) {
	idp := testutil.NewIdP(t)
	rig := startEcho(t, jwtVerifierFor(t, idp))
	opaque := "ory_at_" + strings.Repeat("Qx9", 15)
	tests := []struct {
		name, path, authorization string
	}{
		{"repeated authorization header", "/orders/" + opaque, "Bearer " + opaque + ",Bearer other-token-value"},
		{"tab after the scheme", "/orders/" + opaque, "Bearer\t" + opaque},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := map[string]string{"authorization": tt.authorization}
			if l := leak(rig.checkGRPC(t, "api.example.com", tt.path, headers), opaque[1:]); l != "" {
				t.Errorf("the gRPC answer holds %q of the token", l)
			}
			for _, p := range conventions {
				if l := leak(checkHTTP(t, p.request(rig.http, "GET", "api.example.com", tt.path), headers), opaque[1:]); l != "" {
					t.Errorf("the %s answer holds %q of the token", p.name, l)
				}
			}
		})
	}
	if err := rig.audit.Close(); err != nil {
		t.Fatal(err)
	}
	if l := leak(rig.auditOut.String(), opaque[1:]); l != "" {
		t.Errorf("the audit log holds %q of the token:\n%s", l, rig.auditOut.String())
	}
}
