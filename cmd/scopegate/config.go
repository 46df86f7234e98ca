package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/scopegate/scopegate/internal/config"
)

const configUsage = `Usage: scopegate config check [--offline] FILE

Validate a configuration without starting, as serve would load it: the
config file, the policy file it names, its TLS files, its ca_file, and the
introspection client secret and Redis password it names (files or
environment variables). No identity provider or Redis is contacted. Every
problem is reported, with file, line and field where there is one. Exit 0
when valid, 1 when not, 2 on a usage error.

  --offline   read no secret file or environment variable, for CI where
              the secrets are absent; the rest is checked as without it
`

// configCmd runs `scopegate config check FILE`.
func configCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, configUsage)
		return 0
	}
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprint(stderr, configUsage)
		return 2
	}
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), configUsage) }
	offline := fs.Bool("offline", false, "read no secret file or environment variable")
	if code, done := parseFlags(fs, args[1:], stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	r := config.Everything
	if *offline {
		r = config.Offline
	}
	summary, err := checkConfig(fs.Arg(0), r)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	fmt.Fprint(stdout, summary)
	return 0
}

// checkConfig loads the configuration in file and what it names, as serve
// does before listening, and returns a summary of it, or every problem
// found.
func checkConfig(file string, r config.Resolution) (summary string, err error) {
	_, pol, err := config.Load(file, r)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: ok\npolicy %s: version %s, %d routes\n", file, pol.File, pol.Version, len(pol.Routes)), nil
}
