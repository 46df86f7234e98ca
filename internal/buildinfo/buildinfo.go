// Package buildinfo says which build of scopegate is running: its version,
// its commit and the Go release that built it, for `scopegate version` and
// the scopegate_build_info metric.
//
// A value stamped at build time wins:
//
//	go build -ldflags "-X github.com/scopegate/scopegate/internal/buildinfo.Version=v1.2.3 \
//	  -X github.com/scopegate/scopegate/internal/buildinfo.Commit=0ed0bb6" ./cmd/scopegate
//
// Otherwise they come from what the Go toolchain records in the binary: the
// module version of `go install ...@version`, and the VCS revision of a
// build in a git checkout. `make build` stamps the version from
// `git describe`; a build from a container context without .git stamps
// both.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version and Commit are stamped at build time with -ldflags -X; empty
// means not stamped.
var (
	Version string
	Commit  string
)

// Info is one build of scopegate. Version and Commit are "unknown" when
// neither stamped nor recorded by the toolchain.
type Info struct {
	Version   string // a module version or `git describe` output, such as v0.3.1 or v0.3.1-2-g0ed0bb6-dirty
	Commit    string // the VCS revision, its first 12 hex digits, with "-dirty" when the tree had changes
	GoVersion string // the Go release that built the binary, such as go1.26.8
}

// Read returns the build of the running binary.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuild(bi, Version, Commit)
}

// fromBuild merges the stamped version and commit, which win, with what
// the toolchain recorded in bi, which may be nil.
func fromBuild(bi *debug.BuildInfo, version, commit string) Info {
	info := Info{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if bi != nil {
		info.GoVersion = bi.GoVersion
		// "(devel)" is what a build without module version says: no version.
		if info.Version == "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		if info.Commit == "" {
			info.Commit = vcsCommit(bi.Settings)
		}
	}
	if info.Version == "" {
		info.Version = "unknown"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

// vcsCommit returns the revision that settings record, shortened, marked
// dirty when the working tree had changes, or "" when none is recorded.
func vcsCommit(settings []debug.BuildSetting) string {
	var rev string
	var modified bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return ""
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "-dirty"
	}
	return rev
}

// String is the line `scopegate version` prints.
func (i Info) String() string {
	return fmt.Sprintf("scopegate %s (commit %s, %s)", i.Version, i.Commit, i.GoVersion)
}
