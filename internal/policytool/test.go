package policytool

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/policy"
)

// TestOptions tunes Test. The zero value reports text only.
type TestOptions struct {
	Format Format
	JUnit  string // when set, the file to write a JUnit XML report to
	// Principal is the mTLS peer's principal of the test cases that do
	// not give one (--principal).
	Principal string
	// Context is added to each test case's route context, whose own
	// pairs take precedence (--context).
	Context policy.Context
}

// TestResult is the result of one test case.
type TestResult struct {
	Name string `json:"name"`
	File string `json:"file"`
	Line int    `json:"line"`
	// Request is the request and token, as a sentence for people.
	Request string   `json:"request"`
	Passed  bool     `json:"passed"`
	Expect  Expected `json:"expected"`
	Got     Outcome  `json:"got"`
}

// Expected is a test case's expectation; empty fields are not checked.
type Expected struct {
	Decision policy.Outcome `json:"decision"`
	Status   int            `json:"status,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Route    string         `json:"route,omitempty"`
}

// Outcome is a decision as the server would make it, in the words of a
// test case: what a test case got, and what explain shows.
type Outcome struct {
	Decision    policy.Outcome `json:"decision"`
	Status      int            `json:"status"`
	Reason      authz.Reason   `json:"reason"`
	Route       string         `json:"route,omitempty"`
	RouteLine   int            `json:"route_line,omitempty"`
	Description string         `json:"description,omitempty"`
}

// TestReport is the result of Test.
type TestReport struct {
	Policy  string       `json:"policy"`
	Version string       `json:"version,omitempty"`
	Files   []string     `json:"files"` // where the test cases came from
	Passed  int          `json:"passed"`
	Failed  int          `json:"failed"`
	Errors  []Diagnostic `json:"errors"` // invalid files: no test ran
	Tests   []TestResult `json:"tests"`
}

// Test runs the test cases of the policy file policyFile: those of its
// tests section, then those of testFiles, or, when testFiles is empty, of
// the file beside it named like it with _test before the extension
// (policy.yaml, policy_test.yaml) if there is one. Each request is decided
// by authz.Authorizer.Decide, the server's code, with the test's token
// taken as verified. Test reports to w, and returns the exit status: 0
// when every test passed, 1 when one failed, a file was invalid, or there
// was no test to run.
func Test(w io.Writer, policyFile string, testFiles []string, o TestOptions) int {
	r := runTests(policyFile, testFiles, o)
	if o.Format == JSON {
		writeJSON(w, r)
	} else {
		r.writeText(w)
	}
	if o.JUnit != "" {
		if err := writeJUnitFile(o.JUnit, r); err != nil {
			fmt.Fprintf(w, "writing the JUnit report: %v\n", err)
			return 1
		}
	}
	if len(r.Errors) > 0 || r.Failed > 0 || len(r.Tests) == 0 {
		return 1
	}
	return 0
}

func runTests(policyFile string, testFiles []string, o TestOptions) *TestReport {
	r := &TestReport{Policy: policyFile, Files: []string{}, Errors: []Diagnostic{}, Tests: []TestResult{}}
	p, err := policy.Load(policyFile)
	if err != nil {
		r.Errors = diagnostics(policyFile, err)
		return r
	}
	r.Version = p.Version
	tests := p.Tests
	if len(tests) > 0 {
		r.Files = append(r.Files, policyFile)
	}
	if len(testFiles) == 0 {
		if sibling := siblingTestFile(policyFile); sibling != "" {
			testFiles = []string{sibling}
		}
	}
	for _, name := range testFiles {
		ts, err := policy.LoadTests(name)
		if err != nil {
			r.Errors = append(r.Errors, diagnostics(name, err)...)
			continue
		}
		r.Files = append(r.Files, name)
		tests = append(tests, ts...)
	}
	if len(r.Errors) > 0 {
		return r
	}
	if len(tests) == 0 {
		r.Errors = append(r.Errors, Diagnostic{Severity: "error", File: policyFile,
			Message: "no test cases: add a tests section, or a file of test cases such as " + testFileFor(policyFile)})
		return r
	}
	a := authz.New(p, nil, authz.Options{})
	for _, t := range tests {
		res := run(a, p, withDefaults(t, o))
		if res.Passed {
			r.Passed++
		} else {
			r.Failed++
		}
		r.Tests = append(r.Tests, res)
	}
	return r
}

// withDefaults returns t with the principal and route context of o added.
func withDefaults(t *policy.Test, o TestOptions) *policy.Test {
	if o.Principal == "" && o.Context.Empty() {
		return t
	}
	c := *t
	if c.Principal == "" {
		c.Principal = o.Principal
	}
	c.Context = policy.Context{}
	for k, v := range o.Context.All() {
		c.Context.Set(k, v)
	}
	for k, v := range t.Context.All() {
		c.Context.Set(k, v)
	}
	return &c
}

// run decides one test case.
func run(a *authz.Authorizer, p *policy.Policy, t *policy.Test) TestResult {
	d := a.Decide(&authz.Request{Method: t.Method, Host: t.Host, Path: t.Path, Principal: t.Principal, Context: t.Context}, claims(t.Token))
	e := t.Expect
	res := TestResult{
		Name:    t.Name,
		File:    t.File,
		Line:    t.Line,
		Request: describeRequest(t),
		Expect:  Expected{Decision: e.Decision, Status: e.Status, Reason: e.Reason, Route: e.Route},
		Got:     newOutcome(p, &d),
	}
	res.Passed = res.Got.Decision == e.Decision &&
		(e.Status == 0 || e.Status == d.Status) &&
		(e.Reason == "" || e.Reason == string(d.Reason)) &&
		(e.Route == "" || e.Route == d.Route)
	return res
}

// describeRequest describes a test case's request and token.
func describeRequest(t *policy.Test) string {
	s := describePeer(t.Method+" "+t.Path, t.Host, t.Principal, t.Context)
	tok := t.Token
	if tok == nil {
		return s + ", no token"
	}
	var claims []string
	for _, c := range []struct{ name, value string }{
		{"issuer", tok.Issuer}, {"subject", tok.Subject}, {"client_id", tok.ClientID},
		{"audience", strings.Join(tok.Audience, " ")}, {"scopes", strings.Join(tok.Scopes, " ")},
		{"binding", string(tok.Binding)},
	} {
		if c.value != "" {
			claims = append(claims, fmt.Sprintf("%s %q", c.name, c.value))
		}
	}
	if len(claims) == 0 {
		return s + ", a token without claims"
	}
	return s + ", token with " + strings.Join(claims, ", ")
}

func routeNamed(p *policy.Policy, name string) *policy.Route {
	for _, r := range p.Routes {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// testFileFor returns the name of the test file beside a policy file.
func testFileFor(policyFile string) string {
	for _, ext := range []string{".yaml", ".yml"} {
		if base, ok := strings.CutSuffix(policyFile, ext); ok {
			return base + "_test" + ext
		}
	}
	return policyFile + "_test.yaml"
}

// siblingTestFile returns the test file beside a policy file, or "" when
// there is none.
func siblingTestFile(policyFile string) string {
	name := testFileFor(policyFile)
	if _, err := os.Stat(name); err != nil {
		return ""
	}
	return name
}

func (e Expected) String() string {
	s := string(e.Decision)
	if e.Status != 0 {
		s += fmt.Sprintf(" %d", e.Status)
	}
	if e.Reason != "" {
		s += " " + e.Reason
	}
	if e.Route != "" {
		s += ", route " + e.Route
	}
	return s
}

func (g Outcome) String() string {
	s := fmt.Sprintf("%s %d %s", g.Decision, g.Status, g.Reason)
	if g.Route == "" {
		return s + ", no route"
	}
	return fmt.Sprintf("%s, route %s (line %d)", s, g.Route, g.RouteLine)
}

func (r *TestReport) writeText(w io.Writer) {
	for i := range r.Errors {
		r.Errors[i].writeText(w)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "FAIL: %s: no test ran\n", plural(len(r.Errors), "error"))
		return
	}
	for _, t := range r.Tests {
		if t.Passed {
			continue
		}
		fmt.Fprintf(w, "--- FAIL: %s (%s:%d)\n", t.Name, t.File, t.Line)
		fmt.Fprintf(w, "    request:  %s\n", t.Request)
		fmt.Fprintf(w, "    expected: %s\n", t.Expect)
		fmt.Fprintf(w, "    got:      %s\n", t.Got)
		if t.Got.Description != "" {
			fmt.Fprintf(w, "    why:      %s\n", t.Got.Description)
		}
	}
	verdict := "PASS"
	if r.Failed > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s: %s (version %s): %d passed, %d failed\n", verdict, r.Policy, r.Version, r.Passed, r.Failed)
}
