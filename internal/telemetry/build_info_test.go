package telemetry_test

import (
	"testing"

	"github.com/scopegate/scopegate/internal/buildinfo"
	"github.com/scopegate/scopegate/internal/telemetry"
)

func TestBuildInfoIsOneLabelledWithTheBuild(t *testing.T) {
	b := buildinfo.Read()
	mfs := scrape(t, telemetry.NewMetrics())
	if n := len(mfs["scopegate_build_info"].GetMetric()); n != 1 {
		t.Fatalf("scopegate_build_info has %d series, want 1", n)
	}
	got, ok := value(mfs, "scopegate_build_info", "version="+b.Version, "commit="+b.Commit, "go_version="+b.GoVersion)
	if !ok || got != 1 {
		t.Errorf("scopegate_build_info{version=%q, commit=%q, go_version=%q} = %v (found %v), want 1", b.Version, b.Commit, b.GoVersion, got, ok)
	}
}
