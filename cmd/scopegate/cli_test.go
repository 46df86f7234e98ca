package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestHelpExitsZeroOnStdoutAndUsageErrorsTwoOnStderr runs every command of
// the built binary with -h and --help, and with a usage error.
func TestHelpExitsZeroOnStdoutAndUsageErrorsTwoOnStderr(t *testing.T) {
	bin := buildBinary(t)
	const (
		top     = "scopegate version                 print the version"
		serve   = "scopegate serve --config FILE [flags]"
		check   = "Usage: scopegate check [flags]"
		policy  = "scopegate policy test [--format text|json] [--junit FILE]"
		config  = "Usage: scopegate config check [--offline] FILE"
		version = "Usage: scopegate version"
	)
	help := []struct {
		args  []string
		usage string
	}{
		{[]string{"-h"}, top},
		{[]string{"--help"}, top},
		{[]string{"help"}, top},
		{[]string{"help", "serve"}, serve},
		{[]string{"help", "policy", "test"}, policy},
		{[]string{"serve", "-h"}, serve},
		{[]string{"serve", "--help"}, serve},
		{[]string{"serve", "--dev", "-h"}, serve},
		{[]string{"check", "-h"}, check},
		{[]string{"check", "--help"}, check},
		{[]string{"policy", "-h"}, policy},
		{[]string{"policy", "help"}, policy},
		{[]string{"policy", "check", "-h"}, policy},
		{[]string{"policy", "test", "--help"}, policy},
		{[]string{"policy", "explain", "-h"}, policy},
		{[]string{"config", "-h"}, config},
		{[]string{"config", "help"}, config},
		{[]string{"config", "check", "-h"}, config},
		{[]string{"config", "check", "--help"}, config},
		{[]string{"version", "-h"}, version},
	}
	for _, tt := range help {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runBinary(t, bin, tt.args...)
			if code != 0 {
				t.Errorf("exit %d, want 0", code)
			}
			if !strings.Contains(stdout, tt.usage) {
				t.Errorf("stdout lacks the usage %q:\n%s", tt.usage, stdout)
			}
			if stderr != "" {
				t.Errorf("stderr, want none:\n%s", stderr)
			}
		})
	}
	if _, stdout, _ := runBinary(t, bin, "check", "-h"); !strings.Contains(stdout, "-ca-file") {
		t.Errorf("check -h does not list its flags:\n%s", stdout)
	}

	usageErrors := []struct {
		args         []string
		error, usage string
	}{
		{nil, "", top},
		{[]string{"nosuch"}, `unknown command "nosuch"`, top},
		{[]string{"help", "nosuch"}, `unknown command "nosuch"`, top},
		{[]string{"serve", "--nosuch"}, "flag provided but not defined: -nosuch", serve},
		{[]string{"check", "--nosuch"}, "flag provided but not defined: -nosuch", check},
		{[]string{"check", "--timeout", "soon"}, `invalid value "soon" for flag -timeout`, check},
		{[]string{"check", "GET"}, `unexpected argument "GET"`, ""},
		{[]string{"policy"}, "", policy},
		{[]string{"policy", "nosuch"}, `unknown command "nosuch"`, policy},
		{[]string{"policy", "check", "--nosuch"}, "flag provided but not defined: -nosuch", policy},
		{[]string{"policy", "check"}, "no FILE given", policy},
		{[]string{"config"}, "", config},
		{[]string{"config", "check"}, "", config},
		{[]string{"config", "check", "--nosuch", "x.yaml"}, "flag provided but not defined: -nosuch", config},
		{[]string{"version", "extra"}, `unexpected argument "extra"`, version},
	}
	for _, tt := range usageErrors {
		t.Run(strings.Join(append([]string{"usage error"}, tt.args...), " "), func(t *testing.T) {
			code, stdout, stderr := runBinary(t, bin, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr, tt.error) || !strings.Contains(stderr, tt.usage) {
				t.Errorf("stderr lacks %q or the usage %q:\n%s", tt.error, tt.usage, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout, want none:\n%s", stdout)
			}
		})
	}
}

// TestVersionAndBuildInfo builds the binary stamped as make build and a
// container build stamp it, and pins what `scopegate version` prints and
// what scopegate_build_info says.
func TestVersionAndBuildInfo(t *testing.T) {
	const pkg = "github.com/scopegate/scopegate/internal/buildinfo"
	goVersion, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	goVer := strings.TrimSpace(string(goVersion))
	bin := filepath.Join(t.TempDir(), "scopegate")
	build := exec.Command("go", "build", "-ldflags", "-X "+pkg+".Version=v9.8.7-test -X "+pkg+".Commit=feedc0ffee12", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	want := fmt.Sprintf("scopegate v9.8.7-test (commit feedc0ffee12, %s)\n", goVer)
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		if code, stdout, stderr := runBinary(t, bin, args...); code != 0 || stdout != want {
			t.Errorf("%s: exit %d, stdout %q, want 0 and %q (stderr %s)", args, code, stdout, want, stderr)
		}
	}

	s := startIssuerServer(t, bin, t.TempDir(), "config.yaml", "")
	_, mfs := scrapeMetrics(t, s.admin)
	if got := sample(mfs, "scopegate_build_info", "commit=feedc0ffee12", "go_version="+goVer, "version=v9.8.7-test"); got != 1 {
		t.Errorf("scopegate_build_info of the stamped build = %v, want 1: %v", got, mfs["scopegate_build_info"])
	}
}

// TestVersionUnstampedNamesTheRecordedCommit pins that a plain go build
// says which commit it is when the toolchain recorded one (a build in a
// git clone), and "unknown" when it did not (-buildvcs=false, a git
// worktree, no git).
func TestVersionUnstampedNamesTheRecordedCommit(t *testing.T) {
	bin := buildBinary(t)
	code, stdout, stderr := runBinary(t, bin, "version")
	m := regexp.MustCompile(`^scopegate (\S+) \(commit (\S+), go\S+\)\n$`).FindStringSubmatch(stdout)
	if code != 0 || m == nil {
		t.Fatalf("exit %d, stdout %q (stderr %s)", code, stdout, stderr)
	}
	recorded, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "unknown"
	if rev := regexp.MustCompile(`\tvcs\.revision=([0-9a-f]{12})`).FindSubmatch(recorded); rev != nil {
		want = string(rev[1])
	}
	if !strings.HasPrefix(m[2], want) {
		t.Errorf("commit %q, want %q, from what the toolchain recorded:\n%s", m[2], want, recorded)
	}
}
