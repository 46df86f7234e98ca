//go:build e2e

// Package e2e runs scopegate end to end against a real OAuth 2.0 server,
// Ory Hydra: clients registered at Hydra get JWT or opaque access tokens
// with the client-credentials grant, and the scopegate binary, fetching
// Hydra's keys and introspecting at Hydra, decides the CheckRequests sent
// to it as Envoy sends them.
//
// The suite is behind the build tag e2e; make e2e runs it:
//
//	go test -tags e2e ./e2e
//
// Hydra is built with cgo from the tools module in e2e/hydra, the first
// time only: the binary is kept in e2e/hydra/bin under its version.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The binaries the tests run, built by TestMain.
var scopegateBin, hydraBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "scopegate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	scopegateBin = filepath.Join(dir, "scopegate")
	if err := goCmd("", "build", "-o", scopegateBin, "github.com/scopegate/scopegate/cmd/scopegate").Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building scopegate:", err)
		return 1
	}
	if hydraBin, err = buildHydra(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	stopOnInterrupt(dir)
	return m.Run()
}

// hydraModule is the Go package of Hydra's command, pinned by the tools
// module in the folder hydra.
const hydraModule = "github.com/ory/hydra/v2"

// buildHydra returns the path of the Hydra binary of the version that
// hydra/go.mod pins, building it first if it is not there yet. The build
// needs cgo: DSN=memory is an SQLite database.
func buildHydra() (string, error) {
	out, err := goCmd("hydra", "list", "-m", "-f", "{{.Version}}", hydraModule).Output()
	if err != nil {
		return "", fmt.Errorf("finding Hydra's version in hydra/go.mod: %v", err)
	}
	version := strings.TrimSpace(string(out))
	bin, err := filepath.Abs(filepath.Join("hydra", "bin", "hydra-"+version))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Fprintf(os.Stderr, "e2e: building Ory Hydra %s once, into %s: a minute or two, with a C compiler\n", version, bin)
	// Build under another name, so that an interrupted build does not
	// leave a broken binary behind for the next run.
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	build := goCmd("hydra", "build", "-tags", "sqlite,sqlite_omit_load_extension", "-o", tmp, hydraModule)
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if err := build.Run(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building Hydra %s (it needs a C compiler; make E2E=0 skips the suite): %v", version, err)
	}
	return bin, os.Rename(tmp, bin)
}

// goCmd returns the command go args, to run in dir with its errors on
// stderr. go test puts its own go first in PATH.
func goCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	return cmd
}
