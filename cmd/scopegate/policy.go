package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/scopegate/scopegate/internal/policytool"
	"github.com/scopegate/scopegate/policy"
)

const policyUsage = `Usage:
  scopegate policy check [--strict] [--format text|json] FILE...
  scopegate policy test [--format text|json] [--junit FILE] [--principal P] [--context K=V]... POLICY [TESTFILE...]
  scopegate policy explain --method M --path P [--host H] [--principal P] [--context K=V]... [--scopes a,b] [--client C] [--issuer I] [--audience a,b] [--no-token] [--format text|json] POLICY

check validates policy files (and *_test.yaml files of test cases) as the
server would, and warns of what is valid but likely wrong: exit 0 clean,
1 on errors, or on warnings with --strict.

test runs the policy's test cases (its tests section, then the TESTFILEs,
or POLICY's sibling NAME_test.yaml) through the server's decision code:
exit 0 when all pass, 1 otherwise. --principal and --context give the
mTLS peer's principal and the route context (Envoy's context_extensions)
of the test cases: a test case's own request.principal and
request.context take precedence.

explain shows how the policy decides one request: exit 0 allow, 1 deny,
2 error.
`

// policyCmd runs `scopegate policy SUBCOMMAND`.
func policyCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return 2
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "test":
		return policyTest(args[1:], stdout, stderr)
	case "explain":
		return policyExplain(args[1:], stdout, stderr)
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, policyUsage)
		return 0
	}
	fmt.Fprintf(stderr, "scopegate policy: unknown command %q\n\n%s", args[0], policyUsage)
	return 2
}

func policyFlags(name string, format *policytool.Format) *flag.FlagSet {
	fs := flag.NewFlagSet("policy "+name, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), policyUsage) }
	fs.Var(format, "format", "report format: text or json")
	return fs
}

func policyCheck(args []string, stdout, stderr io.Writer) int {
	var o policytool.CheckOptions
	fs := policyFlags("check", &o.Format)
	fs.BoolVar(&o.Strict, "strict", false, "fail on warnings too")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, "scopegate policy check: no FILE given\n\n"+policyUsage)
		return 2
	}
	return policytool.Check(stdout, fs.Args(), o)
}

func policyTest(args []string, stdout, stderr io.Writer) int {
	var o policytool.TestOptions
	fs := policyFlags("test", &o.Format)
	fs.StringVar(&o.JUnit, "junit", "", "also write a JUnit XML report to this file")
	fs.StringVar(&o.Principal, "principal", "", "the mTLS peer's principal of test cases without one, such as a SPIFFE ID")
	fs.Var((*contextFlag)(&o.Context), "context", "a route context pair K=V, as Envoy's context_extensions send it (repeatable)")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, "scopegate policy test: no POLICY given\n\n"+policyUsage)
		return 2
	}
	return policytool.Test(stdout, fs.Arg(0), fs.Args()[1:], o)
}

func policyExplain(args []string, stdout, stderr io.Writer) int {
	var (
		q        policytool.Query
		format   policytool.Format
		scopes   string
		audience string
	)
	fs := policyFlags("explain", &format)
	fs.StringVar(&q.Method, "method", "GET", "HTTP method")
	fs.StringVar(&q.Path, "path", "", "HTTP path, as sent")
	fs.StringVar(&q.Host, "host", "", "HTTP host (:authority)")
	fs.StringVar(&scopes, "scopes", "", "the token's scopes, comma-separated")
	fs.StringVar(&q.ClientID, "client", "", "the token's client_id")
	fs.StringVar(&q.Issuer, "issuer", "", "the token's issuer (iss)")
	fs.StringVar(&audience, "audience", "", "the token's audiences, comma-separated")
	fs.BoolVar(&q.NoToken, "no-token", false, "explain a request without a token")
	fs.StringVar(&q.Principal, "principal", "", "the mTLS peer's principal, such as a SPIFFE ID")
	fs.Var((*contextFlag)(&q.Context), "context", "a route context pair K=V, as Envoy's context_extensions send it (repeatable)")
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 || q.Path == "" {
		fmt.Fprint(stderr, "scopegate policy explain: want --path and one POLICY\n\n"+policyUsage)
		return 2
	}
	q.Scopes, q.Audience = splitList(scopes), splitList(audience)
	return policytool.Explain(stdout, fs.Arg(0), q, format)
}

// contextFlag collects repeated --context K=V flags into a route context.
type contextFlag policy.Context

func (c *contextFlag) String() string { return "" }

func (c *contextFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want K=V, got %q", s)
	}
	(*policy.Context)(c).Set(k, v)
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
