package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// benchHost is the :authority of the harness's requests.
const benchHost = "api.example.com"

// gateConfig is a scopegate configuration for a load run: the harness's
// issuer, and a policy of Routes routes.
type gateConfig struct {
	GRPC, Admin string // listen addresses
	Issuer      *issuer
	Routes      int
	// Introspection, when set, checks the tokens that are not JWTs.
	Introspection *introspection
	// IntrospectionL1 bounds the in-process cache of introspection
	// answers; 0 leaves scopegate's default.
	IntrospectionL1 int
	// IntrospectionMaxRate, when set, is introspection's max_rate instead
	// of introspectionMaxRate, and the harness's opaque tokens have their
	// token_format: the limiter is what the run measures.
	IntrospectionMaxRate int
	// Redis, when set, is the address of the introspection cache's shared
	// tier.
	Redis string
	// AuditOff turns the audit log off. Otherwise it is written as
	// deployed: to a file, every deny and auditAllowSample of the allows.
	AuditOff bool
}

// auditAllowSample is the fraction of allows that the audit log of a
// deployed scopegate records; it records every deny.
const auditAllowSample = 0.01

// write writes config.yaml and policy.yaml into dir and returns the path
// of config.yaml.
func (g *gateConfig) write(dir string) (string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `# scopegate's configuration for a load run, written by scopegate-bench.
listen:
  grpc: %s
  admin: %s
issuers:
  - issuer: %s
    jwks_uri: %s
    audiences: [%s]
    algorithms: [RS256, ES256, EdDSA]
    type: at+jwt
policy:
  file: policy.yaml
`, g.GRPC, g.Admin, g.Issuer.url, g.Issuer.jwksURL(), benchAudience)
	if g.AuditOff {
		b.WriteString("audit: { enabled: false }\n")
	} else {
		fmt.Fprintf(&b, "audit: { output: audit.log, allow_sample_rate: %g }\n", auditAllowSample)
	}
	if in := g.Introspection; in != nil {
		secret, err := filepath.Abs(filepath.Join(dir, "introspection-secret"))
		if err == nil {
			err = in.writeSecret(secret)
		}
		if err != nil {
			return "", err
		}
		// The limits on introspection requests are raised far above the
		// defaults (100 a second), so that a run measures introspection
		// rather than the limiter, unless the limiter is what it measures.
		maxRate := introspectionMaxRate
		if g.IntrospectionMaxRate != 0 {
			maxRate = g.IntrospectionMaxRate
		}
		fmt.Fprintf(&b, "introspection:\n  endpoint: %s\n  client_id: %s\n  client_secret_file: %s\n  audiences: [%s]\n  max_concurrent: %d\n  max_rate: %d\n",
			in.url, introspectionClient, secret, benchAudience, introspectionMaxConcurrent, maxRate)
		if g.IntrospectionMaxRate != 0 {
			fmt.Fprintf(&b, "  token_format: %s\n", opaqueFormat)
		}
		if g.IntrospectionL1 != 0 || g.Redis != "" {
			b.WriteString("  cache:\n")
		}
		if g.IntrospectionL1 != 0 {
			fmt.Fprintf(&b, "    max_entries: %d\n", g.IntrospectionL1)
		}
		if g.Redis != "" {
			fmt.Fprintf(&b, "    redis: { addrs: [%s] }\n", g.Redis)
		}
	}
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, b.Bytes(), 0o644); err != nil {
		return "", err
	}
	return config, os.WriteFile(filepath.Join(dir, "policy.yaml"), policyYAML(g.Routes), 0o644)
}

// policyYAML returns a policy of n routes: GET /orders/{id}, which most
// of the harness's requests use, and n-1 others in the shapes that real
// policies mix: a method and a parameter, a prefix, a host.
func policyYAML(n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `# A policy of %d routes, written by scopegate-bench.
version: 1
default: deny
routes:
  - name: orders-read
    match: { methods: [GET], path: "/orders/{id}" }
    require: { scopes: { all_of: [orders:read] } }
`, n)
	for i := 1; i < n; i++ {
		svc := fmt.Sprintf("svc-%05d", i)
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "  - name: %s-read\n    match: { methods: [GET], path: \"/%s/items/{id}\" }\n    require: { scopes: { all_of: [bench:read] } }\n", svc, svc)
		case 1:
			fmt.Fprintf(&b, "  - name: %s-api\n    match: { path: \"/%s/api/**\" }\n    require: { scopes: { any_of: [bench:read, bench:write] } }\n", svc, svc)
		case 2:
			fmt.Fprintf(&b, "  - name: %s-host\n    match: { hosts: [%s.example.com], methods: [GET, POST], path: \"/v1/items/{id}\" }\n    require: { scopes: { all_of: [bench:read] } }\n", svc, svc)
		}
	}
	return b.Bytes()
}

// policyTargets returns k requests spread evenly over the routes of the
// policy of n routes, from the first to the last, each allowed by the
// harness's valid tokens.
func policyTargets(n, k int) []Request {
	rs := make([]Request, 0, k)
	for t := range k {
		i := 0
		if k > 1 {
			i = t * (n - 1) / (k - 1)
		}
		rs = append(rs, policyTarget(i))
	}
	return rs
}

// policyTarget returns a request that route i of policyYAML matches.
func policyTarget(i int) Request {
	r := Request{Method: "GET", Host: benchHost, Path: "/orders/42"}
	svc := fmt.Sprintf("svc-%05d", i)
	switch {
	case i == 0:
	case i%3 == 0:
		r.Path = "/" + svc + "/items/" + strconv.Itoa(i)
	case i%3 == 1:
		r.Path = "/" + svc + "/api/v2/things/" + strconv.Itoa(i)
	default:
		r.Host, r.Path = svc+".example.com", "/v1/items/"+strconv.Itoa(i)
	}
	return r
}
