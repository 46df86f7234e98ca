package policy

import (
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

var authorityTests = []struct {
	name       string
	in         string
	host, port string
	err        string // part of the rejection's message; "" when accepted
}{
	{"host_alone", "api.example.com", "api.example.com", "", ""},
	{"host_and_port", "API.Example.com:8443", "API.Example.com", "8443", ""},
	{"trailing_dot_is_kept_for_the_matcher_to_trim", "api.example.com.:443", "api.example.com.", "443", ""},
	{"ipv4_address", "10.0.0.1:80", "10.0.0.1", "80", ""},
	{"ipv6_address", "[::1]:8443", "[::1]", "8443", ""},
	{"ipv6_address_alone", "[2001:DB8::1]", "[2001:DB8::1]", "", ""},
	{"ipv6_with_an_ipv4_tail", "[::ffff:10.0.0.1]", "[::ffff:10.0.0.1]", "", ""},
	{"underscore_and_tilde_are_unreserved", "a_b~c", "a_b~c", "", ""},
	{"port_zero_and_the_highest_port", "h:0", "h", "0", ""},
	{"highest_port", "h:65535", "h", "65535", ""},
	{"leading_zeros_of_a_port", "h:0443", "h", "0443", ""},
	{"no_authority_is_no_host", "", "", "", ""},

	{"port_with_a_letter", "admin.example.com:x", "", "", "port is not a number at byte 18"},
	{"port_with_a_dot", "admin.example.com:443.", "", "", "port is not a number at byte 21"},
	{"port_with_a_suffix", "admin.example.com:443x", "", "", "port is not a number"},
	{"port_with_a_space", "admin.example.com: 443", "", "", "port is not a number at byte 18"},
	{"port_with_a_plus_sign", "admin.example.com:+443", "", "", "port is not a number"},
	{"negative_port", "admin.example.com:-1", "", "", "port is not a number"},
	{"two_ports", "admin.example.com:80:80", "", "", "port is not a number at byte 20"},
	{"port_above_65535", "admin.example.com:65536", "", "", "port above 65535 at byte 18"},
	{"long_port", "h:" + strings.Repeat("9", 100), "", "", "port above 65535"},
	{"empty_port", "admin.example.com:", "", "", "empty port at byte 18"},
	{"empty_port_after_ipv6", "[::1]:", "", "", "empty port"},
	{"empty_host_with_a_port", ":443", "", "", "empty host at byte 0"},
	{"colon_alone", ":", "", "", "empty host"},
	{"userinfo", "user@admin.example.com", "", "", "userinfo ('@') at byte 4"},
	{"userinfo_with_password", "u:secret@admin.example.com", "", "", "userinfo"},
	{"percent_escape", "%61dmin.example.com", "", "", "character not allowed in a host name at byte 0"},
	{"sub_delim_comma", "a.example.com,admin.example.com", "", "", "character not allowed in a host name at byte 13"},
	{"sub_delim_semicolon", "admin.example.com;x", "", "", "character not allowed"},
	{"space", "admin.example.com x", "", "", "character not allowed"},
	{"control_character", "admin.example.com\r\nx", "", "", "character not allowed"},
	{"nul", "admin\x00.example.com", "", "", "character not allowed in a host name at byte 5"},
	{"non_ascii", "admín.example.com", "", "", "character not allowed in a host name at byte 3"},
	{"slash", "admin.example.com/x", "", "", "character not allowed"},
	{"empty_label", "admin..example.com", "", "", "empty label at byte 6"},
	{"leading_dot", ".admin.example.com", "", "", "empty label at byte 0"},
	{"two_trailing_dots", "admin.example.com..", "", "", "empty label"},
	{"dot_alone", ".", "", "", "empty label"},
	{"ipv6_without_brackets", "::1", "", "", "empty host"},
	{"unclosed_bracket", "[::1", "", "", "'[' without ']' at byte 0"},
	{"bytes_after_the_bracket", "[::1]x", "", "", "character after ']' that is not ':' at byte 5"},
	{"bracketed_reg_name", "[admin.example.com]", "", "", "IP literal that is not an IPv6 address"},
	{"bracketed_ipv4", "[10.0.0.1]", "", "", "IP literal that is not an IPv6 address"},
	{"ipv6_zone", "[fe80::1%25eth0]", "", "", "IP literal"},
	{"ipvfuture", "[v1.x]", "", "", "IP literal"},
	{"ipv6_too_short", "[1:2]", "", "", "IP literal"},
}

func TestParseAuthority(t *testing.T) {
	for _, tt := range authorityTests {
		t.Run(tt.name, func(t *testing.T) {
			host, port, err := ParseAuthority(tt.in)
			if tt.err == "" {
				if err != nil || host != tt.host || port != tt.port {
					t.Fatalf("ParseAuthority(%q) = %q, %q, %v; want %q, %q", tt.in, host, port, err, tt.host, tt.port)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseAuthority(%q) = %q, %q; want an error", tt.in, host, port)
			}
			if !errors.Is(err, ErrBadAuthority) {
				t.Errorf("error %v does not wrap ErrBadAuthority", err)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error = %v, want it to contain %q", err, tt.err)
			}
		})
	}
}

// TestParseAuthorityErrorsDoNotEchoTheAuthority pins that an error says
// what is wrong and where, never what was sent: a Host header is the
// caller's to fill, with a password or a token.
func TestParseAuthorityErrorsDoNotEchoTheAuthority(t *testing.T) {
	const secret = "s3cr3tTOKENvalue"
	for _, a := range []string{"u:" + secret + "@h", secret + ",h", "h:" + secret, "[" + secret + "]", secret + "..x"} {
		_, _, err := ParseAuthority(a)
		if err == nil {
			t.Fatalf("ParseAuthority(%q) accepted it", a)
		}
		if msg := err.Error(); strings.Contains(msg, "s3cr3t") || len(msg) > 100 {
			t.Errorf("ParseAuthority(%q): error %q quotes the authority", a, msg)
		}
	}
}

func TestParseAuthorityDoesNotAllocate(t *testing.T) {
	for _, a := range []string{"api.example.com", "API.example.com.:8443", "[2001:db8::1]:443", ""} {
		if n := testing.AllocsPerRun(100, func() { ParseAuthority(a) }); n != 0 {
			t.Errorf("ParseAuthority(%q) made %v allocations, want 0", a, n)
		}
	}
}

// TestMatchRefusesEveryBadAuthority pins that a host-specific route is
// never skipped for a catch-all by a spelling of its host that
// ParseAuthority refuses: the request matches no route at all.
func TestMatchRefusesEveryBadAuthority(t *testing.T) {
	p := mustParse(t, routes(`admin: {hosts: [admin.example.com], path: "/**"}`, `public: {path: "/**"}`))
	for _, host := range []string{"admin.example.com", "ADMIN.example.com.", "admin.example.com:443", "admin.example.com.:8443"} {
		if got := routeName(p.Match("GET", host, "/x", nil)); got != "admin" {
			t.Errorf("Match(host %q) = %q, want admin", host, got)
		}
	}
	for _, tt := range authorityTests {
		if tt.err == "" {
			continue
		}
		if got := p.Match("GET", tt.in, "/x", nil); got != nil {
			t.Errorf("Match(host %q) = %q, want no route for an authority ParseAuthority refuses", tt.in, got.Name)
		}
		if all := p.MatchAll("GET", tt.in, "/x", nil); len(all) != 0 {
			t.Errorf("MatchAll(host %q) = %v, want none", tt.in, names(all))
		}
	}
}

// TestParseAuthorityAgreesWithNetURL holds ParseAuthority against net/url,
// the reference: on every authority of a corpus built from hosts and ports
// of each kind, either both accept it and split it alike, or ParseAuthority
// refuses it for a documented reason (see differsFromNetURL).
func TestParseAuthorityAgreesWithNetURL(t *testing.T) {
	hosts := []string{
		"a.example.com", "A.Example.COM.", "10.0.0.1", "a_b~c-d", "x",
		"[::1]", "[2001:DB8::1]", "[::ffff:10.0.0.1]", "[1:2:3:4:5:6:7:8]", "[1::]",
		"[fe80::1%25eth0]", "[v1.x]", "[1:2]", "[10.0.0.1]", "[::1", "::1",
		"", "a..b", ".a", "a..", ".", "a,b", "a;b", "a%41", "%", "a b", "é", "a\x00", "a\tb",
		"user@a", "u:p@a", "@a", "a/b", "a?b", "a#b", "a\\b", "[::1]x",
	}
	ports := []string{
		"", ":", ":0", ":443", ":0443", ":65535", ":65536", ":99999", ":x", ":443.", ":443x",
		":+443", ": 443", ":-1", ":80:80", ":١", ":4 43", ":%34",
	}
	for _, h := range hosts {
		for _, p := range ports {
			if msg := differsFromNetURL(h + p); msg != "" {
				t.Error(msg)
			}
		}
	}
}

// differsFromNetURL returns how ParseAuthority's reading of a departs from
// net/url's reading of "http://a/", or "" when it does not. An a holding
// '/', '?' or '#' counts as refused by net/url, which would read only what
// comes before it as the authority. Where both
// accept a, they must agree on host and port, and so must net.SplitHostPort
// when there is a port. ParseAuthority never accepts what net/url refuses.
// It refuses what net/url accepts only for these reasons, each a place
// where RFC 3986, RFC 9110 and Go part ways or where upstreams disagree:
//
//   - userinfo: net/url reads a URL, whose authority may carry one; RFC
//     9110 forbids it in a Host header;
//   - an empty host, or an empty port after ':', which RFC 3986 allows;
//   - a port above 65535, which net/url does not bound;
//   - in a host name, a byte RFC 3986 allows in a reg-name but no DNS name
//     holds (sub-delims, percent-escapes, which net/url decodes, and
//     non-ASCII bytes, which net/url passes), or an empty label. net/url
//     reads "h:80:80" as host "h:80", port "80", so ':' is among them;
//   - an IPv6 zone identifier (RFC 6874), which RFC 3986 does not know.
func differsFromNetURL(a string) string {
	host, port, err := ParseAuthority(a)
	u, uerr := url.Parse("http://" + a + "/")
	if uerr == nil && strings.ContainsAny(a, "/?#") {
		// A URL's authority ends at the first of them: net/url did not
		// read all of a as one.
		uerr = errors.New("not an authority alone")
	}
	if err == nil {
		rebuilt := host
		if port != "" {
			rebuilt += ":" + port
		}
		if rebuilt != a {
			return "ParseAuthority(" + strconv.Quote(a) + ") split it into " + strconv.Quote(host) + " and " + strconv.Quote(port)
		}
		if a == "" {
			return ""
		}
		if uerr != nil {
			return "ParseAuthority accepted " + strconv.Quote(a) + ", which net/url refuses: " + uerr.Error()
		}
		if u.User != nil || u.Hostname() != strings.TrimSuffix(strings.TrimPrefix(host, "["), "]") || u.Port() != port {
			return "ParseAuthority(" + strconv.Quote(a) + ") = " + strconv.Quote(host) + ", " + strconv.Quote(port) +
				"; net/url reads " + strconv.Quote(u.Hostname()) + ", " + strconv.Quote(u.Port())
		}
		if port != "" {
			if h, p, err := net.SplitHostPort(a); err != nil || h != u.Hostname() || p != port {
				return "ParseAuthority(" + strconv.Quote(a) + ") = " + strconv.Quote(host) + ", " + strconv.Quote(port) +
					"; net.SplitHostPort reads " + strconv.Quote(h) + ", " + strconv.Quote(p)
			}
		}
		return ""
	}
	if !errors.Is(err, ErrBadAuthority) {
		return "ParseAuthority(" + strconv.Quote(a) + "): error " + err.Error() + " does not wrap ErrBadAuthority"
	}
	if uerr != nil {
		return ""
	}
	name := u.Hostname()
	n, _ := strconv.Atoi(u.Port())
	switch {
	case u.User != nil, name == "", strings.HasSuffix(a, ":"), n > 65535, len(strings.TrimSuffix(name, ".")) > maxHostLen:
		return ""
	case strings.HasPrefix(u.Host, "["):
		if strings.Contains(name, "%") {
			return ""
		}
	default:
		if strings.Contains(a, "%") || strings.Contains("."+strings.TrimSuffix(name, ".")+".", "..") {
			return ""
		}
		for i := 0; i < len(name); i++ {
			if !isUnreservedRef(name[i]) {
				return ""
			}
		}
	}
	return "ParseAuthority(" + strconv.Quote(a) + ") refused it (" + err.Error() + "), but net/url reads host " +
		strconv.Quote(name) + ", port " + strconv.Quote(u.Port()) + ", and no documented difference applies"
}

// isUnreservedRef reports whether c is an RFC 3986 unreserved character,
// written out here rather than taken from the code under test.
func isUnreservedRef(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0
}

// isIPv6Ref is the reference for isIPv6: net/netip's reading of an IPv6
// address without a zone.
func isIPv6Ref(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && a.Zone() == ""
}

func TestIsIPv6AgreesWithNetip(t *testing.T) {
	for _, s := range []string{
		"::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9",
		"1::2::3", ":1", "1:", ":::", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "::ffff:255.255.255.255",
		"::1.2.3.04", "::1.2.3", "::1.2.3.4.5", "::256.1.1.1", "1.2.3.4", "::1.2.3.4::", "12345::", "abcd::EF01",
		"g::", "1:2:3:4:5:6:7:1.2.3.4", "fe80::1%eth0", "", "::0:0:0:0:0:0:0", "0:0:0:0:0:0:0::",
	} {
		if got, want := isIPv6(s), isIPv6Ref(s); got != want {
			t.Errorf("isIPv6(%q) = %v, net/netip says %v", s, got, want)
		}
	}
}

func FuzzAuthority(f *testing.F) {
	for _, tt := range authorityTests {
		f.Add(tt.in)
	}
	for _, s := range []string{
		"[::]", "[::1.2.3.4]:1", "[1:2:3:4:5:6:7:8]:65535", "h.:1", "a.b.c.d.e", "h:00000000000000000001",
		"[::1]:80:80", "[::1]]", "[[::1]]", "h@[::1]", "h:1@h", "\xff", "h.\x00", "[::1%]", "x:٣",
		"::ffff:1.2.3.4", "1:2:3:4:5:6:7:8", "1::", "::", "a:b::c:1.2.3.4",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, a string) {
		if msg := differsFromNetURL(a); msg != "" {
			t.Fatal(msg)
		}
		if got, want := isIPv6(a), isIPv6Ref(a); got != want {
			t.Fatalf("isIPv6(%q) = %v, net/netip says %v", a, got, want)
		}
		host, port, err := ParseAuthority(a)
		if err != nil {
			return
		}
		if n, err := strconv.Atoi(port); port != "" && (err != nil || n > 65535 || strings.TrimLeft(port, "0123456789") != "") {
			t.Fatalf("ParseAuthority(%q) = port %q", a, port)
		}
		// Whatever the case and trailing dot, a host the parser accepts
		// is the host a route lists.
		if h := strings.TrimSuffix(host, "."); h != "" && !strings.HasPrefix(h, "[") {
			if _, err := parseHost(h); err != nil && len(h) <= maxHostLen && !strings.Contains(h, "~") {
				t.Fatalf("ParseAuthority(%q) = host %q, which no route can list: %v", a, host, err)
			}
		}
	})
}

func BenchmarkParseAuthority(b *testing.B) {
	for _, bm := range []struct{ name, authority string }{
		{"host", "api.example.com"},
		{"host_port", "api.example.com:8443"},
		{"ipv6_port", "[2001:db8::1]:8443"},
		{"dots_253B", strings.Repeat("a.", 126) + "a"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := ParseAuthority(bm.authority); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
