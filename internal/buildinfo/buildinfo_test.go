package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuild(t *testing.T) {
	const rev = "0ed0bb6f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"
	recorded := func(version string, settings ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/scopegate/scopegate", Version: version}, Settings: settings}
	}
	tests := []struct {
		name            string
		bi              *debug.BuildInfo
		version, commit string // stamped
		want            Info
	}{
		{
			name:    "a stamped version and commit win over the recorded ones",
			bi:      recorded("v0.0.0-20260101000000-0ed0bb6f1c2d", debug.BuildSetting{Key: "vcs.revision", Value: rev}),
			version: "v1.2.3", commit: "abc1234",
			want: Info{Version: "v1.2.3", Commit: "abc1234", GoVersion: "go1.26.8"},
		},
		{
			name: "go install module@version: the module version",
			bi:   recorded("v0.4.0"),
			want: Info{Version: "v0.4.0", Commit: "unknown", GoVersion: "go1.26.8"},
		},
		{
			name: "a checkout with changes: the revision, short, marked dirty",
			bi:   recorded("(devel)", debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "true"}),
			want: Info{Version: "unknown", Commit: "0ed0bb6f1c2d-dirty", GoVersion: "go1.26.8"},
		},
		{
			name:    "a clean checkout stamped by make build: the stamped version, the recorded revision",
			bi:      recorded("(devel)", debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "false"}),
			version: "v0.3.1-2-g0ed0bb6",
			want:    Info{Version: "v0.3.1-2-g0ed0bb6", Commit: "0ed0bb6f1c2d", GoVersion: "go1.26.8"},
		},
		{
			name: "nothing recorded, nothing stamped",
			bi:   recorded("(devel)"),
			want: Info{Version: "unknown", Commit: "unknown", GoVersion: "go1.26.8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fromBuild(tt.bi, tt.version, tt.commit); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFromBuildWithoutBuildInfoNamesTheRunningGo(t *testing.T) {
	got := fromBuild(nil, "", "")
	if got.Version != "unknown" || got.Commit != "unknown" || got.GoVersion == "" {
		t.Errorf("got %+v, want unknown version and commit and the running Go", got)
	}
}

func TestInfoString(t *testing.T) {
	got := Info{Version: "v0.3.1", Commit: "0ed0bb6f1c2d", GoVersion: "go1.26.8"}.String()
	if want := "scopegate v0.3.1 (commit 0ed0bb6f1c2d, go1.26.8)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
