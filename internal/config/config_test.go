package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseReportsEveryProblemWithLineAndField(t *testing.T) {
	src := `listen:
  grpc: nonsense
issuers:
  - issuer: https://idp.example.com
    algorithms: [RS256, HS256]
  - issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/jwks
max_token_size: -1
`
	_, err := Parse("conf/config.yaml", []byte(src))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`conf/config.yaml:2:9: listen.grpc: "nonsense" is not a host:port address`,
		`conf/config.yaml:4:5: issuers[0].jwks_uri: the URL of the issuer's keys is required`,
		`conf/config.yaml:5:25: issuers[0].algorithms[1]: "HS256" is never accepted`,
		`conf/config.yaml:6:13: issuers[1].issuer: issuer "https://idp.example.com" is configured twice`,
		`conf/config.yaml:1:1: policy.file: the policy file is required`,
		`conf/config.yaml:8:17: max_token_size: must not be negative`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not contain %q:\n%v", want, err)
		}
	}
}

func TestParseRefusesUnknownFields(t *testing.T) {
	_, err := Parse("config.yaml", []byte("issuers: []\npolicy: { file: p.yaml }\nlisten: { grcp: 127.0.0.1:1 }\n"))
	if err == nil || !strings.Contains(err.Error(), `config.yaml:3:11: listen.grcp: unknown field "grcp"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseDefaultsAndRelativePolicy(t *testing.T) {
	c, err := Parse(filepath.Join("etc", "scopegate", "config.yaml"), []byte(`issuers:
  - issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/jwks
policy: { file: policy.yaml }
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.GRPC != "127.0.0.1:9001" || c.Listen.Admin != "127.0.0.1:9002" {
		t.Errorf("listen defaults: %+v", c.Listen)
	}
	if want := filepath.Join("etc", "scopegate", "policy.yaml"); c.Policy.File != want {
		t.Errorf("policy file %q, want %q", c.Policy.File, want)
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "examples", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Issuers) != 1 || c.Issuers[0].Issuer != "https://idp.example.com" {
		t.Errorf("issuers: %+v", c.Issuers)
	}
}
