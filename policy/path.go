package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadPath is wrapped by every error NormalizePath returns. A request
// whose path is rejected must be refused (400): guessing what an upstream
// would make of such a path is how authorization gets bypassed.
var ErrBadPath = errors.New("bad request path")

// NormalizePath returns the canonical form of a request path, the form that
// Match expects. It:
//
//   - drops the query (from the first '?');
//   - rejects a raw '#' anywhere, query included: a request-target never
//     carries a fragment, and upstreams that take '#' for a path byte
//     would see "/public#/../admin" as "/admin" where a fragment cut
//     leaves "/public"; an encoded %23 is a path byte and is kept;
//   - rejects an empty path and one not starting with '/';
//   - decodes percent-escapes of the characters RFC 3986 allows raw in a
//     path segment (unreserved ALPHA DIGIT - . _ ~, the sub-delims
//     ! $ & ' ( ) * + , = and : @), so that "/jobs/a%3Arun" and
//     "/jobs/a:run" are the same path, as upstreams that decode them see
//     it; every other escape is kept, written with upper-case hex;
//   - percent-encodes raw bytes that may not appear in a URI path (space,
//     '"', '<', '>', '[', ']', '^', '`', '{', '|', '}' and non-ASCII bytes),
//     so that "/café" and "/caf%C3%A9" are the same path;
//   - rejects malformed escapes, an encoded slash (%2F), a backslash raw or
//     encoded (%5C), a semicolon raw or encoded (%3B), and control
//     characters raw or encoded (%00-%1F, %7F);
//   - merges repeated slashes and resolves "." and ".." segments, including
//     those spelled with escapes (%2e%2e), never climbing above the root;
//   - keeps a trailing slash, and adds one where a final "." or ".." was
//     resolved, as RFC 3986 section 5.2.4 does.
//
// Rejection rather than repair is deliberate for the forbidden forms:
// upstreams disagree on whether %2F or '\' separate segments, and servlet
// containers (Tomcat, Jetty, Spring) cut a ";parameters" suffix off each
// segment while others keep it, so that "/docs/..;/admin" is "/admin" to
// one upstream and a segment named "..;" to the next. Any choice scopegate
// made would be wrong for some upstream, and that disagreement is exactly
// what a bypass exploits.
//
// When the path without its query is already canonical and the query has
// no '#', NormalizePath returns it without allocating.
func NormalizePath(raw string) (string, error) {
	if p, ok := canonical(raw); ok {
		return p, nil
	}
	p := raw
	if i := strings.IndexByte(p, '?'); i >= 0 {
		if j := strings.IndexByte(p[i:], '#'); j >= 0 {
			return "", badPath(raw, fmt.Sprintf("%s at byte %d", fragmentReason, i+j))
		}
		p = p[:i]
	}
	if p == "" {
		return "", badPath(raw, "empty path")
	}
	if p[0] != '/' {
		return "", badPath(raw, "does not start with /")
	}

	// Short paths are built on the stack; the result string is the only
	// allocation.
	var buf [256]byte
	out := buf[:0]
	trailing := false
	for start := 1; ; {
		end := start
		for end < len(p) && p[end] != '/' {
			end++
		}
		// Each segment is appended as "/seg" and then inspected: empty
		// and dot segments are taken back out.
		seg := len(out)
		out = append(out, '/')
		var bad *segmentError
		if out, bad = appendSegment(out, p[start:end]); bad != nil {
			return "", badPath(raw, fmt.Sprintf("%s at byte %d", bad.reason, start+bad.offset))
		}
		dots := dotSegment(out[seg+1:])
		if dots > 0 || len(out) == seg+1 {
			out = out[:seg]
		}
		if dots == 2 {
			// out holds "/a/b" segments, so the previous segment starts at
			// the last '/'; at the root there is nothing to remove.
			for len(out) > 0 && out[len(out)-1] != '/' {
				out = out[:len(out)-1]
			}
			out = out[:max(len(out)-1, 0)]
		}
		if end == len(p) {
			trailing = dots > 0 || end == start
			break
		}
		start = end + 1
	}
	if len(out) == 0 {
		return "/", nil
	}
	if trailing {
		out = append(out, '/')
	}
	return string(out), nil
}

// dotSegment returns 1 for ".", 2 for ".." and 0 for any other segment.
func dotSegment(seg []byte) int {
	switch {
	case len(seg) == 1 && seg[0] == '.':
		return 1
	case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
		return 2
	}
	return 0
}

// badPath returns the error of the bad path raw. It quotes raw, which is
// the caller's and ends up in the deny's body and challenge and in the
// audit log, but never its query or fragment, where tokens travel
// (access_token=), and at most its first 64 bytes, cut before a '/' or
// ';' so that no segment, and no token in one, is shown in part.
func badPath(raw, reason string) error {
	const maxShown = 64
	shown := raw
	if i := strings.IndexAny(shown, "?#"); i >= 0 {
		shown = shown[:i]
	}
	if len(shown) > maxShown {
		shown = shown[:max(strings.LastIndexAny(shown[:maxShown+1], "/;"), 0)]
	}
	if len(shown) < len(raw) {
		shown += "..."
	}
	return fmt.Errorf("%w %q: %s", ErrBadPath, shown, reason)
}

// segmentError says what is wrong in a path segment, and where in it.
type segmentError struct {
	reason string
	offset int
}

// appendSegment appends the canonical form of one path segment (no '/') to
// dst. Patterns use it for their literal segments, so that a pattern and a
// request path are canonicalized by the same code.
func appendSegment(dst []byte, seg string) ([]byte, *segmentError) {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch class[c] {
		case plain:
			dst = append(dst, c)
		case escape:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		case forbidden:
			return dst, &segmentError{forbiddenReason(c, false), i}
		case fragment:
			return dst, &segmentError{fragmentReason, i}
		case percent:
			if i+2 >= len(seg) {
				return dst, &segmentError{fmt.Sprintf("truncated escape %q", seg[i:]), i}
			}
			hi, lo := unhex(seg[i+1]), unhex(seg[i+2])
			if hi < 0 || lo < 0 {
				return dst, &segmentError{fmt.Sprintf("invalid escape %q", seg[i:i+3]), i}
			}
			d := byte(hi<<4 | lo)
			switch {
			case class[d] == plain:
				dst = append(dst, d)
			case d == '/':
				return dst, &segmentError{fmt.Sprintf("encoded slash %q", seg[i:i+3]), i}
			case class[d] == forbidden:
				return dst, &segmentError{forbiddenReason(d, true), i}
			default:
				dst = append(dst, '%', upperHex[d>>4], upperHex[d&15])
			}
			i += 2
		}
	}
	return dst, nil
}

// fragmentReason is why a raw '#' is rejected.
const fragmentReason = "raw '#', which no request-target carries"

func forbiddenReason(c byte, encoded bool) string {
	var what string
	switch {
	case c == '\\':
		what = "backslash"
	case c == ';':
		what = "semicolon"
	case c == 0:
		what = "NUL"
	default:
		what = fmt.Sprintf("control character 0x%02X", c)
	}
	if encoded {
		return fmt.Sprintf("encoded %s %%%02X", what, c)
	}
	return what
}

// canonical returns raw without its query, and whether that is a path
// NormalizePath would return unchanged, from a raw without '#': one
// starting with '/', without empty segments but the last, dot segments,
// bytes that need escaping or forbidden bytes, whose escapes are needed
// and upper-case.
func canonical(raw string) (string, bool) {
	if raw == "" || raw[0] != '/' {
		return "", false
	}
	start, i := 1, 1
scan:
	for ; i < len(raw); i++ {
		switch class[raw[i]] {
		case plain:
		case slash:
			if seg := raw[start:i]; seg == "" || seg == "." || seg == ".." {
				return "", false
			}
			start = i + 1
		case percent:
			if i+2 >= len(raw) {
				return "", false
			}
			hi, lo := unhexUpper(raw[i+1]), unhexUpper(raw[i+2])
			if hi < 0 || lo < 0 {
				return "", false
			}
			if d := byte(hi<<4 | lo); class[d] == plain || d == '/' || class[d] == forbidden {
				return "", false
			}
			i += 2
		case stop:
			if strings.IndexByte(raw[i:], '#') >= 0 {
				return "", false
			}
			break scan
		default:
			return "", false
		}
	}
	// The last segment may be empty: a trailing slash is kept.
	if seg := raw[start:i]; seg == "." || seg == ".." {
		return "", false
	}
	return raw[:i], true
}

// Byte classes for path canonicalization.
const (
	plain     = iota // kept as it is
	escape           // percent-encoded
	forbidden        // rejected
	percent          // starts an escape
	slash            // separates segments; never seen by appendSegment
	stop             // '?': ends the path; never seen by appendSegment
	fragment         // '#': rejected raw, kept as an escape
)

// class maps each byte to how a path treats it. RFC 3986 allows unreserved
// characters, sub-delims, ':' and '@' raw in a path segment: those are
// plain, and so is their escape once decoded. ';' is a sub-delim too, but
// forbidden: see NormalizePath.
var class = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c < 0x20 || c == 0x7F || c == '\\' || c == ';':
			t[c] = forbidden
		case c == '/':
			t[c] = slash
		case isUnreserved(byte(c)) || c == ':' || c == '@':
			t[c] = plain
		case c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' ||
			c == '*' || c == '+' || c == ',' || c == '=':
			t[c] = plain
		case c == '%':
			t[c] = percent
		case c == '?':
			t[c] = stop
		case c == '#':
			t[c] = fragment
		default:
			t[c] = escape
		}
	}
	return t
}()

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

const upperHex = "0123456789ABCDEF"

// unhex returns the value of the hex digit c, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// unhexUpper is unhex for canonical escapes, which use upper-case hex only.
func unhexUpper(c byte) int {
	if 'a' <= c && c <= 'f' {
		return -1
	}
	return unhex(c)
}
