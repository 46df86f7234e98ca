package authz

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

func TestIssuer(t *testing.T) {
	tests := []struct {
		payload string
		want    string
		ok      bool
	}{
		{`{"iss":"https://idp"}`, "https://idp", true},
		{` { "sub" : "x" , "iss" : "https://idp" } `, "https://idp", true},
		{`{"nested":{"iss":"inner"},"list":["iss",{"iss":1}],"n":-1.5e3,"t":true,"z":null,"iss":"outer"}`, "outer", true},
		{`{"iss":"first","iss":"last"}`, "last", true},
		{`{"iss":"first","iss":7}`, "", true},
		{`{"\u0069ss":"escaped name"}`, "escaped name", true},
		{`{"iss":"esc\"aped\u00e9"}`, "esc\"apedé", true},
		{`{"ISS":"other case"}`, "", true},
		{`{"iss\"":"not iss"}`, "", true},
		{`{}`, "", true},
		{`{"iss":["a"]}`, "", true},
		{`null`, "", false},
		{`["iss"]`, "", false},
		{`{"iss":"x"`, "", false},
		{`{"iss":"x"} trailing`, "", false},
		{`{"iss":"unterminated}`, "", false},
		{`{"a":[1,2}`, "", false},
		{`{iss:"x"}`, "", false},
		{``, "", false},
	}
	for _, tt := range tests {
		if got, ok := issuer([]byte(tt.payload)); got != tt.want || ok != tt.ok {
			t.Errorf("issuer(%s) = %q, %v; want %q, %v", tt.payload, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzPeekIssuer checks that the router reads the iss of a JSON payload as
// the JWT verifier's decoding into a map does, and that no payload makes it
// fail.
func FuzzPeekIssuer(f *testing.F) {
	for _, p := range []string{
		`{"iss":"https://idp"}`, `{"a":[1,{"b":"}"}],"iss":"x\\y"}`, `{"iss":1}`, `[]`, `null`,
		`{"iss":"\ud800"}`, "{\"iss\":\"\xff\"}", `{"iss":"x"`, `{"a":tru}`,
	} {
		f.Add(p)
	}
	enc := base64.RawURLEncoding.EncodeToString
	f.Fuzz(func(t *testing.T, payload string) {
		iss, isJWT := peekIssuer(enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(payload)) + ".sig")
		if !json.Valid([]byte(payload)) {
			return
		}
		var m map[string]any
		wantJWT := json.Unmarshal([]byte(payload), &m) == nil && m != nil
		want, _ := m["iss"].(string)
		if isJWT != wantJWT || iss != want {
			t.Errorf("peekIssuer of payload %q = %q, %v; want %q, %v", payload, iss, isJWT, want, wantJWT)
		}
	})
}
