package config

import (
	"strings"
	"testing"
)

func TestParseNamesTheIntrospectionBudgetAndTokenFormatFields(t *testing.T) {
	src := `introspection:
  endpoint: https://hydra.example.com/admin/oauth2/introspect
  client_id: scopegate
  client_secret_env: SECRET
  max_rate: 50
  reserved_rate: 50
  max_rate_per_peer: 60
  token_format: {prefix: "ory at", alphabet: base58, min_length: 94, max_length: 90, segments: -2}
policy: { file: p.yaml }
`
	_, err := Parse("config.yaml", []byte(src))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`config.yaml:6:18: introspection.reserved_rate: must be less than max_rate (50)`,
		`config.yaml:7:22: introspection.max_rate_per_peer: must not exceed max_rate (50)`,
		`config.yaml:8:26: introspection.token_format.prefix: "ory at" holds characters that no bearer token holds`,
		`config.yaml:8:46: introspection.token_format.alphabet: "base58" is not base64url, base64, base32, hex or alphanumeric`,
		`config.yaml:8:82: introspection.token_format.max_length: must be at least min_length`,
		`config.yaml:8:96: introspection.token_format.segments: must not be negative`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not contain %q:\n%v", want, err)
		}
	}
}

func TestParseAcceptsHydrasTokenFormat(t *testing.T) {
	c, err := Parse("config.yaml", []byte(`introspection:
  endpoint: https://hydra.example.com/admin/oauth2/introspect
  client_id: scopegate
  client_secret_env: SECRET
  token_format: {prefix: ory_at_, alphabet: base64url, segments: 2, min_length: 94, max_length: 94}
policy: { file: p.yaml }
`))
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Introspection.TokenFormat; f == nil || f.Prefix != "ory_at_" || f.Segments != 2 || f.MaxLength != 94 {
		t.Errorf("token_format = %+v", f)
	}
}
