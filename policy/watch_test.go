package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scopegate/scopegate/internal/testutil"
)

// numbered returns a valid policy whose only route is named r<n>.
func numbered(n int) string {
	return fmt.Sprintf("version: 1\nroutes:\n  - name: r%d\n    match: { path: /x }\n", n)
}

type report struct {
	p   *Policy
	err error
}

// watch runs a Watcher of file, in use at version, for the test's
// duration, and returns it and what it reports.
func watch(t *testing.T, file, version string) (*Watcher, <-chan report) {
	t.Helper()
	return watchDebounced(t, file, version, 20*time.Millisecond)
}

// watchDebounced is watch with the Watcher's debounce.
func watchDebounced(t *testing.T, file, version string, debounce time.Duration) (*Watcher, <-chan report) {
	t.Helper()
	reports := make(chan report, 64)
	w := &Watcher{File: file, Version: version, Debounce: debounce,
		OnChange: func(p *Policy, err error) { reports <- report{p, err} }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := testutil.Recv(t, done, testutil.WaitTimeout, "Run to return once cancelled"); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w, reports
}

func next(t *testing.T, reports <-chan report) report {
	t.Helper()
	select {
	case r := <-reports:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the watcher reported nothing in 30s")
		return report{}
	}
}

// wantRoute waits for the next report and checks that it is a policy
// whose route is r<n>.
func wantRoute(t *testing.T, reports <-chan report, n int) {
	t.Helper()
	r := next(t, reports)
	if r.err != nil {
		t.Fatalf("reported error %v, want the policy with route r%d", r.err, n)
	}
	var names []string
	for _, route := range r.p.Routes {
		names = append(names, route.Name)
	}
	if len(names) != 1 || names[0] != fmt.Sprint("r", n) {
		t.Fatalf("reported a policy with routes %q, want only r%d", names, n)
	}
}

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestWatcherSeesEveryWayOfReplacingTheFile(t *testing.T) {
	tests := []struct {
		name string
		// setup lays out dir and returns the path to watch.
		setup func(t *testing.T, dir string) string
		// change puts numbered(2) where setup put numbered(1).
		change func(t *testing.T, dir string)
	}{
		{"written_in_place",
			func(t *testing.T, dir string) string {
				write(t, filepath.Join(dir, "policy.yaml"), numbered(1))
				return filepath.Join(dir, "policy.yaml")
			},
			func(t *testing.T, dir string) { write(t, filepath.Join(dir, "policy.yaml"), numbered(2)) }},
		{"saved_by_rename_as_editors_do",
			func(t *testing.T, dir string) string {
				write(t, filepath.Join(dir, "policy.yaml"), numbered(1))
				return filepath.Join(dir, "policy.yaml")
			},
			func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, ".policy.yaml.swp"), numbered(2))
				must(t, os.Rename(filepath.Join(dir, ".policy.yaml.swp"), filepath.Join(dir, "policy.yaml")))
			}},
		{"kubernetes_configmap_swaps_the_data_symlink",
			configMap,
			func(t *testing.T, dir string) { swapConfigMap(t, dir, true) }},
		{"kubernetes_swap_seen_before_the_old_data_is_removed",
			configMap,
			func(t *testing.T, dir string) { swapConfigMap(t, dir, false) }},
		{"symlink_whose_target_is_edited_elsewhere",
			func(t *testing.T, dir string) string {
				must(t, os.Mkdir(filepath.Join(dir, "etc"), 0o755))
				must(t, os.Mkdir(filepath.Join(dir, "srv"), 0o755))
				write(t, filepath.Join(dir, "srv", "policy.yaml"), numbered(1))
				must(t, os.Symlink(filepath.Join(dir, "srv", "policy.yaml"), filepath.Join(dir, "etc", "policy.yaml")))
				return filepath.Join(dir, "etc", "policy.yaml")
			},
			func(t *testing.T, dir string) { write(t, filepath.Join(dir, "srv", "policy.yaml"), numbered(2)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := tt.setup(t, dir)
			p, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			_, reports := watch(t, file, p.Version)
			time.Sleep(50 * time.Millisecond) // let Run put its watches in place
			tt.change(t, dir)
			wantRoute(t, reports, 2)
		})
	}
}

// configMap lays out dir as the kubelet mounts a ConfigMap holding
// numbered(1) as policy.yaml.
func configMap(t *testing.T, dir string) string {
	must(t, os.Mkdir(filepath.Join(dir, "..2024_01_01"), 0o755))
	write(t, filepath.Join(dir, "..2024_01_01", "policy.yaml"), numbered(1))
	must(t, os.Symlink("..2024_01_01", filepath.Join(dir, "..data")))
	must(t, os.Symlink(filepath.Join("..data", "policy.yaml"), filepath.Join(dir, "policy.yaml")))
	return filepath.Join(dir, "policy.yaml")
}

// swapConfigMap updates the ConfigMap to numbered(2) as the kubelet does: a
// new timestamped directory, a temporary symlink to it renamed over ..data,
// and, when removeOld is set, the old directory removed.
func swapConfigMap(t *testing.T, dir string, removeOld bool) {
	must(t, os.Mkdir(filepath.Join(dir, "..2024_01_02"), 0o755))
	write(t, filepath.Join(dir, "..2024_01_02", "policy.yaml"), numbered(2))
	must(t, os.Symlink("..2024_01_02", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	if removeOld {
		must(t, os.RemoveAll(filepath.Join(dir, "..2024_01_01")))
	}
}

func TestWatcherReportsAnInvalidFileWithItsLineThenTheFix(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, file, numbered(1))
	_, reports := watch(t, file, mustLoad(t, file).Version)
	time.Sleep(50 * time.Millisecond)

	write(t, file, "version: 1\nroutes:\n  - name: r2\n    match: { path: /x }\n    publik: true\n")
	r := next(t, reports)
	if r.p != nil || r.err == nil || !strings.Contains(r.err.Error(), file+":5:") {
		t.Fatalf("reported %+v, want an error at %s:5", r, file)
	}
	write(t, file, numbered(3))
	wantRoute(t, reports, 3)
}

func TestWatcherReportsOnlyNewContent(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	write(t, file, numbered(1))
	_, reports := watch(t, file, mustLoad(t, file).Version)
	time.Sleep(50 * time.Millisecond)

	write(t, file, numbered(1))                          // same content
	write(t, filepath.Join(dir, "other.yaml"), "x: 1\n") // another file
	time.Sleep(200 * time.Millisecond)                   // well past the debounce
	write(t, file, numbered(2))
	wantRoute(t, reports, 2) // and not r1 first
}

func TestWatcherDebounceReadsAFileWrittenInStepsOnce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, file, numbered(1))
	// The writes below follow each other within microseconds; a debounce
	// far longer than that keeps a loaded machine's scheduling delays
	// from splitting them into two reads.
	_, reports := watchDebounced(t, file, mustLoad(t, file).Version, time.Second)
	time.Sleep(50 * time.Millisecond)

	// Truncated, then written in two parts: read in between, the file
	// would be invalid.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	must(t, err)
	src := numbered(2)
	_, err = f.WriteString(src[:20])
	must(t, err)
	must(t, f.Sync())
	_, err = f.WriteString(src[20:])
	must(t, err)
	must(t, f.Close())
	wantRoute(t, reports, 2)
	select {
	case r := <-reports:
		t.Fatalf("reported again: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestWatcherCatchesUpWithAChangeMadeBeforeRun(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, file, numbered(1))
	version := mustLoad(t, file).Version
	write(t, file, numbered(2)) // after the load, before the watch
	_, reports := watch(t, file, version)
	wantRoute(t, reports, 2)
}

func TestWatcherReloadReportsUnchangedContent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, file, numbered(1))
	w, reports := watch(t, file, mustLoad(t, file).Version)
	w.Reload()
	wantRoute(t, reports, 1)
}

func TestWatcherReportsAMissingFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, file, numbered(1))
	_, reports := watch(t, file, mustLoad(t, file).Version)
	time.Sleep(50 * time.Millisecond)
	must(t, os.Remove(file))
	if r := next(t, reports); !os.IsNotExist(r.err) {
		t.Fatalf("reported %+v, want a not-exist error", r)
	}
	write(t, file, numbered(1)) // back as it was: new since the error
	wantRoute(t, reports, 1)
}

func TestWatcherRunFailsWithoutTheDirectory(t *testing.T) {
	w := &Watcher{File: filepath.Join(t.TempDir(), "absent", "policy.yaml"), OnChange: func(*Policy, error) {}}
	err := w.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "absent/policy.yaml") {
		t.Fatalf("Run = %v, want an error naming the file", err)
	}
}

func mustLoad(t *testing.T, name string) *Policy {
	t.Helper()
	p, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
