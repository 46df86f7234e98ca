package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/scopegate/scopegate/internal/config"
	"github.com/scopegate/scopegate/internal/telemetry"
	"github.com/scopegate/scopegate/policy"
)

const configUsage = `Usage: scopegate config check FILE

Validate a configuration without starting: the config file, the policy
file it names, its TLS files and its ca_file. Every problem is reported,
with file, line and field where there is one. Exit 0 when valid, 1 when
not, 2 on a usage error.
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
	if code, done := parseFlags(fs, args[1:], stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	summary, err := checkConfig(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	fmt.Fprint(stdout, summary)
	return 0
}

// checkConfig loads the configuration in file and what it names, as serve
// would before listening, and returns a summary of it, or every problem
// found.
func checkConfig(file string) (summary string, err error) {
	cfg, err := config.Load(file)
	if err != nil {
		return "", err
	}
	var errs []error
	pol, err := policy.Load(cfg.Policy.File)
	if err != nil {
		errs = append(errs, err)
	}
	if _, err := loadTLS(cfg, slog.New(slog.DiscardHandler)); err != nil {
		errs = append(errs, err)
	}
	if _, err := newOutbound(cfg, telemetry.NewMetrics()); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	return fmt.Sprintf("%s: ok\npolicy %s: version %s, %d routes\n", file, pol.File, pol.Version, len(pol.Routes)), nil
}
