package authz

import (
	"fmt"
	"strings"
)

// TokenFormat describes the opaque tokens of an introspection provider, so
// that a bearer string that cannot be one of them is refused at once, as
// malformed, without a request to the provider: random strings then cost
// neither the provider nor the introspection budget anything. Ory Hydra's
// access tokens, for example, are "ory_at_", 32 random bytes and a dot and
// their 32-byte HMAC, both in unpadded base64url:
//
//	token_format: {prefix: ory_at_, alphabet: base64url, segments: 2, min_length: 94, max_length: 94}
//
// The zero TokenFormat fits every token.
type TokenFormat struct {
	// Prefix starts every token.
	Prefix string `yaml:"prefix"`
	// MinLength and MaxLength bound the token's length in bytes, the prefix
	// included; zero MaxLength sets no bound beyond max_token_size.
	MinLength int `yaml:"min_length"`
	MaxLength int `yaml:"max_length"`
	// Alphabet holds the characters after the prefix, dots apart: base64url
	// (A-Z a-z 0-9 - _), base64 (A-Z a-z 0-9 + / =), base32 (A-Z 2-7 =),
	// hex (0-9 a-f A-F) or alphanumeric (A-Z a-z 0-9). Empty allows every
	// character of a bearer token.
	Alphabet string `yaml:"alphabet"`
	// Segments is the number of dot-separated parts after the prefix, none
	// of them empty; zero allows dots anywhere, as the alphabet's other
	// characters.
	Segments int `yaml:"segments"`
}

// tokenAlphabets are the alphabets a TokenFormat can name.
var tokenAlphabets = map[string]*[256]bool{
	"base64url":    charset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
	"base64":       charset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="),
	"base32":       charset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567="),
	"hex":          charset("0123456789abcdefABCDEF"),
	"alphanumeric": charset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
}

func charset(chars string) *[256]bool {
	var t [256]bool
	for i := range len(chars) {
		t[chars[i]] = true
	}
	return &t
}

// Validate reports every problem of f, with fields named as in YAML
// relative to the token_format block.
func (f *TokenFormat) Validate() []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if !isB64Token(f.Prefix + "x") {
		add("prefix", "%q holds characters that no bearer token holds", f.Prefix)
	}
	if f.MinLength < 0 {
		add("min_length", "must not be negative")
	}
	switch {
	case f.MaxLength < 0:
		add("max_length", "must not be negative")
	case f.MaxLength > 0 && f.MaxLength < max(f.MinLength, len(f.Prefix)+1):
		add("max_length", "must be at least min_length and longer than the prefix")
	}
	if _, ok := tokenAlphabets[f.Alphabet]; !ok && f.Alphabet != "" {
		add("alphabet", "%q is not base64url, base64, base32, hex or alphanumeric", f.Alphabet)
	}
	if f.Segments < 0 {
		add("segments", "must not be negative")
	}
	return errs
}

// tokenFormat is a validated TokenFormat, ready to check tokens.
type tokenFormat struct {
	TokenFormat
	alphabet *[256]bool // nil: any character of a bearer token
}

// newTokenFormat returns the checker of f, or nil when f fits every token.
func newTokenFormat(f *TokenFormat) *tokenFormat {
	if f == nil || *f == (TokenFormat{}) {
		return nil
	}
	return &tokenFormat{TokenFormat: *f, alphabet: tokenAlphabets[f.Alphabet]}
}

// fits reports whether token can be a token of the format. The token is
// already a b64token (Authorizer.Check refuses any other).
func (f *tokenFormat) fits(token string) bool {
	if len(token) < f.MinLength || f.MaxLength > 0 && len(token) > f.MaxLength {
		return false
	}
	rest, ok := strings.CutPrefix(token, f.Prefix)
	if !ok || rest == "" {
		return false
	}
	segments, empty := 1, false
	for i := range len(rest) {
		c := rest[i]
		switch {
		case c == '.':
			empty = empty || i == 0 || rest[i-1] == '.'
			segments++
		case f.alphabet != nil && !f.alphabet[c]:
			return false
		}
	}
	if f.Segments == 0 {
		return true
	}
	empty = empty || rest[len(rest)-1] == '.'
	return segments == f.Segments && !empty
}
