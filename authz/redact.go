package authz

import "strings"

// RedactedToken is what stands in for a token in what scopegate echoes to
// the caller or logs.
const RedactedToken = "[token]"

// minRedactedBearer is the shortest bearer token that Redact looks for
// word for word: a shorter string is no credential an identity provider
// issues, and looking for it would mangle paths for nothing.
const minRedactedBearer = 8

// BearerToken returns the token of the authorization header h, as Redact
// and the audit log's token_sha256 take it: what follows a
// case-insensitive "Bearer" or "DPoP" and spaces or tabs, up to the next
// space, tab or comma, or "" when h holds none. Unlike the check, it takes
// the token whether or not the header is well formed, so that the token of
// a header that the check refuses (sent twice, or after a tab) is still
// redacted.
func BearerToken(h string) string {
	n := schemeLen(h, "bearer")
	if n == 0 {
		n = schemeLen(h, "dpop")
	}
	if n == 0 {
		return ""
	}
	t := strings.TrimLeft(h[n:], " \t")
	if i := strings.IndexAny(t, " \t,"); i >= 0 {
		t = t[:i]
	}
	return t
}

// schemeLen returns the length of scheme when h starts with it, case
// insensitively, followed by a space or tab, else 0.
func schemeLen(h, scheme string) int {
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) || h[len(scheme)] != ' ' && h[len(scheme)] != '\t' {
		return 0
	}
	return len(scheme)
}

// Redact returns s with every token in it replaced by RedactedToken: each
// occurrence of bearer, the request's own token (see BearerToken), and
// every run that looks like a JWS or JWE in compact serialization, one
// that starts with "eyJ" (the base64url of `{"`, as every JOSE header
// does) and goes on, over base64url characters and dots, past a dot. It
// is for what the request supplied and scopegate quotes back or logs,
// such as a path: a token pasted into one must not leak from there. When
// s holds no token, Redact returns s itself, without allocating.
func Redact(s, bearer string) string {
	f := FindTokens(s, bearer)
	start, end := f.Next()
	if start < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for ; start >= 0; start, end = f.Next() {
		b.WriteString(s[last:start])
		b.WriteString(RedactedToken)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

// TokenFinder finds, in order, the tokens of a string that Redact
// replaces, in time linear in its length. It is for encoders that redact
// as they write, such as the audit log's, and allocates nothing.
type TokenFinder struct {
	s, bearer string
	pos       int // where the next token is looked for
	bearerAt  int // the first occurrence of bearer from where it was last looked for, or -1
	jwsAt     int // the first "eyJ" from where it was last looked for, or -1
}

// FindTokens returns a TokenFinder of the tokens in s, with bearer as the
// request's own token.
func FindTokens(s, bearer string) TokenFinder {
	f := TokenFinder{s: s, bearer: bearer, bearerAt: -1, jwsAt: strings.Index(s, "eyJ")}
	if len(bearer) >= minRedactedBearer {
		f.bearerAt = strings.Index(s, bearer)
	}
	return f
}

// Next returns the bounds of the next token, or -1, -1 when there is no
// more. Where a JWS and bearer start at the same byte, the token is the
// longer; a token that starts inside the one before is not looked for.
func (f *TokenFinder) Next() (start, end int) {
	for {
		if f.bearerAt >= 0 && f.bearerAt < f.pos {
			f.bearerAt = indexFrom(f.s, f.pos, f.bearer)
		}
		if f.jwsAt >= 0 && f.jwsAt < f.pos {
			f.jwsAt = indexFrom(f.s, f.pos, "eyJ")
		}
		jwsStart, jwsEnd := -1, -1
		if f.jwsAt >= 0 && (f.bearerAt < 0 || f.jwsAt <= f.bearerAt) {
			e, dot := f.jwsAt+3, false
			for e < len(f.s) && jwsChar[f.s[e]] {
				dot = dot || f.s[e] == '.'
				e++
			}
			if !dot {
				// Neither this run nor an "eyJ" later in it is a token;
				// bearer may still start inside it.
				f.jwsAt = indexFrom(f.s, e, "eyJ")
				continue
			}
			jwsStart, jwsEnd = f.jwsAt, e
		}
		switch {
		case jwsStart >= 0 && (jwsStart != f.bearerAt || f.bearerAt+len(f.bearer) <= jwsEnd):
			start, end = jwsStart, jwsEnd
		case f.bearerAt >= 0:
			start, end = f.bearerAt, f.bearerAt+len(f.bearer)
		default:
			return -1, -1
		}
		f.pos = end
		return start, end
	}
}

// indexFrom is strings.Index of sub in s[from:], as an offset in s, or -1.
func indexFrom(s string, from int, sub string) int {
	if from > len(s) {
		return -1
	}
	i := strings.Index(s[from:], sub)
	if i < 0 {
		return -1
	}
	return from + i
}

// jwsChar marks the characters of a JWS or JWE in compact serialization:
// base64url and the dot.
var jwsChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.'
	}
	return t
}()
