package policy

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// segKind is the kind of one segment of a path pattern.
type segKind uint8

const (
	segLiteral segKind = iota // matches itself
	segParam                  // * or {name}: matches any one segment
	segRest                   // a final **: matches any number of segments, even none
)

// segment is one segment of a compiled path pattern.
type segment struct {
	kind segKind
	lit  string // the canonical literal, for segLiteral
}

// parsePattern compiles a path pattern. It returns the segments and the
// pattern written canonically: slashes merged, no trailing slash, literals
// normalized, {name} kept as written.
func parsePattern(pattern string) ([]segment, string, error) {
	if pattern == "" {
		return nil, "", errors.New("is required")
	}
	if pattern[0] != '/' {
		return nil, "", fmt.Errorf("%q does not start with /", pattern)
	}
	if i := strings.IndexAny(pattern, "?#"); i >= 0 {
		return nil, "", fmt.Errorf("%q: %q at byte %d: a pattern matches the path only, never the query or fragment", pattern, pattern[i], i)
	}
	var segs []segment
	var canon strings.Builder
	start := 1 // of raw in pattern
	for raw := range strings.SplitSeq(pattern[1:], "/") {
		at := start
		start += len(raw) + 1
		if raw == "" {
			// Repeated and trailing slashes mean nothing, as in requests.
			continue
		}
		if len(segs) > 0 && segs[len(segs)-1].kind == segRest {
			return nil, "", fmt.Errorf("%q: ** is allowed only as the last segment", pattern)
		}
		var s segment
		switch {
		case raw == "**":
			s.kind = segRest
		case raw == "*":
			s.kind = segParam
		case len(raw) > 2 && raw[0] == '{' && raw[len(raw)-1] == '}':
			if !isParamName(raw[1 : len(raw)-1]) {
				return nil, "", fmt.Errorf("%q: segment name %s must be a letter or _ followed by letters, digits or _", pattern, raw)
			}
			s.kind = segParam
		case strings.ContainsAny(raw, "*{}"):
			return nil, "", fmt.Errorf("%q: segment %q: a wildcard must be a whole segment: *, {name} or a final **", pattern, raw)
		default:
			lit, bad := appendSegment(nil, raw)
			if bad != nil {
				return nil, "", fmt.Errorf("%q: %s at byte %d", pattern, bad.reason, at+bad.offset)
			}
			if dotSegment(lit) > 0 {
				return nil, "", fmt.Errorf("%q: segment %q is a dot segment; write the path it means", pattern, raw)
			}
			if bytes.IndexByte(lit, '*') >= 0 {
				// Route.Path writes literals decoded, where this * would
				// read as a wildcard.
				return nil, "", fmt.Errorf("%q: segment %q: %%2A is *, which patterns keep for wildcards", pattern, raw)
			}
			s.lit = string(lit)
		}
		segs = append(segs, s)
		canon.WriteByte('/')
		if s.kind == segLiteral {
			canon.WriteString(s.lit)
		} else {
			canon.WriteString(raw)
		}
	}
	if canon.Len() == 0 {
		return segs, "/", nil
	}
	return segs, canon.String(), nil
}

func isParamName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return name != ""
}

// parseHost validates a host of a route's match and returns it in the form
// matching uses: lower case, without a trailing dot. A leading "*." makes a
// wildcard that matches any one or more labels before the rest.
func parseHost(host string) (string, error) {
	h := strings.ToLower(host)
	name := strings.TrimPrefix(h, "*.")
	switch {
	case h == "":
		return "", errors.New("is empty")
	case h == "*":
		return "", fmt.Errorf("%q: leave hosts out to match any host", host)
	case strings.Contains(h, ":") && isPort(h[strings.LastIndexByte(h, ':')+1:]):
		return "", fmt.Errorf("%q: a host must not include a port; the port of a request is ignored", host)
	case strings.Contains(name, "*"):
		return "", fmt.Errorf("%q: a wildcard is allowed only as a leading \"*.\"", host)
	}
	name = strings.TrimSuffix(name, ".")
	if len(name) > 253 {
		return "", fmt.Errorf("%q: longer than 253 characters", host)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return "", fmt.Errorf("%q: empty label", host)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("%q: invalid character %q", host, c)
			}
		}
	}
	if strings.HasPrefix(h, "*.") {
		return "*." + name, nil
	}
	return name, nil
}

// isPort reports whether s is all digits, as a port after a host is.
func isPort(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), the
// syntax of a method.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// IsScopeToken reports whether s is an OAuth scope token (RFC 6749 section
// 3.3): printable ASCII but space, '"' and '\'. Scopes are advertised in a
// quoted WWW-Authenticate parameter, so '"' and '\' must not reach it, and
// forwarded space-delimited, so a space must not be in one.
func IsScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7E {
			return false
		}
	}
	return s != ""
}

// isRouteName reports whether s is a valid route name. Names become metric
// label values, so they are kept to [A-Za-z0-9_.:-]+.
func isRouteName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return s != ""
}
