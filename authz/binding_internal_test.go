package authz

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseConfirmation(t *testing.T) {
	sum := sha256.Sum256([]byte("certificate"))
	b64 := base64.RawURLEncoding.EncodeToString(sum[:])
	tests := []struct {
		name string
		cnf  string
		want Confirmation
		bad  bool // refused as malformed
	}{
		{"absent", ``, Confirmation{}, false},
		{"null", `null`, Confirmation{}, false},
		{"certificate", `{"x5t#S256":"` + b64 + `"}`, Confirmation{Methods: ConfirmCertificate, CertificateSHA256: sum}, false},
		{"dpop_key", `{"jkt":"` + b64 + `"}`, Confirmation{Methods: ConfirmDPoPKey, KeyThumbprint: sum}, false},
		{"both", `{"jkt":"` + b64 + `","x5t#S256":"` + b64 + `"}`,
			Confirmation{Methods: ConfirmCertificate | ConfirmDPoPKey, CertificateSHA256: sum, KeyThumbprint: sum}, false},
		{"jwk_is_unsupported", `{"jwk":{"kty":"EC"}}`, Confirmation{Methods: ConfirmUnsupported}, false},
		{"x5t_sha1_is_unsupported", `{"x5t":"abc"}`, Confirmation{Methods: ConfirmUnsupported}, false},
		{"kid_beside_a_certificate", `{"x5t#S256":"` + b64 + `","kid":"k"}`,
			Confirmation{Methods: ConfirmCertificate | ConfirmUnsupported, CertificateSHA256: sum}, false},
		{"name_in_other_case_is_unsupported", `{"X5T#S256":"` + b64 + `"}`, Confirmation{Methods: ConfirmUnsupported}, false},
		{"a_string", `"` + b64 + `"`, Confirmation{}, true},
		{"an_array", `["` + b64 + `"]`, Confirmation{}, true},
		{"an_empty_object", `{}`, Confirmation{}, true},
		{"x5t_a_number", `{"x5t#S256":1}`, Confirmation{}, true},
		{"x5t_null", `{"x5t#S256":null}`, Confirmation{}, true},
		{"x5t_padded", `{"x5t#S256":"` + b64 + `="}`, Confirmation{}, true},
		{"x5t_standard_base64", `{"x5t#S256":"` + base64.RawStdEncoding.EncodeToString(bytesWith(sum, 0xfb)) + `"}`, Confirmation{}, true},
		{"x5t_hex", `{"x5t#S256":"` + strings.Repeat("ab", 32) + `"}`, Confirmation{}, true},
		{"x5t_of_sha1", `{"x5t#S256":"` + base64.RawURLEncoding.EncodeToString(sum[:20]) + `"}`, Confirmation{}, true},
		{"x5t_trailing_bits", `{"x5t#S256":"` + b64[:42] + `B"}`, Confirmation{}, true},
		{"jkt_too_long", `{"jkt":"` + b64 + `AAAA"}`, Confirmation{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfirmationJSON(json.RawMessage(tt.cnf))
			var te *TokenError
			switch {
			case tt.bad && (!errors.As(err, &te) || te.Reason != ReasonTokenMalformed):
				t.Fatalf("error %v, want %s", err, ReasonTokenMalformed)
			case !tt.bad && err != nil:
				t.Fatalf("error %v", err)
			case got != tt.want:
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// bytesWith returns sum with its first byte set to b, so that its base64
// holds a character that base64url does not.
func bytesWith(sum [32]byte, b byte) []byte {
	sum[0] = b
	return sum[:]
}

// TestConfirmDPoPSeam pins what the DPoP path gets from confirm: a token
// bound to a DPoP key passes with the thumbprint of its key only.
func TestConfirmDPoPSeam(t *testing.T) {
	key := sha256.Sum256([]byte("key"))
	other := sha256.Sum256([]byte("other key"))
	c := Confirmation{Methods: ConfirmDPoPKey, KeyThumbprint: key}
	if te := c.confirm("", &key); te != nil {
		t.Errorf("the proof's own key: %v", te)
	}
	for name, tt := range map[string]struct {
		proofKey *[32]byte
		want     Reason
	}{
		"as_bearer":       {nil, ReasonDPoPRequired},
		"another_key":     {&other, ReasonDPoPKeyMismatch},
		"unsupported_too": {&key, ReasonBindingUnsupported},
	} {
		c := c
		if name == "unsupported_too" {
			c.Methods |= ConfirmUnsupported
		}
		if te := c.confirm("", tt.proofKey); te == nil || te.Reason != tt.want {
			t.Errorf("%s: %v, want %s", name, te, tt.want)
		}
	}
}

func FuzzParseConfirmation(f *testing.F) {
	f.Add([]byte(`{"x5t#S256":"` + strings.Repeat("A", 43) + `"}`))
	f.Add([]byte(`{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I","kid":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		c, err := parseConfirmationJSON(raw)
		if err != nil {
			return
		}
		// What is accepted is what the standard decoding reads.
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil || m == nil {
			if c.Bound() {
				t.Fatalf("%s is not an object, yet bound: %+v", raw, c)
			}
			return
		}
		for name, sum := range map[string]*[32]byte{"x5t#S256": &c.CertificateSHA256, "jkt": &c.KeyThumbprint} {
			if s, ok := m[name].(string); ok && s != base64.RawURLEncoding.EncodeToString(sum[:]) {
				t.Fatalf("%s: %s is %q, read as %x", raw, name, s, sum[:])
			}
		}
	})
}
