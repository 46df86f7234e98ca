package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	const issuer = "issuers:\n  - issuer: https://idp.example.com\n    jwks_uri: https://idp.example.com/jwks\n"
	tests := []struct {
		name   string
		files  map[string]string
		args   []string // after "config"; FILE is config.yaml's path
		code   int
		stdout []string
		stderr []string
	}{
		{
			name:   "a valid config and policy",
			files:  map[string]string{"config.yaml": issuer + "policy: { file: policy.yaml }\n", "policy.yaml": opsPolicy},
			args:   []string{"check", "FILE"},
			code:   0,
			stdout: []string{"config.yaml: ok", "policy.yaml: version ", "3 routes"},
		},
		{
			name:  "every problem of the config file, with line and field",
			files: map[string]string{"config.yaml": "listen: { grpc: nonsense }\n" + issuer + "audit: { allow_sample_rate: 2 }\n"},
			args:  []string{"check", "FILE"},
			code:  1,
			stderr: []string{
				`config.yaml:1:17: listen.grpc: "nonsense" is not a host:port address`,
				`config.yaml:5:29: audit.allow_sample_rate: must be between 0 and 1`,
				`policy.file: the policy file is required`,
			},
		},
		{
			name: "every problem of the files it names",
			files: map[string]string{
				"config.yaml": issuer + "policy: { file: policy.yaml }\ntls: { cert_file: tls.crt, key_file: tls.key }\nca_file: ca.pem\n",
				"policy.yaml": "version: 1\nroutes:\n  - name: x\n    publik: true\n",
				"ca.pem":      "not PEM",
			},
			args:   []string{"check", "FILE"},
			code:   1,
			stderr: []string{`policy.yaml:4:5: routes[0].publik: unknown field`, "tls.cert_file: open ", "tls.crt: no such file", "ca_file: ", "ca.pem: no PEM certificate"},
		},
		{name: "no file", args: []string{"check"}, code: 2, stderr: []string{"Usage: scopegate config check [--offline] FILE"}},
		{name: "no subcommand", args: nil, code: 2, stderr: []string{"Usage: scopegate config check [--offline] FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			args := []string{"config"}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "FILE", filepath.Join(dir, "config.yaml")))
			}
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}

// unsetEnv names an environment variable that the tests below need unset.
const unsetEnv = "SCOPEGATE_TEST_UNSET_SECRET"

// TestConfigCheckRefusesWhatServeRefuses pins that config check reads
// every file and environment variable that serve reads, and that both
// report each fault with the same file, line and field: both load the
// configuration with config.Load. --offline reads no secret.
func TestConfigCheckRefusesWhatServeRefuses(t *testing.T) {
	if _, set := os.LookupEnv(unsetEnv); set {
		t.Fatalf("%s is set in the environment; the test needs it unset", unsetEnv)
	}
	t.Setenv("SCOPEGATE_TEST_SECRET", "s3cret")
	const intro = "introspection:\n  endpoint: https://idp.example.com/introspect\n  client_id: scopegate\n"
	const pol = "policy: { file: policy.yaml }\n"
	tests := []struct {
		name    string
		config  string
		want    string // the error, the folder's path taken out
		offline bool   // whether --offline finds it too
	}{
		{
			name:   "an unset client_secret_env",
			config: intro + "  client_secret_env: " + unsetEnv + "\n" + pol,
			want:   "config.yaml:4:22: introspection.client_secret_env: environment variable " + unsetEnv + " is not set",
		},
		{
			name:   "a missing client_secret_file",
			config: intro + "  client_secret_file: secret\n" + pol,
			want:   "config.yaml:4:23: introspection.client_secret_file: open secret: no such file or directory",
		},
		{
			name:   "an unset Redis password_env",
			config: intro + "  client_secret_env: SCOPEGATE_TEST_SECRET\n  cache:\n    redis: { addrs: [127.0.0.1:6379], password_env: " + unsetEnv + " }\n" + pol,
			want:   "config.yaml:6:53: introspection.cache.redis.password_env: environment variable " + unsetEnv + " is not set",
		},
		{
			name:    "a policy file that does not exist",
			config:  intro + "  client_secret_env: SCOPEGATE_TEST_SECRET\npolicy: { file: nothere.yaml }\n",
			want:    "config.yaml:5:17: policy.file: open nothere.yaml: no such file or directory",
			offline: true,
		},
		{
			name:    "a missing TLS key and a client CA that is not PEM",
			config:  intro + "  client_secret_env: SCOPEGATE_TEST_SECRET\n" + pol + "tls:\n  cert_file: policy.yaml\n  key_file: tls.key\n  client_ca_file: policy.yaml\n",
			want:    "config.yaml:7:14: tls.cert_file: policy.yaml: no PEM certificate in it\nconfig.yaml:8:13: tls.key_file: open tls.key: no such file or directory\nconfig.yaml:9:19: tls.client_ca_file: policy.yaml: no PEM certificate in it",
			offline: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"config.yaml": tt.config, "policy.yaml": opsPolicy})
			file := filepath.Join(dir, "config.yaml")
			for _, args := range [][]string{{"config", "check", file}, {"config", "check", "--offline", file}, {"serve", "--config", file}} {
				var stderr bytes.Buffer
				code := run(args, io.Discard, &stderr)
				got := strings.ReplaceAll(stderr.String(), dir+string(filepath.Separator), "")
				if args[1] == "check" && args[2] == "--offline" && !tt.offline {
					if code != 0 {
						t.Errorf("%s: exit %d, want 0: the secrets are not read\n%s", strings.Join(args[:3], " "), code, got)
					}
					continue
				}
				if code != 1 || !strings.Contains(got, tt.want+"\n") {
					t.Errorf("%s: exit %d, want 1 with\n%s\ngot:\n%s", strings.Join(args[:2], " "), code, tt.want, got)
				}
			}
		})
	}
}

// TestConfigCheckReportsEveryProblemOfAFileAtOnce pins that no problem
// of the config file hides another: a duplicate key, an unknown field, a
// setting out of range and files that cannot be read are reported in one
// run, sorted by line, and then every problem of the policy.
func TestConfigCheckReportsEveryProblemOfAFileAtOnce(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"config.yaml": `listen: { grpc: nonsense }
issuers:
  - issuer: https://idp.example.com
    jwks_uri: https://idp.example.com/jwks
    bogus: 1
introspection:
  endpoint: https://idp.example.com/introspect
  client_id: scopegate
  client_secret_env: ` + unsetEnv + `
audit: { allow_sample_rate: 2 }
audit: { allow_sample_rate: 3 }
tls: { cert_file: tls.crt, key_file: tls.key }
ca_file: ca.pem
policy: { file: policy.yaml }
`,
		"ca.pem":      "not PEM",
		"policy.yaml": "version: 1\nroutes:\n  - name: a\n    match: { path: \"/a/**\" }\n    publik: true\n  - name: b\n    match: { path: \"/a/**\" }\n    require: { scopes: { all_of: [\"bad scope\"] } }\n",
	})
	want := `config.yaml:1:17: listen.grpc: "nonsense" is not a host:port address
config.yaml:5:5: issuers[0].bogus: unknown field "bogus"
config.yaml:9:22: introspection.client_secret_env: environment variable ` + unsetEnv + ` is not set
config.yaml:10:29: audit.allow_sample_rate: must be between 0 and 1
config.yaml:11:1: audit: mapping key "audit" already defined at line 10
config.yaml:12:19: tls.cert_file: open tls.crt: no such file or directory
config.yaml:12:38: tls.key_file: open tls.key: no such file or directory
config.yaml:13:10: ca_file: ca.pem: no PEM certificate in it
policy.yaml:5:5: routes[0].publik: unknown field "publik"
policy.yaml:7:12: routes[1].match: route "b" matches exactly the same requests as route "a" at line 3; remove one or make them differ
policy.yaml:8:35: routes[1].require.scopes.all_of[0]: "bad scope" is not a scope: RFC 6749 allows printable ASCII except space, '"' and '\'
`
	var stderr bytes.Buffer
	if code := run([]string{"config", "check", filepath.Join(dir, "config.yaml")}, io.Discard, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr.String())
	}
	if got := strings.ReplaceAll(stderr.String(), dir+string(filepath.Separator), ""); got != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
	}
}
