package main

import (
	"bytes"
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
			stderr: []string{`policy.yaml:4:5: routes[0].publik: unknown field`, "tls: cert_file: open ", "tls.crt: no such file", "ca_file: ", "ca.pem: no PEM certificate"},
		},
		{name: "no file", args: []string{"check"}, code: 2, stderr: []string{"Usage: scopegate config check FILE"}},
		{name: "no subcommand", args: nil, code: 2, stderr: []string{"Usage: scopegate config check FILE"}},
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
