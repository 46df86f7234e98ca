package envoy_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/scopegate/scopegate/authz"
)

// A proxy that asks the HTTP listener copies the identity headers of an
// allow upstream only if its configuration lists them, and only the
// listed ones are cleared of a caller's own values. These tests read every
// proxy configuration in the docs and examples, so that a header that
// scopegate sets but a snippet forgets, which a caller could then spoof,
// fails the build.

// snippet is a piece of proxy configuration: a fenced code block of a
// Markdown file, or a whole file under examples/.
type snippet struct {
	where string // file:line
	text  string
}

// proxyKind is the proxy a snippet configures, or "" for none that asks
// the HTTP listener (Envoy's gRPC ext_authz needs no list: scopegate sets
// and removes the headers itself).
type proxyKind string

const (
	nginxSnippet   proxyKind = "nginx auth_request"
	traefikSnippet proxyKind = "Traefik forwardAuth"
	envoySnippet   proxyKind = "Envoy http_service"
)

var (
	nginxAuthRequest = regexp.MustCompile(`(?m)^\s*auth_request\s+\S+\s*;`)
	traefikForward   = regexp.MustCompile(`(?i)forwardauth`)
	envoyHTTPService = regexp.MustCompile(`\bhttp_service\b`)
	comment          = regexp.MustCompile(`(?m)(^|\s)#.*$`)
)

// kind tells which proxy s configures, by what it says outside comments.
func (s snippet) kind() proxyKind {
	text := comment.ReplaceAllString(s.text, "")
	switch {
	case nginxAuthRequest.MatchString(text):
		return nginxSnippet
	case traefikForward.MatchString(text):
		return traefikSnippet
	case envoyHTTPService.MatchString(text):
		return envoySnippet
	}
	return ""
}

// problems returns what s fails to do for each of headers: copy it
// upstream from scopegate's answer, which also clears a caller's value.
func (s snippet) problems(headers []string) []string {
	switch s.kind() {
	case nginxSnippet:
		return nginxProblems(s.text, headers)
	case traefikSnippet:
		return yamlProblems(s.text, "forwardAuth", headers, traefikCovers)
	case envoySnippet:
		return yamlProblems(s.text, "http_service", headers, envoyCovers)
	}
	return nil
}

var (
	nginxAuthRequestSet = regexp.MustCompile(`(?m)^\s*auth_request_set\s+\$(\w+)\s+\$upstream_http_(\w+)\s*;`)
	nginxProxySetHeader = regexp.MustCompile(`(?m)^\s*proxy_set_header\s+(\S+)\s+"?\$(\w+)"?\s*;`)
)

// nginxProblems checks that every header is set on the upstream request
// from the variable auth_request_set read from scopegate's answer: nginx
// passes a caller's own headers on unless proxy_set_header replaces them,
// and an empty value removes the header.
func nginxProblems(text string, headers []string) []string {
	text = comment.ReplaceAllString(text, "")
	fromAnswer := map[string]string{} // variable → header of the answer, as nginx names it
	for _, m := range nginxAuthRequestSet.FindAllStringSubmatch(text, -1) {
		fromAnswer[m[1]] = strings.ToLower(m[2])
	}
	set := map[string]string{} // header → the answer's header it is set from
	for _, m := range nginxProxySetHeader.FindAllStringSubmatch(text, -1) {
		if h, ok := fromAnswer[m[2]]; ok {
			set[strings.ToLower(m[1])] = h
		}
	}
	var out []string
	for _, h := range headers {
		want := strings.ReplaceAll(h, "-", "_")
		if set[h] != want {
			out = append(out, fmt.Sprintf("%s is not set upstream from scopegate's answer: add auth_request_set $sg_%s $upstream_http_%s; and proxy_set_header %s $sg_%[2]s;", h, want, want, h))
		}
	}
	return out
}

// yamlProblems finds every mapping under key in the YAML text and checks
// with covers that it copies each header; a snippet that mentions key but
// holds no such mapping cannot be checked, which is a problem too.
func yamlProblems(text, key string, headers []string, covers func(*yaml.Node, string) bool) []string {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return []string{fmt.Sprintf("mentions %s but is not YAML this test can read: %v", key, err)}
	}
	found := mappings(&doc, key)
	if len(found) == 0 {
		return []string{fmt.Sprintf("mentions %s but holds no %s mapping this test can read", key, key)}
	}
	var out []string
	for _, m := range found {
		for _, h := range headers {
			if !covers(m, h) {
				out = append(out, fmt.Sprintf("%s at line %d does not copy %s upstream, so a caller's own value of it passes", key, m.Line, h))
			}
		}
	}
	return out
}

// mappings returns the mapping values of every key named key, at any
// depth, without regard to case.
func mappings(n *yaml.Node, key string) []*yaml.Node {
	var out []*yaml.Node
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if strings.EqualFold(n.Content[i].Value, key) && n.Content[i+1].Kind == yaml.MappingNode {
				out = append(out, n.Content[i+1])
			}
		}
	}
	for _, c := range n.Content {
		out = append(out, mappings(c, key)...)
	}
	return out
}

// field returns the value of key in the mapping m, or nil.
func field(m *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		if m == nil || m.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				next = m.Content[i+1]
			}
		}
		m = next
	}
	return m
}

// traefikCovers reports whether the forwardAuth middleware m lists h in
// authResponseHeaders: Traefik deletes each of them from the request and
// sets the ones scopegate's answer carries.
func traefikCovers(m *yaml.Node, h string) bool {
	list := field(m, "authResponseHeaders")
	if list == nil {
		return false
	}
	for _, n := range list.Content {
		if strings.EqualFold(n.Value, h) {
			return true
		}
	}
	return false
}

// envoyCovers reports whether the http_service m lets h through from
// scopegate's answer: a header that allowed_upstream_headers matches is
// set on the upstream request, and one scopegate lists in
// x-envoy-auth-headers-to-remove is removed.
func envoyCovers(m *yaml.Node, h string) bool {
	patterns := field(m, "authorization_response", "allowed_upstream_headers", "patterns")
	if patterns == nil {
		return false
	}
	for _, p := range patterns.Content {
		name := h
		if v := field(p, "ignore_case"); v != nil && v.Value == "true" {
			name = strings.ToLower(name)
		}
		for _, match := range []struct {
			key string
			ok  func(s, v string) bool
		}{
			{"exact", func(s, v string) bool { return s == v }},
			{"prefix", strings.HasPrefix},
			{"suffix", strings.HasSuffix},
			{"contains", strings.Contains},
		} {
			if v := field(p, match.key); v != nil && match.ok(name, v.Value) {
				return true
			}
		}
	}
	return false
}

// fence opens or closes a fenced code block of Markdown.
var fence = regexp.MustCompile("^\\s*```")

// snippets returns the fenced code blocks of the Markdown files among
// files, and the whole of every other file.
func snippets(t *testing.T, files []string) []snippet {
	t.Helper()
	var out []snippet
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(file, ".md") {
			out = append(out, snippet{file + ":1", string(data)})
			continue
		}
		var block *snippet
		var body []string
		for i, line := range strings.Split(string(data), "\n") {
			switch {
			case !fence.MatchString(line):
				if block != nil {
					body = append(body, line)
				}
			case block == nil:
				block = &snippet{where: fmt.Sprintf("%s:%d", file, i+1)}
			default:
				// The indentation of a block in a list item is not YAML's.
				block.text = dedent(body)
				out = append(out, *block)
				block, body = nil, nil
			}
		}
		if block != nil {
			t.Errorf("%s: the code block never closes", block.where)
		}
	}
	return out
}

// dedent removes the indentation that every line of lines shares.
func dedent(lines []string) string {
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " ")); indent < 0 || n < indent {
			indent = n
		}
	}
	for i, l := range lines {
		if len(l) >= indent && indent > 0 {
			lines[i] = l[indent:]
		}
	}
	return strings.Join(lines, "\n")
}

// docFiles lists the docs and examples that may hold proxy configuration.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "README.md"))
	err = filepath.WalkDir(filepath.Join("..", "examples"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestProxySnippetsOverwriteEveryIdentityHeader(t *testing.T) {
	headers := authz.HeaderNames{}.Names()
	found := map[proxyKind]int{}
	for _, s := range snippets(t, docFiles(t)) {
		kind := s.kind()
		if kind == "" {
			continue
		}
		found[kind]++
		for _, p := range s.problems(headers) {
			t.Errorf("%s: %s: %s", s.where, kind, p)
		}
	}
	// A rule that finds nothing checks nothing.
	for _, kind := range []proxyKind{nginxSnippet, traefikSnippet, envoySnippet} {
		if found[kind] == 0 {
			t.Errorf("found no %s configuration in the docs: the rule that finds snippets is broken", kind)
		}
	}
	t.Logf("checked %v against %v", found, headers)
}

// TestProxySnippetCheckFindsAForgottenHeader pins that the check above can
// fail: each snippet here leaves one identity header out, as the docs did
// with x-scopegate-issuer.
func TestProxySnippetCheckFindsAForgottenHeader(t *testing.T) {
	headers := []string{"x-scopegate-client-id", "x-scopegate-issuer"}
	tests := []struct {
		name, text string
		kind       proxyKind
		want       string // in the one problem found
	}{
		{"nginx without the issuer", `location / {
    auth_request /_scopegate;
    auth_request_set $sg_client_id $upstream_http_x_scopegate_client_id;
    proxy_set_header X-Scopegate-Client-Id $sg_client_id;
    # proxy_set_header X-Scopegate-Issuer $sg_issuer;
}`, nginxSnippet, "x-scopegate-issuer"},
		{"nginx setting the issuer from the caller's own header", `location / {
    auth_request /_scopegate;
    auth_request_set $sg_client_id $upstream_http_x_scopegate_client_id;
    proxy_set_header X-Scopegate-Client-Id $sg_client_id;
    proxy_set_header X-Scopegate-Issuer $http_x_scopegate_issuer;
}`, nginxSnippet, "x-scopegate-issuer"},
		{"Traefik without the issuer", `http:
  middlewares:
    scopegate:
      forwardAuth:
        address: http://scopegate:9004/traefik
        authResponseHeaders:
          - X-Scopegate-Client-Id
          # - X-Scopegate-Issuer
`, traefikSnippet, "x-scopegate-issuer"},
		{"a Kubernetes Middleware without the issuer", `apiVersion: traefik.io/v1alpha1
kind: Middleware
spec:
  forwardAuth:
    authResponseHeaders: [X-Scopegate-Client-Id]
`, traefikSnippet, "x-scopegate-issuer"},
		{"Envoy with the client id alone", `http_service:
  authorization_response:
    allowed_upstream_headers:
      patterns:
        - exact: x-scopegate-client-id
`, envoySnippet, "x-scopegate-issuer"},
		{"Traefik in a form the check cannot read", `[http.middlewares.scopegate.forwardAuth]
  address = "http://scopegate:9004/traefik"
`, traefikSnippet, "mapping this test can read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := snippet{"test", tt.text}
			if k := s.kind(); k != tt.kind {
				t.Fatalf("kind %q, want %q", k, tt.kind)
			}
			if p := s.problems(headers); len(p) != 1 || !strings.Contains(p[0], tt.want) {
				t.Errorf("problems %q, want one, about %q", p, tt.want)
			}
		})
	}
}
