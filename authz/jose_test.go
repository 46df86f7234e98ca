package authz

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// sameClaimsDecoding fails t unless b, as a token's claims, decodes into
// tokenClaims as into the jwt.MapClaims it replaces: both or neither
// failing, and with the same claims of names.
func sameClaimsDecoding(t testing.TB, b []byte, names []string) {
	t.Helper()
	var m jwt.MapClaims
	mErr := json.Unmarshal(b, &m)
	tc := &tokenClaims{MapClaims: jwt.MapClaims{}, names: names}
	// As jwt.Parser decodes claims that are not a MapClaims.
	var claims jwt.Claims = tc
	tErr := json.Unmarshal(b, &claims)
	if (mErr == nil) != (tErr == nil) {
		t.Fatalf("claims %q: MapClaims decoding error %v, tokenClaims %v", b, mErr, tErr)
	}
	if mErr != nil {
		return
	}
	for _, n := range names {
		mv, mok := m[n]
		tv, tok := tc.MapClaims[n]
		if mok != tok || !reflect.DeepEqual(mv, tv) {
			t.Fatalf("claims %q: %s is %#v (%v) in MapClaims, %#v (%v) in tokenClaims", b, n, mv, mok, tv, tok)
		}
	}
}

func TestTokenClaimsDecodeAsMapClaims(t *testing.T) {
	names := slices.Concat(claimNames, []string{"tenant", "\uFFFD"})
	for _, b := range []string{
		`{}`, ` { } `, `null`, `[]`, `"x"`, `1`, `true`,
		`{"iss":"a","exp":1.5e9,"nbf":-0,"iat":1700000000,"aud":["a","b"],"sub":"s","client_id":null,"azp":7}`,
		`{"aud":"a","scope":"a b","scp":["c",1,{"d":[true,false,null]}]}`,
		`{"aud":[],"scp":[ ],"scope":[ [ ] , [ "a" , 1e3 ] , null ]}`, `{"aud":[1e999]}`,
		`{"iss":"a","iss":"b","ISS":"c","\u0069ss":"d","exp":"1","Exp":2}`,
		`{"scope":null,"tenant":"t\u00e9\n","pad":{"x":[1,2,3e5]}}`,
		`{"tenant":"\ud800"}`, "{\"tenant\":\"\xff\",\"sub\":\"a\xfeb\",\"\xff\":\"x\"}",
		`{"exp":1e308}`, `{"exp":1e309}`, `{"x":[{"y":-1e999}]}`, `{"x":1e-400}`,
		`{"exp":` + strings.Repeat("9", 400) + `}`, `{"x":"1e999"}`,
	} {
		sameClaimsDecoding(t, []byte(b), names)
	}
}
