package authz

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// hydraToken returns an access token as Ory Hydra makes them: ory_at_, 32
// random bytes, a dot and their HMAC-SHA256, both in unpadded base64url.
func hydraToken() string {
	key := make([]byte, 32)
	rand.Read(key)
	mac := hmac.New(sha256.New, []byte("a global secret of thirty-two by"))
	mac.Write(key)
	b64 := base64.RawURLEncoding
	return "ory_at_" + b64.EncodeToString(key) + "." + b64.EncodeToString(mac.Sum(nil))
}

func TestTokenFormatFits(t *testing.T) {
	hydra := &TokenFormat{Prefix: "ory_at_", Alphabet: "base64url", Segments: 2, MinLength: 94, MaxLength: 94}
	tok := hydraToken()
	tests := []struct {
		name   string
		format *TokenFormat
		token  string
		fits   bool
	}{
		{"a Hydra access token", hydra, tok, true},
		{"another Hydra access token", hydra, hydraToken(), true},
		{"a Hydra refresh token", hydra, "ory_rt_" + strings.TrimPrefix(tok, "ory_at_"), false},
		{"no prefix", hydra, strings.TrimPrefix(tok, "ory_at_") + "1234567", false},
		{"one byte short", hydra, tok[:93], false},
		{"one byte long", hydra, tok + "A", false},
		{"three segments", hydra, tok[:50] + "." + tok[51:70] + "." + tok[71:], false},
		{"one segment", hydra, strings.Replace(tok, ".", "A", 1), false},
		{"an empty segment", hydra, tok[:50] + "." + tok[51:93] + ".", false},
		{"a character outside the alphabet", hydra, strings.Replace(tok, tok[20:21], "~", 1), false},
		{"a random bearer string", hydra, "dGhpcyBpcyBub3QgYSB0b2tlbg", false},
		{"the prefix alone", &TokenFormat{Prefix: "ory_at_"}, "ory_at_", false},
		{"any length and segments", &TokenFormat{Prefix: "op_", Alphabet: "base64url"}, "op_a.b..c", true},
		{"hex", &TokenFormat{Alphabet: "hex", Segments: 1}, "0123456789abcdefABCDEF", true},
		{"not hex", &TokenFormat{Alphabet: "hex"}, "0123g", false},
		{"base32", &TokenFormat{Alphabet: "base32"}, "MZXW6YTBOI======", true},
		{"base32 is upper case", &TokenFormat{Alphabet: "base32"}, "mzxw6ytboi", false},
		{"base64", &TokenFormat{Alphabet: "base64"}, "a+b/c==", true},
		{"alphanumeric", &TokenFormat{Alphabet: "alphanumeric"}, "abc-def", false},
		{"the minimum length counts the prefix", &TokenFormat{Prefix: "p_", MinLength: 4}, "p_ab", true},
		{"below the minimum length", &TokenFormat{Prefix: "p_", MinLength: 4}, "p_a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if errs := tt.format.Validate(); len(errs) > 0 {
				t.Fatalf("Validate: %v", errs)
			}
			if got := newTokenFormat(tt.format).fits(tt.token); got != tt.fits {
				t.Errorf("fits(%q) = %v, want %v", tt.token, got, tt.fits)
			}
		})
	}
}

func TestTokenFormatValidate(t *testing.T) {
	tests := []struct {
		format TokenFormat
		field  string
	}{
		{TokenFormat{Prefix: "ory at "}, "prefix"},
		{TokenFormat{MinLength: -1}, "min_length"},
		{TokenFormat{MaxLength: -1}, "max_length"},
		{TokenFormat{MinLength: 10, MaxLength: 9}, "max_length"},
		{TokenFormat{Prefix: "ory_at_", MaxLength: 7}, "max_length"},
		{TokenFormat{Alphabet: "base58"}, "alphabet"},
		{TokenFormat{Segments: -1}, "segments"},
	}
	for _, tt := range tests {
		errs := tt.format.Validate()
		if len(errs) != 1 || errs[0].Field != tt.field {
			t.Errorf("Validate(%+v) = %v, want one error about %s", tt.format, errs, tt.field)
		}
	}
	if newTokenFormat(&TokenFormat{}) != nil || newTokenFormat(nil) != nil {
		t.Error("an empty token_format checks tokens")
	}
}
