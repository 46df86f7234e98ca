package authz

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIssuerValidate(t *testing.T) {
	neg, long := -time.Second, 6*time.Minute
	tests := []struct {
		name string
		iss  Issuer
		want []string // the fields in error
	}{
		{"valid", Issuer{Issuer: "https://idp.test", JWKSURI: "https://idp.test/jwks"}, nil},
		{"valid discovery", Issuer{Issuer: "https://idp.test/realms/x/", Discovery: true}, nil},
		{"valid loopback http", Issuer{Issuer: "x", JWKSURI: "http://127.0.0.1:8080/jwks"}, nil},
		{"empty", Issuer{}, []string{"issuer", "jwks_uri"}},
		{"plain http", Issuer{Issuer: "x", JWKSURI: "http://idp.test/jwks"}, []string{"jwks_uri"}},
		{"relative", Issuer{Issuer: "x", JWKSURI: "/jwks"}, []string{"jwks_uri"}},
		{"discovery of no URL", Issuer{Issuer: "idp", Discovery: true}, []string{"issuer"}},
		{"discovery and jwks_uri", Issuer{Issuer: "https://idp.test", Discovery: true, JWKSURI: "https://idp.test/jwks"}, []string{"jwks_uri"}},
		{"algorithms", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", Algorithms: []string{"RS256", "none", "HS256", "hs512", "RS1"}},
			[]string{"algorithms[1]", "algorithms[2]", "algorithms[3]", "algorithms[4]"}},
		{"empty audience", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", Audiences: []string{"a", ""}}, []string{"audiences[1]"}},
		{"negative leeway", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", Leeway: &neg}, []string{"leeway"}},
		{"long leeway", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", Leeway: &long}, []string{"leeway"}},
		{"negative max_lifetime", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", MaxLifetime: -1}, []string{"max_lifetime"}},
		{"scope_claim", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", ScopeClaim: "scopes"}, []string{"scope_claim"}},
		{"client_id_claims", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", ClientIDClaims: []string{"cid", "sub", "azp"}}, nil},
		{"client_id_claims empty", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", ClientIDClaims: []string{}}, []string{"client_id_claims"}},
		{"client_id_claims of no client id", Issuer{Issuer: "x", JWKSURI: "https://idp.test/jwks", ClientIDClaims: []string{"cid", "", "scope", "iss", "cid"}},
			[]string{"client_id_claims[1]", "client_id_claims[2]", "client_id_claims[3]", "client_id_claims[4]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, fe := range tt.iss.Validate() {
				got = append(got, fe.Field)
				if fe.Msg == "" {
					t.Errorf("%s: empty message", fe.Field)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("fields in error = %q, want %q (%v)", got, tt.want, tt.iss.Validate())
			}
		})
	}
}

func TestNewJWTVerifierRefusesInvalidSettings(t *testing.T) {
	ok := Issuer{Issuer: "https://idp.test", JWKSURI: "http://127.0.0.1:1/jwks"}
	for name, issuers := range map[string][]Issuer{
		"invalid issuer": {ok, {Issuer: "x", JWKSURI: "https://idp.test/jwks", Algorithms: []string{"HS256"}}},
		"issuer twice":   {ok, ok},
	} {
		t.Run(name, func(t *testing.T) {
			v, err := NewJWTVerifier(t.Context(), issuers, jwtOptions(&jwtLog{}))
			if err == nil {
				v.Close()
				t.Fatal("NewJWTVerifier succeeded")
			}
			if !strings.Contains(err.Error(), "issuers[1].") {
				t.Errorf("error %q does not name issuers[1]", err)
			}
		})
	}
}
