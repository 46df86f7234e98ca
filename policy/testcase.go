package policy

import (
	"fmt"
	"net/http"
	"os"

	"github.com/scopegate/scopegate/internal/yamlfile"
)

// Test is a test case of a policy: a request, the token it carries and the
// decision expected. Test cases live in a policy file's tests section or in
// a file of their own (see ParseTests); `scopegate policy test` runs them
// through the server's decision code.
type Test struct {
	Name   string
	Method string
	Host   string // "" for a request without a host
	Path   string // as sent: normalization is part of what is tested
	// Principal is the mTLS peer's principal, as Envoy's source.principal
	// sends it; "" for a request without mutual TLS.
	Principal string
	// Context is the request's route context, Envoy's context_extensions.
	Context Context
	// Token holds the claims of the request's token, taken as verified;
	// nil for a request without a token (token: none).
	Token  *Token
	Expect Expect
	File   string
	Line   int // line of the test case in File
}

// Token is the claims of a verified token in a test case.
type Token struct {
	Issuer   string
	Subject  string
	ClientID string
	Audience []string
	Scopes   []string
	// Binding is what the token is bound to, its binding taken as
	// confirmed: BindingMTLS, BindingDPoP, or BindingNone for a bearer
	// token.
	Binding Binding
}

// Outcome is what a decision tells Envoy.
type Outcome string

// The outcomes a test case can expect.
const (
	OutcomeAllow     Outcome = "allow"      // allowed, and no route was in dry run to allow it
	OutcomeDeny      Outcome = "deny"       // denied
	OutcomeWouldDeny Outcome = "would_deny" // denied, but allowed because of dry run
)

// Expect is the decision a test case expects. Decision is always set; a
// zero Status, Reason or Route is not checked.
type Expect struct {
	Decision Outcome
	Status   int    // the HTTP status; for would_deny, the status of the deny
	Reason   string // the reason code, such as insufficient_scope
	Route    string // the name of the route that decides
}

// ParseTests parses a file of test cases: a YAML document whose only field
// is tests, a list of test cases written as in a policy file's tests
// section. name is the file name used in messages and in each Test's File.
func ParseTests(name string, data []byte) ([]*Test, error) {
	var doc struct {
		Tests []testFile `yaml:"tests"`
	}
	f, err := yamlfile.Decode(name, data, &doc)
	if err != nil {
		return nil, err
	}
	c := &checker{f: f}
	if len(doc.Tests) == 0 {
		c.errorf("$.tests", "is required: a test file holds at least one test case")
	}
	tests := c.tests(doc.Tests)
	if err := c.err(); err != nil {
		return nil, err
	}
	return tests, nil
}

// LoadTests reads and parses the test file name.
func LoadTests(name string) ([]*Test, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return ParseTests(name, data)
}

type testFile struct {
	Name    string       `yaml:"name"`
	Request *requestFile `yaml:"request"`
	Token   *tokenFile   `yaml:"token"`
	Expect  *expectFile  `yaml:"expect"`
}

type requestFile struct {
	Method    string            `yaml:"method"`
	Host      string            `yaml:"host"`
	Path      string            `yaml:"path"`
	Principal string            `yaml:"principal"`
	Context   map[string]string `yaml:"context"`
}

// tokenFile is a test case's token: the word none, or claims.
type tokenFile struct {
	word   string
	claims *claimsFile
}

type claimsFile struct {
	Issuer   string   `yaml:"issuer"`
	Subject  string   `yaml:"subject"`
	ClientID string   `yaml:"client_id"`
	Audience []string `yaml:"audience"`
	Scopes   []string `yaml:"scopes"`
	Binding  Binding  `yaml:"binding"`
}

// UnmarshalYAML decodes a word or a mapping. It uses the decoding function
// the decoder passes, rather than a yaml.Node, so that the strictness of
// the whole file (unknown fields, duplicate keys) holds inside the mapping.
func (t *tokenFile) UnmarshalYAML(unmarshal func(any) error) error {
	if unmarshal(&t.word) == nil {
		return nil
	}
	t.claims = new(claimsFile)
	return unmarshal(t.claims)
}

// expectFile is a test case's expectation: an outcome, or a mapping.
type expectFile struct {
	word   string
	fields *expectFields
}

type expectFields struct {
	Decision string `yaml:"decision"`
	Status   int    `yaml:"status"`
	Reason   string `yaml:"reason"`
	Route    string `yaml:"route"`
}

// UnmarshalYAML decodes a word or a mapping, as tokenFile's does.
func (e *expectFile) UnmarshalYAML(unmarshal func(any) error) error {
	if unmarshal(&e.word) == nil {
		return nil
	}
	e.fields = new(expectFields)
	return unmarshal(e.fields)
}

// tests validates and converts test cases.
func (c *checker) tests(files []testFile) []*Test {
	var out []*Test
	first := make(map[string]*Test)
	for i := range files {
		t := c.test(fmt.Sprintf("$.tests[%d]", i), &files[i])
		if prev, dup := first[t.Name]; dup && t.Name != "" {
			c.errorf(fmt.Sprintf("$.tests[%d].name", i), "duplicate test name %q; the first is at line %d", t.Name, prev.Line)
		} else {
			first[t.Name] = t
		}
		out = append(out, t)
	}
	return out
}

func (c *checker) test(at string, tf *testFile) *Test {
	t := &Test{Name: tf.Name, File: c.f.Name, Line: c.line(at)}
	if tf.Name == "" {
		c.errorf(at+".name", "is required")
	}

	if rq := tf.Request; rq == nil {
		c.errorf(at+".request", "is required")
	} else {
		t.Method, t.Host, t.Path = rq.Method, rq.Host, rq.Path
		t.Principal, t.Context = rq.Principal, ContextOf(rq.Context)
		if !isToken(rq.Method) {
			c.errorf(at+".request.method", "%q is not an HTTP method", rq.Method)
		}
		if rq.Path == "" {
			c.errorf(at+".request.path", "is required")
		}
	}

	switch tok := tf.Token; {
	case tok == nil:
		c.errorf(at+".token", "is required: the claims of a valid token, or none")
	case tok.claims != nil:
		cl := tok.claims
		t.Token = &Token{
			Issuer:   cl.Issuer,
			Subject:  cl.Subject,
			ClientID: cl.ClientID,
			Audience: c.list(at+".token.audience", cl.Audience, "have no audience", nil),
			Scopes:   c.list(at+".token.scopes", cl.Scopes, "grant no scope", checkScope),
		}
		switch cl.Binding {
		case BindingNone, BindingMTLS, BindingDPoP:
			t.Token.Binding = cl.Binding
		default:
			c.errorf(at+".token.binding", "is %q; a token is bound to %q or %q", string(cl.Binding), BindingMTLS, BindingDPoP)
		}
	case tok.word != "none":
		c.errorf(at+".token", "is %q; want none or the claims of a valid token", tok.word)
	}

	if tf.Expect == nil {
		c.errorf(at+".expect", "is required: allow, deny, would_deny, or a status and reason")
	} else {
		t.Expect = c.expect(at+".expect", tf.Expect)
	}
	return t
}

func (c *checker) expect(at string, ef *expectFile) Expect {
	outcome := func(path, word string) Outcome {
		switch o := Outcome(word); o {
		case OutcomeAllow, OutcomeDeny, OutcomeWouldDeny:
			return o
		}
		c.errorf(path, "is %q; want %s, %s or %s", word, OutcomeAllow, OutcomeDeny, OutcomeWouldDeny)
		return ""
	}
	f := ef.fields
	if f == nil {
		return Expect{Decision: outcome(at, ef.word)}
	}
	e := Expect{Status: f.Status, Reason: f.Reason, Route: f.Route}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		c.errorf(at+".status", "%d is not an HTTP status", f.Status)
	}
	switch {
	case f.Decision != "":
		e.Decision = outcome(at+".decision", f.Decision)
	case f.Status == http.StatusOK:
		e.Decision = OutcomeAllow
	case f.Status != 0:
		e.Decision = OutcomeDeny
	default:
		// Without a decision, a reason or route alone would also be met
		// by a dry-run allow; a test must say which it expects.
		c.errorf(at, "needs a decision (allow, deny or would_deny) or a status")
	}
	switch {
	case f.Status == 0:
	case e.Decision == OutcomeAllow && f.Status != http.StatusOK:
		c.errorf(at+".status", "is %d, but an allow has status 200", f.Status)
	case e.Decision != OutcomeAllow && f.Status == http.StatusOK:
		c.errorf(at+".status", "is 200, but a %s has the status of the deny", e.Decision)
	}
	return e
}
