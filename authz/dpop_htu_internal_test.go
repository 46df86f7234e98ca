package authz

import (
	"net/url"
	"strings"
	"testing"
)

func TestDPoPHTUNormalizes(t *testing.T) {
	for _, tc := range []struct{ scheme, host, path, want string }{
		{"https", "api.example.com", "/v1/x", "https://api.example.com/v1/x"},
		{"HTTPS", "API.Example.COM", "/v1/X", "https://api.example.com/v1/X"},
		{"https", "api.example.com:443", "/", "https://api.example.com/"},
		{"http", "api.example.com:80", "/", "http://api.example.com/"},
		{"https", "api.example.com:80", "/", "https://api.example.com:80/"},
		{"https", "api.example.com:08443", "/", "https://api.example.com:8443/"},
		{"https", "api.example.com:", "/", "https://api.example.com/"},
		{"https", "api.example.com", "", "https://api.example.com/"},
		{"https", "api.example.com", "/a?b=c#d", "https://api.example.com/a"},
		{"https", "api.example.com", "/a#d?e", "https://api.example.com/a"},
		{"https", "api.example.com", "/%7euser/%41%2f%2a", "https://api.example.com/~user/A%2F%2A"},
		{"https", "api.example.com", "/a b/é", "https://api.example.com/a%20b/%C3%A9"},
		{"https", "api.example.com", "/a/./b/../c/%2E%2E/d", "https://api.example.com/a/d"},
		{"https", "api.example.com", "/a/..", "https://api.example.com/"},
		{"https", "api.example.com", "/a//b/", "https://api.example.com/a//b/"},
		{"https", "[2001:DB8::1]:443", "/x", "https://[2001:db8::1]/x"},
		{"https", "[::1]:8443", "/x", "https://[::1]:8443/x"},
		{"https", "127.0.0.1:443", "/", "https://127.0.0.1/"},
	} {
		got, err := dpopHTU(tc.scheme, tc.host, tc.path)
		if err != nil || got != tc.want {
			t.Errorf("dpopHTU(%q, %q, %q) = %q, %v; want %q", tc.scheme, tc.host, tc.path, got, err, tc.want)
		}
		// The request's URI, as a client would write it in htu, is read
		// the same.
		if n, err := normalizeHTU(got); err != nil || n != got {
			t.Errorf("normalizeHTU(%q) = %q, %v; want it unchanged", got, n, err)
		}
	}
}

func TestDPoPHTURefusesWhatIsNotAnHTTPURI(t *testing.T) {
	for _, tc := range []struct{ scheme, host, path string }{
		{"", "api.example.com", "/"},
		{"ftp", "api.example.com", "/"},
		{"https", "", "/"},
		{"https", "user@api.example.com", "/"},
		{"https", "api.example.com:x", "/"},
		{"https", "api.example.com:0", "/"},
		{"https", "api.example.com:123456", "/"},
		{"https", "api.example.com:1:2", "/"},
		{"https", "[::1", "/"},
		{"https", "[::1]x", "/"},
		{"https", "[fe80::1%25eth0]", "/"},
		{"https", "ex%41mple.com", "/"},
		{"https", "api.example.com", "*"},
		{"https", "api.example.com", "/%zz"},
		{"https", "api.example.com", "/%4"},
	} {
		if got, err := dpopHTU(tc.scheme, tc.host, tc.path); err == nil {
			t.Errorf("dpopHTU(%q, %q, %q) = %q; want an error", tc.scheme, tc.host, tc.path, got)
		}
	}
	for _, htu := range []string{"https://api.example.com/a?b", "https://api.example.com/a#b", "api.example.com/a", "//api.example.com/a", "https:/api.example.com/a"} {
		if got, err := normalizeHTU(htu); err == nil {
			t.Errorf("normalizeHTU(%q) = %q; want an error", htu, got)
		}
	}
}

// checkNormalizedPath holds normalizePath against net/url: its result is
// a fixed point, decodes as net/url decodes the input, when no segment is
// a dot segment, and has its dot segments removed as net/url resolves
// them.
func checkNormalizedPath(t *testing.T, p string) {
	got, err := normalizePath(p)
	if err != nil || p == "" { // "" is "/" by RFC 3986 §6.2.3
		return
	}
	if again, err := normalizePath(got); err != nil || again != got {
		t.Fatalf("normalizePath(%q) = %q, but normalizePath(%q) = %q, %v", p, got, got, again, err)
	}
	decoded, err := url.PathUnescape(p)
	if err != nil {
		t.Fatalf("normalizePath(%q) = %q, but url.PathUnescape refuses it: %v", p, got, err)
	}
	if !strings.Contains(decoded, ".") {
		if d, err := url.PathUnescape(got); err != nil || d != decoded {
			t.Fatalf("normalizePath(%q) = %q, which decodes to %q, %v; net/url decodes the input to %q", p, got, d, err, decoded)
		}
	}
	// net/url drops an empty segment after "..", where RFC 3986 §5.2.4
	// keeps it ("/..//a" is "//a"): paths with one are left out.
	if !strings.ContainsAny(p, "%") && strings.HasPrefix(p, "/") && !strings.Contains(p, "//") {
		base := &url.URL{Scheme: "https", Host: "h", Path: "/"}
		if want := base.ResolveReference(&url.URL{Path: p}).Path; removeDotSegments(p) != want {
			t.Fatalf("removeDotSegments(%q) = %q; net/url resolves it to %q", p, removeDotSegments(p), want)
		}
	}
}

func TestDPoPHTUPathAgainstNetURL(t *testing.T) {
	for _, p := range []string{
		"/", "/a/b/c/./../../g", "/a/b/..", "/..", "/../a", "/a/./", "/a//b", "/a/.../b", "/.a/..b/",
		"/%2e%2E/x", "/a%2Fb", "/%41%7e", "/a b", "/./", "/a/b/c/..", "/a/b/c/.",
	} {
		checkNormalizedPath(t, p)
	}
}

func FuzzDPoPHTU(f *testing.F) {
	for _, s := range []string{"/a/./b/../c", "/%7e%2F", "/a b", "/..", "/a//b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		checkNormalizedPath(t, p)
		for _, host := range []string{"API.example.com:443", "[::1]:80"} {
			got, err := dpopHTU("https", host, p)
			if err != nil {
				continue
			}
			if n, err := normalizeHTU(got); err != nil || n != got {
				t.Fatalf("dpopHTU(https, %q, %q) = %q, but normalizeHTU reads it as %q, %v", host, p, got, n, err)
			}
			u, err := url.Parse(got)
			if err != nil || u.RawQuery != "" || u.Fragment != "" || u.Host != strings.ToLower(u.Host) {
				t.Fatalf("dpopHTU(https, %q, %q) = %q, which net/url reads as %+v, %v", host, p, got, u, err)
			}
		}
	})
}
