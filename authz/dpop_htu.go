package authz

import (
	"errors"
	"strings"
)

// The htu of a DPoP proof and the URI of the request it is for are
// compared after the normalization that RFC 9449 §4.3 asks for: the
// syntax-based and scheme-based normalization of RFC 3986 §6.2.2 and
// §6.2.3. Go has no such normalizer (net/url neither lowercases the host
// nor normalizes percent-encodings), so it is written here; the tests hold
// it against net/url, and FuzzDPoPHTU holds it to its own idempotence.

var (
	errHTUScheme    = errors.New("htu: the scheme is not http or https")
	errHTUAuthority = errors.New("htu: the authority is not a host with an optional port")
	errHTUPath      = errors.New("htu: the path is not a URI path")
	errHTUQuery     = errors.New("htu: has a query or fragment")
)

// dpopHTU returns the URI that the htu of a proof for the request must
// normalize to: scheme://authority/path of the request's scheme, Host and
// Path, without the query and fragment of the path.
func dpopHTU(scheme, host, path string) (string, error) {
	path, _, _ = strings.Cut(path, "#")
	path, _, _ = strings.Cut(path, "?")
	return buildHTU(scheme, host, path)
}

// normalizeHTU returns the htu claim htu normalized. An htu is without
// query and fragment (RFC 9449 §4.2): one with either is malformed, and
// refused rather than read as the URI without them.
func normalizeHTU(htu string) (string, error) {
	if strings.ContainsAny(htu, "?#") {
		return "", errHTUQuery
	}
	scheme, rest, ok := strings.Cut(htu, "://")
	if !ok {
		return "", errHTUScheme
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	return buildHTU(scheme, authority, path)
}

// buildHTU returns the normalized URI of scheme, authority and path.
func buildHTU(scheme, authority, path string) (string, error) {
	scheme = strings.ToLower(scheme)
	var defaultPort string
	switch scheme {
	case "https":
		defaultPort = "443"
	case "http":
		defaultPort = "80"
	default:
		return "", errHTUScheme
	}
	host, err := normalizeAuthority(authority, defaultPort)
	if err != nil {
		return "", err
	}
	p, err := normalizePath(path)
	if err != nil {
		return "", err
	}
	return scheme + "://" + host + p, nil
}

// normalizeAuthority returns the host, lowercased, and the port unless it
// is empty or the scheme's default. An authority with userinfo is refused:
// no request URI carries one.
func normalizeAuthority(a, defaultPort string) (string, error) {
	var host, port string
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 || !allBytes(a[1:end], func(c byte) bool { return isHex(c) || c == ':' || c == '.' }) {
			return "", errHTUAuthority
		}
		host, port = a[:end+1], a[end+1:]
		if port != "" && port[0] != ':' {
			return "", errHTUAuthority
		}
	} else {
		host, port = a, ""
		if i := strings.LastIndexByte(a, ':'); i >= 0 {
			host, port = a[:i], a[i:]
		}
		if !allBytes(host, isHostByte) {
			return "", errHTUAuthority
		}
	}
	port = strings.TrimPrefix(port, ":")
	if host == "" || len(port) > 5 || !allBytes(port, func(c byte) bool { return '0' <= c && c <= '9' }) {
		return "", errHTUAuthority
	}
	host = strings.ToLower(host)
	if n := strings.TrimLeft(port, "0"); n == "" && port != "" {
		return "", errHTUAuthority // port 0
	} else {
		port = n
	}
	if port == "" || port == defaultPort {
		return host, nil
	}
	return host + ":" + port, nil
}

// normalizePath returns the path with its percent-encodings normalized
// (unreserved characters decoded, the others in uppercase hex), the bytes
// a path may not hold percent-encoded, and its dot segments removed; an
// empty path is "/".
func normalizePath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	if p[0] != '/' {
		return "", errHTUPath
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", errHTUPath
			}
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			if isUnreserved(d) {
				b.WriteByte(d)
			} else {
				writePercent(&b, d)
			}
		case isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' || c == '/':
			b.WriteByte(c)
		default:
			writePercent(&b, c)
		}
	}
	return removeDotSegments(b.String()), nil
}

// removeDotSegments removes the "." and ".." segments of the absolute path
// p (RFC 3986 §5.2.4).
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
			continue
		}
		if last {
			out = append(out, "") // "/a/." and "/a/b/.." end in a slash
		}
	}
	return "/" + strings.Join(out, "/")
}

func writePercent(b *strings.Builder, c byte) {
	const hexDigits = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hexDigits[c>>4])
	b.WriteByte(hexDigits[c&0xf])
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isSubDelim(c byte) bool { return strings.IndexByte("!$&'()*+,;=", c) >= 0 }

// isHostByte reports whether c may be in a registered name or IPv4
// address; percent-encoded and international names are refused rather
// than normalized.
func isHostByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_'
}
