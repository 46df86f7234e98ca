package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// isHelp reports whether arg asks for help, as the flag package reads it.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "--h", "help":
		return true
	}
	return false
}

// parseFlags parses args into fs. Help (-h, --help) prints fs's usage to
// stdout: asked for, it is not an error, and exits 0. A usage error prints
// the error and the usage to stderr, and exits 2. done reports that the
// command should exit with code.
//
// fs.Usage, if set, must write to fs.Output().
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	usage := fs.Usage
	if usage == nil {
		usage = func() {
			fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
			fs.PrintDefaults()
		}
	}
	// The flag package prints the usage before Parse returns; it is
	// printed here instead, where it can go to the right stream.
	fs.Usage = func() {}
	fs.SetOutput(stderr)
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return 0, true
	default:
		fs.Usage()
		return 2, true
	}
}

// flagUsage returns a usage function for fs: head, then fs's flags.
func flagUsage(fs *flag.FlagSet, head string) func() {
	return func() {
		fmt.Fprint(fs.Output(), head+"\nFlags:\n")
		fs.PrintDefaults()
	}
}
