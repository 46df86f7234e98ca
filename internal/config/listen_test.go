package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHTTPCheckTimeout(t *testing.T) {
	const rest = `issuers:
  - issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/jwks
policy: { file: policy.yaml }
`
	tests := []struct {
		name, listen string
		want         time.Duration
		err          string
	}{
		{"unset takes the listener's default", "listen: { http: 127.0.0.1:9004 }\n", 0, ""},
		{"set", "listen:\n  http: 127.0.0.1:9004\n  http_check_timeout: 150ms\n", 150 * time.Millisecond, ""},
		{"negative", "listen:\n  http: 127.0.0.1:9004\n  http_check_timeout: -1s\n", 0, "c.yaml:3:23: listen.http_check_timeout: must not be negative"},
		{"without the HTTP listener", "listen:\n  http_check_timeout: 150ms\n", 0, "c.yaml:2:23: listen.http_check_timeout: needs listen.http"},
		{"without a unit", "listen:\n  http: 127.0.0.1:9004\n  http_check_timeout: 200\n", 0, "c.yaml:3:3: listen.http_check_timeout: got a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseOrWantErr(t, tt.listen+rest, tt.err)
			if c == nil {
				return
			}
			if c.Listen.HTTPCheckTimeout != tt.want {
				t.Errorf("http_check_timeout = %v, want %v", c.Listen.HTTPCheckTimeout, tt.want)
			}
		})
	}
}

func TestTrustedProxies(t *testing.T) {
	const rest = `issuers:
  - issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/jwks
policy: { file: policy.yaml }
`
	tests := []struct {
		name, listen string
		want         []netip.Prefix
		err          string
	}{
		{"unset trusts no proxy", "listen: { http: 127.0.0.1:9004 }\n", nil, ""},
		{"CIDRs and single addresses", "listen:\n  http: 127.0.0.1:9004\n  trusted_proxies: [10.0.0.0/8, 192.0.2.7, \"2001:db8::/32\", \"::1\"]\n",
			[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("::1/128")}, ""},
		{"not an address", "listen:\n  http: 127.0.0.1:9004\n  trusted_proxies:\n    - 10.0.0.0/8\n    - envoy.internal\n", nil,
			`c.yaml:5:7: listen.trusted_proxies[1]: "envoy.internal" is not an IP address or a CIDR`},
		{"a bad CIDR", "listen:\n  http: 127.0.0.1:9004\n  trusted_proxies: [10.0.0.0/33]\n", nil,
			`c.yaml:3:21: listen.trusted_proxies[0]: "10.0.0.0/33" is not a CIDR`},
		{"host bits set", "listen:\n  http: 127.0.0.1:9004\n  trusted_proxies: [10.1.2.3/8]\n", nil,
			`listen.trusted_proxies[0]: "10.1.2.3/8" has host bits set: did you mean 10.0.0.0/8?`},
		{"without the HTTP listener", "listen:\n  trusted_proxies: [10.0.0.0/8]\n", nil, "c.yaml:2:20: listen.trusted_proxies: needs listen.http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseOrWantErr(t, tt.listen+rest, tt.err)
			if c == nil {
				return
			}
			if got := c.Listen.TrustedProxyPrefixes(); !slices.Equal(got, tt.want) {
				t.Errorf("trusted proxies = %v, want %v", got, tt.want)
			}
		})
	}
}

// parseOrWantErr parses src as c.yaml and returns it, or, when wantErr is
// set, fails t unless parsing fails with an error containing wantErr, and
// returns nil.
func parseOrWantErr(t *testing.T, src, wantErr string) *Config {
	t.Helper()
	c, err := Parse("c.yaml", []byte(src))
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want %q", err, wantErr)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}
