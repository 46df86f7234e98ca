package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	c, _, err := Load(filepath.Join("..", "..", "examples", "config.yaml"), Everything)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Issuers) != 1 || c.Issuers[0].Issuer != "https://idp.example.com" {
		t.Errorf("issuers: %+v", c.Issuers)
	}
}

func TestParseOperationsSettings(t *testing.T) {
	src := `listen:
  grpc: 127.0.0.1:9001
  http: 127.0.0.1:9001
issuers:
  - issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/jwks
policy: { file: policy.yaml }
tls:
  cert_file: tls.crt
audit:
  allow_sample_rate: 1.5
`
	_, err := Parse("conf/config.yaml", []byte(src))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`conf/config.yaml:3:9: listen.http: 127.0.0.1:9001 is also listen.grpc`,
		`conf/config.yaml:9:3: tls.key_file: is required with tls`,
		`conf/config.yaml:11:22: audit.allow_sample_rate: must be between 0 and 1`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not contain %q:\n%v", want, err)
		}
	}

	c, err := Parse(filepath.Join("conf", "config.yaml"), []byte(`listen: { http: 127.0.0.1:9004 }
issuers:
  - issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/jwks
policy: { file: policy.yaml }
tls: { cert_file: tls.crt, key_file: /etc/tls/tls.key, client_ca_file: ca.crt }
audit: { output: audit.log }
ca_file: idp-ca.pem
introspection:
  endpoint: https://idp.example.com/introspect
  client_id: scopegate
  client_secret_file: secret
  cache: { redis: { addrs: [127.0.0.1:6379], password_file: redis-password } }
`))
	if err != nil {
		t.Fatal(err)
	}
	type paths struct{ cert, key, ca, audit, caFile, secret, redis string }
	want := paths{
		filepath.Join("conf", "tls.crt"), "/etc/tls/tls.key", filepath.Join("conf", "ca.crt"),
		filepath.Join("conf", "audit.log"), filepath.Join("conf", "idp-ca.pem"),
		filepath.Join("conf", "secret"), filepath.Join("conf", "redis-password"),
	}
	got := paths{c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ClientCAFile, c.Audit.Output, c.CAFile,
		c.Introspection.ClientSecretFile, c.Introspection.Cache.Redis.PasswordFile}
	if got != want {
		t.Errorf("paths %+v, want them relative to the config file's folder: %+v", got, want)
	}
	if !c.Audit.On() || c.Audit.SampleRate() != 1 || c.Listen.HTTP != "127.0.0.1:9004" {
		t.Errorf("audit on %v, sample rate %v, listen.http %q; want the audit log on for every allow", c.Audit.On(), c.Audit.SampleRate(), c.Listen.HTTP)
	}
}

func TestIntrospectionInheritsTrustFromTheIssuers(t *testing.T) {
	base := `issuers:
  - issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/jwks
    audiences: [orders-api]
policy: { file: p.yaml }
introspection:
  client_id: scopegate
  client_secret_env: SECRET
`
	t.Run("opaque tokens need audiences when the issuers require them", func(t *testing.T) {
		_, err := Parse("c.yaml", []byte(base+"  endpoint: https://idp.example.com/introspect\n"))
		if err == nil || !strings.Contains(err.Error(), "introspection: audiences is required") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("discovery issuer lends its audiences, and issuers are trusted", func(t *testing.T) {
		c, err := Parse("c.yaml", []byte(base+"  issuer: https://idp.example.com\n"))
		if err != nil {
			t.Fatal(err)
		}
		if in := c.Introspection; len(in.Audiences) != 1 || in.Audiences[0] != "orders-api" || len(in.Issuers) != 1 || in.Issuers[0] != "https://idp.example.com" {
			t.Fatalf("introspection: audiences %q issuers %q", in.Audiences, in.Issuers)
		}
	})
}

func TestPlainHTTPIdentityProvidersNeedAnExplicitOptIn(t *testing.T) {
	tests := []struct {
		name, issuer string
		ok           bool
	}{
		{"https", "jwks_uri: https://idp.internal/jwks", true},
		{"http to loopback", "jwks_uri: http://127.0.0.1:8080/jwks", true},
		{"http elsewhere", "jwks_uri: http://keycloak.auth.svc:8080/jwks", false},
		{"http elsewhere, allowed", "jwks_uri: http://keycloak.auth.svc:8080/jwks\n    allow_insecure_http: true", true},
		{"discovery over http elsewhere", "discovery: true", false},
		{"discovery over http elsewhere, allowed", "discovery: true\n    allow_insecure_http: true", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer := "http://keycloak.auth.svc:8080/realms/m2m"
			if strings.Contains(tt.issuer, "idp.internal") || strings.Contains(tt.issuer, "127.0.0.1") {
				issuer = "https://idp.internal"
			}
			src := "issuers:\n  - issuer: " + issuer + "\n    " + tt.issuer + "\npolicy: { file: p.yaml }\n"
			_, err := Parse("config.yaml", []byte(src))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "allow_insecure_http") {
				t.Errorf("the error does not name the opt-in: %v", err)
			}
		})
	}
}

func TestPlainHTTPIntrospectionNeedsAnExplicitOptIn(t *testing.T) {
	tests := []struct {
		name, extra string
		ok          bool
	}{
		{"http elsewhere", "", false},
		{"http elsewhere, allowed", "\n  allow_insecure_http: true", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "introspection:\n  endpoint: http://hydra.auth.svc:4445/admin/oauth2/introspect\n  client_id: scopegate\n  client_secret_env: SECRET" + tt.extra + "\npolicy: { file: p.yaml }\n"
			_, err := Parse("config.yaml", []byte(src))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "introspection.endpoint") {
				t.Errorf("the error does not name the field: %v", err)
			}
		})
	}
}

func TestLoadReadsWhatTheConfigNamesAsResolutionSays(t *testing.T) {
	const unset = "SCOPEGATE_TEST_UNSET_SECRET"
	if _, set := os.LookupEnv(unset); set {
		t.Fatalf("%s is set; the test needs it unset", unset)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	src := "introspection:\n  endpoint: https://idp.example.com/introspect\n  client_id: scopegate\n  client_secret_env: " + unset + "\n" +
		"ca_file: missing.pem\npolicy: { file: missing.yaml }\n"
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	in := func(name string) string { return filepath.Join(dir, name) }
	secret := file + ":4:22: introspection.client_secret_env: environment variable " + unset + " is not set"
	ca := file + ":5:10: ca_file: open " + in("missing.pem") + ": no such file or directory"
	pol := file + ":6:17: policy.file: open " + in("missing.yaml") + ": no such file or directory"
	for _, tt := range []struct {
		name string
		r    Resolution
		want []string
	}{
		{"everything", Everything, []string{secret, ca, pol}},
		{"offline", Offline, []string{ca, pol}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(file, tt.r)
			if err == nil {
				t.Fatal("loaded, want errors")
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestParseValidatesRequireBinding(t *testing.T) {
	_, err := Parse("config.yaml", []byte(`issuers:
  - issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/jwks
    require_binding: x509
introspection:
  endpoint: https://idp.example.com/introspect
  client_id: scopegate
  client_secret_env: SECRET
  require_binding: mTLS
policy: { file: p.yaml }
`))
	for _, want := range []string{
		`config.yaml:4:22: issuers[0].require_binding: is "x509"; it must be "mtls", "dpop" or "any"`,
		`config.yaml:9:20: introspection.require_binding: is "mTLS"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not contain %q:\n%v", want, err)
		}
	}
}

func TestParseValidatesTheDPoPBlock(t *testing.T) {
	c, err := Parse("config.yaml", []byte(`issuers:
  - issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/jwks
dpop:
  algorithms: [ES256, HS256]
  replay: { max_entries: -1 }
policy: { file: p.yaml }
`))
	if c != nil && err == nil {
		t.Fatal("a dpop block with HS256 and a negative max_entries is accepted")
	}
	for _, want := range []string{
		`config.yaml:5:23: dpop.algorithms[1]: "HS256" is never accepted`,
		`config.yaml:6:26: dpop.replay.max_entries: must not be negative`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not contain %q:\n%v", want, err)
		}
	}
	c, err = Parse("config.yaml", []byte(`issuers:
  - issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/jwks
dpop:
  max_age: 1m
  use_dpop_nonce: true
policy: { file: p.yaml }
`))
	if err != nil {
		t.Fatalf("a valid dpop block is refused: %v", err)
	}
	if c.DPoP == nil || *c.DPoP.MaxAge != time.Minute || !c.DPoP.UseNonce {
		t.Fatalf("dpop = %+v, want max_age 1m and use_dpop_nonce", c.DPoP)
	}
}
