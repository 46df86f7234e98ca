package authz

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// IssuerVerifier is a Verifier of the tokens of a set of issuers, such as a
// JWTVerifier.
type IssuerVerifier interface {
	Verifier
	// Issuer reports whether iss is one of the issuers whose tokens the
	// Verifier checks.
	Issuer(iss string) bool
}

// Router is the Verifier that sends each token to the verifier that can
// check it. A JWT whose iss is an issuer of JWT goes to JWT; any other
// token, opaque or not, goes to Introspector, or is refused without one.
// The zero Router refuses every token.
type Router struct {
	JWT IssuerVerifier // nil when no JWT issuer is configured
	// Introspector checks the tokens JWT does not; nil when introspection
	// is not configured.
	Introspector Verifier
	// IntrospectIssuers names the JWT issuers whose tokens are introspected
	// rather than verified locally (introspect_jwts).
	IntrospectIssuers map[string]bool
}

// Verify checks token with the verifier for it.
func (r *Router) Verify(ctx context.Context, token string) (*Claims, error) {
	return r.VerifyFrom(ctx, token, "")
}

// VerifyFrom checks token, presented by peer, with the verifier for it.
func (r *Router) VerifyFrom(ctx context.Context, token, peer string) (*Claims, error) {
	switch {
	case r.JWT == nil && r.Introspector != nil:
		return verifyFrom(ctx, r.Introspector, token, peer)
	case r.JWT != nil && r.Introspector == nil && len(r.IntrospectIssuers) == 0:
		// No choice to make: the JWT verifier refuses other tokens as the
		// router would, with more precise descriptions.
		return r.JWT.Verify(ctx, token)
	}
	iss, isJWT := peekIssuer(token)
	switch {
	case isJWT && r.JWT != nil && !r.IntrospectIssuers[iss] && r.JWT.Issuer(iss):
		return r.JWT.Verify(ctx, token)
	case r.Introspector != nil:
		return verifyFrom(ctx, r.Introspector, token, peer)
	case isJWT:
		return nil, &TokenError{Reason: ReasonUnknownIssuer, Description: "the token's issuer is not trusted"}
	}
	return nil, &TokenError{Reason: ReasonTokenMalformed, Description: "the token is not a JWT"}
}

// peekIssuer reports whether token has the form of a JWT (a compact JWS
// whose header is a JSON object, and whose payload looks like one) and
// returns the iss of its payload. It checks no signature and proves
// nothing: it only chooses the verifier, which checks the token in full.
func peekIssuer(token string) (iss string, isJWT bool) {
	header, rest, ok := strings.Cut(token, ".")
	if !ok {
		return "", false
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sig, '.') >= 0 {
		return "", false
	}
	// Large enough for the headers and payloads of most tokens, so that
	// decoding them does not allocate.
	var buf [1024]byte
	b, err := base64.RawURLEncoding.AppendDecode(buf[:0], []byte(header))
	if err != nil || !json.Valid(b) || !bytes.HasPrefix(bytes.TrimLeft(b, jsonSpace), []byte("{")) {
		return "", false
	}
	b, err = base64.RawURLEncoding.AppendDecode(buf[:0], []byte(payload))
	if err != nil {
		return "", false
	}
	return issuer(b)
}

const jsonSpace = " \t\r\n"

// issuer returns the iss member of the JSON object obj, or "" when it has
// none or it is not a string, and whether obj looks like an object. It
// reads members as the JWT verifier's decoding into a map does: names
// unescaped and matched exactly, the last of duplicates winning. It leaves
// the payload's validation to the verifier, and the time that would take
// with it: on malformed JSON its answer need only be safe, since either
// verifier refuses the token. It allocates nothing but the string it
// returns.
func issuer(obj []byte) (iss string, ok bool) {
	i := skipSpace(obj, 0)
	if i == len(obj) || obj[i] != '{' {
		return "", false
	}
	if i = skipSpace(obj, i+1); i < len(obj) && obj[i] == '}' {
		return "", skipSpace(obj, i+1) == len(obj)
	}
	for i < len(obj) && obj[i] == '"' {
		nameEnd := stringEnd(obj, i)
		if nameEnd < 0 {
			return "", false
		}
		name := obj[i:nameEnd]
		if i = skipSpace(obj, nameEnd); i == len(obj) || obj[i] != ':' {
			return "", false
		}
		i = skipSpace(obj, i+1)
		valueEnd := jsonValueEnd(obj, i)
		if valueEnd < 0 {
			return "", false
		}
		if nameIs(name, "iss") {
			iss, _ = jsonString(obj[i:valueEnd])
		}
		if i = skipSpace(obj, valueEnd); i == len(obj) {
			return "", false
		}
		switch obj[i] {
		case '}':
			if skipSpace(obj, i+1) != len(obj) {
				return "", false
			}
			return iss, true
		case ',':
			i = skipSpace(obj, i+1)
		default:
			return "", false
		}
	}
	return "", false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string that starts at
// b[i], or -1 if it does not end.
func stringEnd(b []byte, i int) int {
	for i++; ; i++ {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		i += j
		// The quote ends the string unless an odd number of backslashes
		// escapes it. The opening quote stops the count.
		n := 0
		for b[i-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return i + 1
		}
	}
}

// jsonValueEnd returns the index just past the JSON value that starts at
// b[i]: past its closing quote or bracket, or at the space, comma or
// bracket that ends a number or a literal. It returns -1 if the value does
// not end.
func jsonValueEnd(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			end := stringEnd(b, i)
			if end < 0 || depth == 0 {
				return end
			}
			i = end - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\r', '\n':
			if depth == 0 {
				return i
			}
		}
	}
	if depth > 0 {
		return -1
	}
	return i
}

// nameIs reports whether the JSON string v encodes name.
func nameIs(v []byte, name string) bool {
	if s := v[1 : len(v)-1]; bytes.IndexByte(s, '\\') < 0 {
		return string(s) == name
	}
	s, _ := jsonString(v)
	return s == name
}

// jsonString returns the string that the JSON value v encodes, and whether
// it is a string.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if s := v[1 : len(v)-1]; bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s), true
	}
	// Escapes, or bytes that decoding replaces: rare enough to leave to
	// encoding/json. The copy keeps v, which may be on the stack, from
	// escaping to the heap with it.
	var s string
	err := json.Unmarshal(bytes.Clone(v), &s)
	return s, err == nil
}
