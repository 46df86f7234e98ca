// Command scopegate is an Envoy external authorization service for
// machine-to-machine traffic: it verifies OAuth 2.0 access tokens and
// enforces a route → scope policy.
//
// Usage:
//
//	scopegate serve --config config.yaml
//	scopegate serve --dev
//	scopegate check --addr 127.0.0.1:9001 --method GET --path /orders/1 --token-file tok
//	scopegate config check config.yaml
//	scopegate version
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/scopegate/scopegate/internal/buildinfo"
)

const usage = `scopegate: authorization for machine-to-machine traffic behind Envoy

Usage:
  scopegate serve --config FILE     serve Envoy ext_authz (gRPC) with the given config
  scopegate serve --dev             serve a demo setup on loopback with a built-in token issuer
  scopegate check [flags]           send one CheckRequest, as Envoy would, and print the decision
  scopegate policy SUBCOMMAND       check, test or explain a policy file; no server needed
  scopegate config check FILE       validate a config and the files it names, without starting
  scopegate version                 print the version, the commit and the Go release of this build

Run "scopegate COMMAND -h" or "scopegate help COMMAND" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "policy":
		return policyCmd(args[1:], stdout, stderr)
	case "config":
		return configCmd(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		return version(args[1:], stdout, stderr)
	case "help":
		// "scopegate help COMMAND..." is "scopegate COMMAND... -h".
		if len(args) > 1 && !isHelp(args[1]) {
			return run(append(slices.Clone(args[1:]), "-h"), stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "scopegate: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// version prints the build of the binary: its version, commit and Go
// release, as scopegate_build_info labels them.
func version(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: scopegate version\n\nPrint the version, the commit and the Go release of this build.\n")
	}
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scopegate version: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	fmt.Fprintln(stdout, buildinfo.Read())
	return 0
}
