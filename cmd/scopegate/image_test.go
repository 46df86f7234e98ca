package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/scopegate/scopegate/internal/config"
	"github.com/scopegate/scopegate/internal/testutil"
)

// dockerfile is the parts of the Dockerfile that the image's promises rest
// on.
type dockerfile struct {
	from   []string          // the images of the FROM lines
	copies map[string]string // destination → source, of the COPY lines from the build context
	expose []string
	cmd    string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := dockerfile{copies: map[string]string{}}
	// Continuation lines are joined, as Docker reads them.
	for _, line := range strings.Split(strings.ReplaceAll(string(data), "\\\n", " "), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			df.from = append(df.from, f[1])
		case "COPY":
			if len(f) == 3 {
				df.copies[f[2]] = f[1]
			}
		case "EXPOSE":
			df.expose = append(df.expose, f[1:]...)
		case "CMD":
			df.cmd = strings.Join(f[1:], " ")
		}
	}
	return df
}

// TestImagePinsItsBaseImagesAndGoVersion holds the Dockerfile to go.mod's
// Go version and to base images pinned by digest, so that a rebuild takes
// neither another toolchain nor another base.
func TestImagePinsItsBaseImagesAndGoVersion(t *testing.T) {
	df := readDockerfile(t)
	if len(df.from) != 2 {
		t.Fatalf("FROM lines %q, want a build stage and a runtime stage", df.from)
	}
	digest := regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	for _, image := range df.from {
		if !digest.MatchString(image) {
			t.Errorf("FROM %s is not pinned by digest", image)
		}
	}
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	if want := "golang:" + string(goVersion[1]) + "@"; !strings.HasPrefix(df.from[0], want) {
		t.Errorf("build stage FROM %s, want %s… (go.mod's version)", df.from[0], want)
	}
}

// TestImageConfigIsValidAndReachable lays out /etc/scopegate as the
// Dockerfile's COPY lines do, checks the config the image starts with as
// `config check` would, and holds it to listeners that another container
// can reach and that the image exposes.
func TestImageConfigIsValidAndReachable(t *testing.T) {
	df := readDockerfile(t)
	const etc = "/etc/scopegate/"
	wantCmd := `["serve", "--config", "` + etc + `config.yaml"]`
	if df.cmd != wantCmd {
		t.Fatalf("CMD %s, want %s", df.cmd, wantCmd)
	}
	root := t.TempDir()
	for dst, src := range df.copies {
		if !strings.HasPrefix(dst, etc) {
			continue
		}
		data, err := os.ReadFile(filepath.Join("../..", src))
		if err != nil {
			t.Fatalf("COPY %s %s: %v", src, dst, err)
		}
		writeFiles(t, root, map[string]string{strings.TrimPrefix(dst, etc): string(data)})
	}
	file := filepath.Join(root, "config.yaml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"config", "check", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("config check of the image's config = %d, want 0\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}

	cfg, _, err := config.Load(file, config.Everything)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ name, addr string }{{"grpc", cfg.Listen.GRPC}, {"admin", cfg.Listen.Admin}, {"http", cfg.Listen.HTTP}} {
		host, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			t.Errorf("listen.%s %q: %v", l.name, l.addr, err)
			continue
		}
		if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
			t.Errorf("listen.%s %s: another container cannot reach it; want all interfaces", l.name, l.addr)
		}
		if !slices.Contains(df.expose, port) {
			t.Errorf("listen.%s %s: port %s is not in EXPOSE %q", l.name, l.addr, port, df.expose)
		}
	}
}

// TestServeWarnsOfListenersBeyondLoopback pins the warnings that the
// image's config, which listens on every interface, makes at start.
func TestServeWarnsOfListenersBeyondLoopback(t *testing.T) {
	bin := buildBinary(t)
	idp := testutil.NewIdP(t)
	const (
		admin     = "serving the admin endpoints on a non-loopback address"
		plaintext = "serving ext_authz in plaintext on a non-loopback address"
	)
	for _, tc := range []struct {
		name, listen string
		want, not    []string
	}{
		{"loopback only", "{ grpc: 127.0.0.1:0, admin: 127.0.0.1:0 }", nil, []string{admin, plaintext}},
		{"admin on every interface", "{ grpc: 127.0.0.1:0, admin: 0.0.0.0:0 }", []string{admin}, []string{plaintext}},
		{"grpc on every interface", "{ grpc: 0.0.0.0:0, admin: 127.0.0.1:0 }", []string{plaintext}, []string{admin}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{
				"policy.yaml": opsPolicy,
				"config.yaml": fmt.Sprintf("listen: %s\nissuers:\n  - issuer: %s\n    jwks_uri: %s\n    audiences: [%s]\npolicy: { file: policy.yaml }\n",
					tc.listen, idp.Issuer(), idp.JWKSURL(), testutil.DefaultAudience),
			})
			s := startServer(t, bin, filepath.Join(dir, "config.yaml"))
			logs := s.stderr.String()
			for _, w := range tc.want {
				if !strings.Contains(logs, w) {
					t.Errorf("serve did not warn %q:\n%s", w, logs)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(logs, w) {
					t.Errorf("serve warned %q:\n%s", w, logs)
				}
			}
		})
	}
}
