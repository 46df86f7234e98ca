package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// The decoding of a JWT's JOSE header and claims, by hand: it reads only
// the members that verification needs, so that the others cost only their
// validation.

// header is what unknownKey reads of a JOSE header.
type header struct {
	alg, kid, typ string // "" when absent or not strings
	hasKID        bool   // kid is present and a string
	crit          bool   // crit is present
}

// joseHeader returns the members of the valid JSON value b that unknownKey
// reads, and whether b is an object.
func joseHeader(b []byte) (h header, ok bool) {
	r, ok := objectMembers(b)
	for name, value, more := r.next(); more; name, value, more = r.next() {
		switch {
		case nameIs(name, "alg"):
			h.alg, _ = jsonString(value)
		case nameIs(name, "kid"):
			h.kid, h.hasKID = jsonString(value)
		case nameIs(name, "typ"):
			h.typ, _ = jsonString(value)
		case nameIs(name, "crit"):
			h.crit = true
		}
	}
	return h, ok
}

// memberReader reads the members of a valid JSON object in order. Taking
// the last of duplicates, and matching names with nameIs, reads them as
// decoding into a map does. (A reader rather than a callback, so that the
// bytes read can stay on the caller's stack.)
type memberReader struct {
	b []byte
	i int // where the next member starts
}

// objectMembers returns a reader of the members of the valid JSON value
// b, and whether b is an object.
func objectMembers(b []byte) (memberReader, bool) {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return memberReader{}, false
	}
	return memberReader{b: b, i: skipSpace(b, i+1)}, true
}

// next returns the name, still a JSON string, and the value of the next
// member, or more false when there is none.
func (r *memberReader) next() (name, value []byte, more bool) {
	b, i := r.b, r.i
	// b is valid JSON: every member is "name": value, followed by , or }.
	if i >= len(b) || b[i] != '"' {
		return nil, nil, false
	}
	nameEnd := stringEnd(b, i)
	if nameEnd < 0 {
		return nil, nil, false
	}
	name = b[i:nameEnd]
	i = skipSpace(b, skipSpace(b, nameEnd)+1)
	valueEnd := jsonValueEnd(b, i)
	if valueEnd < 0 {
		return nil, nil, false
	}
	value = b[i:valueEnd]
	if i = skipSpace(b, valueEnd); i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	r.i = i
	return name, value, true
}

// claimNames are the claims that verify reads, but for ExtraClaims and
// the issuers' ClientIDClaims.
var claimNames = []string{"iss", "exp", "nbf", "iat", "aud", "sub", "client_id", "azp", "scope", "scp", "typ", "token_use", "cnf"}

// tokenClaims are the claims of a token that verify reads. They decode as
// jwt.Parser decodes a jwt.MapClaims, and fail to decode when it fails,
// but keep only the members named in names, decoding no other: the other
// members, often the larger part, cost only their validation.
type tokenClaims struct {
	jwt.MapClaims
	names []string
}

func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	// json.Unmarshal validates b before it calls UnmarshalJSON, and calls
	// it with no null. Decoding into a map fails on valid JSON only for a
	// number beyond the range of a float64, wherever it is.
	if unsafeNumber(b) {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
	}
	r, ok := objectMembers(b)
	if !ok {
		return errors.New("the claims are not a JSON object")
	}
	for name, value, more := r.next(); more; name, value, more = r.next() {
		// Decoding replaces the bytes of a name that are not UTF-8, and an
		// ExtraClaims name may hold the replacement character.
		plain := utf8.Valid(name)
		var decoded string
		if !plain {
			decoded, _ = jsonString(name)
		}
		for _, n := range c.names {
			if plain && nameIs(name, n) || !plain && decoded == n {
				v, err := jsonValue(value)
				if err != nil {
					return err
				}
				c.MapClaims[n] = v
				break
			}
		}
	}
	return nil
}

// jsonValue returns the valid JSON value v as decoding into an any does.
func jsonValue(v []byte) (any, error) {
	switch v[0] {
	case '"':
		s, _ := jsonString(v)
		return s, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	case '[':
		// Arrays, of strings mostly, are aud and scp: decoding them here
		// spares json.Unmarshal's state.
		a := []any{}
		i := skipSpace(v, 1)
		for v[i] != ']' {
			end := jsonValueEnd(v, i)
			x, err := jsonValue(v[i:end])
			if err != nil {
				return nil, err
			}
			a = append(a, x)
			if i = skipSpace(v, end); v[i] == ',' {
				i = skipSpace(v, i+1)
			}
		}
		return a, nil
	case '{':
		var x any
		err := json.Unmarshal(v, &x)
		return x, err
	}
	return strconv.ParseFloat(string(v), 64)
}

// unsafeNumber reports whether the valid JSON b may hold a number that
// decoding into a float64 refuses as out of range: one with an exponent,
// or of more than 300 characters, as no other can overflow.
func unsafeNumber(b []byte) bool {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			i = stringEnd(b, i) - 1
		case c == '-' || '0' <= c && c <= '9':
			j := i
			for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || '0' <= b[j] && b[j] <= '9' || b[j] == 'e' || b[j] == 'E') {
				j++
			}
			if j-i > 300 || bytes.ContainsAny(b[i:j], "eE") {
				return true
			}
			i = j - 1
		}
	}
	return false
}

// mediaType returns typ as RFC 7515 section 4.1.9 compares it: in lower
// case, without the "application/" prefix that may be left out.
func mediaType(typ string) string {
	return strings.TrimPrefix(strings.ToLower(typ), "application/")
}
