package config

import (
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
			c, err := Parse("c.yaml", []byte(tt.listen+rest))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Listen.HTTPCheckTimeout != tt.want {
				t.Errorf("http_check_timeout = %v, want %v", c.Listen.HTTPCheckTimeout, tt.want)
			}
		})
	}
}
