package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadAuthority is wrapped by every error ParseAuthority returns. A
// request whose authority is rejected must be refused (400): a host that
// scopegate reads one way and an upstream another is how a host-specific
// route gets skipped.
var ErrBadAuthority = errors.New("bad request authority")

// ParseAuthority splits the authority of a request, its Host header or
// HTTP/2 :authority, into host and port, as RFC 3986 section 3.2 and RFC
// 9110 section 7.2 write it: host [":" port]. The host is returned as
// sent, in any case, with a trailing dot and an IPv6 address's brackets
// kept; port is "" when there is none. Match and MatchAll read a request's
// host with it.
//
// It rejects, rather than repairs, what upstreams read in different ways:
//
//   - userinfo ("user@host"), which RFC 9110 forbids in an http(s)
//     authority and which may carry a password;
//   - a port that is not all digits or is above 65535 ("host:x",
//     "host:443.", "host:+443", "host: 443", "host:80:80"): nginx cuts the
//     host at the first ':', Envoy strips a port that its number parser
//     accepts, and Go keeps the whole string;
//   - an empty port ("host:"): RFC 3986 allows it, but Envoy keeps "host:"
//     as the host where Go and nginx read "host";
//   - an empty host (":443") and an empty label ("a..b", ".a"), except one
//     trailing dot, which names the same host ("a.b.");
//   - a host name longer than 253 bytes without its trailing dot, the
//     longest DNS name: no route lists one, yet a wildcard route covers
//     it, and so does an upstream's;
//   - in a host name, any byte but letters, digits, '-', '.', '_' and '~':
//     RFC 3986 also allows percent-escapes and sub-delims (such as ',' and
//     ';') in a reg-name, but no DNS name holds them, no route can list
//     them, and upstreams disagree on whether an escape is decoded and
//     where a ',' or ';' ends the host; control characters, spaces and
//     non-ASCII bytes go with them;
//   - an IP literal that is not an IPv6 address in brackets: RFC 3986's
//     IPvFuture and RFC 6874's zone identifiers ("[fe80::1%25eth0]").
//
// An empty authority is a request without a host: ParseAuthority returns
// no error for it, and leaves to the caller whether such a request is
// acceptable. It does not allocate unless it returns an error.
func ParseAuthority(authority string) (host, port string, err error) {
	host, port, bad := splitAuthority(authority)
	if bad.reason != "" {
		return "", "", fmt.Errorf("%w: %s at byte %d", ErrBadAuthority, bad.reason, bad.offset)
	}
	return host, port, nil
}

// authorityError says what is wrong in an authority, and where. Its
// reason never quotes the authority: a Host header is the caller's to
// fill, with a password in its userinfo or a token anywhere.
type authorityError struct {
	reason string // "" for none
	offset int
}

// splitAuthority is ParseAuthority without the error value, so that Match
// can refuse a bad authority without allocating.
func splitAuthority(s string) (host, port string, bad authorityError) {
	if s == "" {
		return "", "", bad
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		return "", "", authorityError{"userinfo ('@')", i}
	}
	end := 0
	if s[0] == '[' {
		j := strings.IndexByte(s, ']')
		if j < 0 {
			return "", "", authorityError{"'[' without ']'", 0}
		}
		if !isIPv6(s[1:j]) {
			return "", "", authorityError{"IP literal that is not an IPv6 address", 1}
		}
		end = j + 1
		if end < len(s) && s[end] != ':' {
			return "", "", authorityError{"character after ']' that is not ':'", end}
		}
	} else {
		// A label ends at each dot, and must not be empty; the one after
		// a trailing dot is.
		label := 0
		for end < len(s) && s[end] != ':' {
			switch c := s[end]; {
			case c == '.':
				if end == label {
					return "", "", authorityError{"empty label", end}
				}
				label = end + 1
			case !hostChar[c]:
				return "", "", authorityError{"character not allowed in a host name", end}
			}
			end++
		}
		if end == 0 {
			return "", "", authorityError{"empty host", 0}
		}
		// A longer name is no DNS name and no route lists it, but a route
		// for *.example.com covers it, as an upstream routing by suffix
		// does: matched against the routes without hosts only, it would
		// skip that route.
		if len(strings.TrimSuffix(s[:end], ".")) > maxHostLen {
			return "", "", authorityError{"host name longer than 253 bytes", maxHostLen}
		}
	}
	host = s[:end]
	if end == len(s) {
		return host, "", bad
	}
	port = s[end+1:]
	if port == "" {
		return "", "", authorityError{"empty port", end + 1}
	}
	n := 0
	for i := 0; i < len(port); i++ {
		c := port[i]
		if c < '0' || c > '9' {
			return "", "", authorityError{"port is not a number", end + 1 + i}
		}
		if n = n*10 + int(c-'0'); n > 65535 {
			return "", "", authorityError{"port above 65535", end + 1}
		}
	}
	return host, port, bad
}

// hostChar marks the bytes allowed in a host name: RFC 3986's unreserved
// characters. It is a table, since it runs over every byte of every host.
var hostChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = isUnreserved(byte(c))
	}
	return t
}()

// isIPv6 reports whether s is an IPv6address of RFC 3986 section 3.2.2:
// eight groups of one to four hex digits separated by ':', the last two
// possibly written as an IPv4 address, or fewer around one "::". It is
// written out rather than taken from net/netip, whose ParseAddr also reads
// zones and IPv4 addresses and allocates on failure.
func isIPv6(s string) bool {
	groups, ellipsis := 0, false
	i := 0
	if strings.HasPrefix(s, "::") {
		ellipsis, i = true, 2
		if i == len(s) {
			return true
		}
	}
	for {
		j := i
		for j < len(s) && j-i < 5 && isHex(s[j]) {
			j++
		}
		if j < len(s) && s[j] == '.' {
			if !isIPv4(s[i:]) {
				return false
			}
			groups += 2
			break
		}
		if n := j - i; n == 0 || n > 4 {
			return false
		}
		groups++
		if j == len(s) {
			break
		}
		if s[j] != ':' {
			return false
		}
		j++
		if j < len(s) && s[j] == ':' {
			if ellipsis {
				return false
			}
			ellipsis = true
			j++
			if j == len(s) {
				break
			}
		} else if j == len(s) {
			return false
		}
		i = j
	}
	if ellipsis {
		return groups <= 7
	}
	return groups == 8
}

// isIPv4 reports whether s is an IPv4address of RFC 3986 section 3.2.2:
// four decimal octets without leading zeros.
func isIPv4(s string) bool {
	for k := range 4 {
		if k > 0 {
			if s == "" || s[0] != '.' {
				return false
			}
			s = s[1:]
		}
		n, i := 0, 0
		for i < len(s) && i < 4 && '0' <= s[i] && s[i] <= '9' {
			n = n*10 + int(s[i]-'0')
			i++
		}
		if i == 0 || i > 3 || n > 255 || i > 1 && s[0] == '0' {
			return false
		}
		s = s[i:]
	}
	return s == ""
}

func isHex(c byte) bool { return unhex(c) >= 0 }
