package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scopegate/scopegate/internal/testutil"
)

// The docs mark what TestDocsCommands runs in a fenced block's info string,
// after the language, which is all that renderers read:
//
//   - "console runnable": lines starting with "$ " are commands (a trailing
//     backslash continues one); the lines up to the next command are its
//     output, in which "..." stands for any text and a line of only "..."
//     for any lines. stdout and stderr are read together, as a terminal
//     shows them, so exit codes are shown with `$ echo $?`.
//   - "sh runnable": every line is a command that must exit 0; its output
//     is not compared.
//   - "file=NAME": the block is written to NAME in the document's folder
//     before the commands after it run, for the policies and configs that
//     the docs show and then check.
//
// A document's commands run in order in one shell, in a folder of its own
// that holds examples/ and the files its blocks wrote, with the binary on
// PATH as scopegate and one `scopegate serve --dev` on loopback. The dev
// server's documented addresses are swapped for the ones it listens on in
// commands, and back in their output; SECRET holds its client secret.
const (
	runnableWord = "runnable"
	fileWord     = "file="
)

// docFiles are the documents whose commands are run.
var docFiles = []string{"README.md", "docs/operations.md", "docs/policy.md", "docs/proxies.md"}

// docBlock is one fenced block of a document.
type docBlock struct {
	line int // of the opening fence
	lang string
	run  bool
	file string
	text string // without the fences and the block's indentation
}

var fence = regexp.MustCompile("^( *)```(.*)$")

// docBlocks returns the fenced blocks of a Markdown document.
func docBlocks(src string) []docBlock {
	var blocks []docBlock
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, info := m[1], strings.Fields(m[2])
		b := docBlock{line: i + 1}
		for j, w := range info {
			switch {
			case j == 0:
				b.lang = w
			case w == runnableWord:
				b.run = true
			case strings.HasPrefix(w, fileWord):
				b.file = strings.TrimPrefix(w, fileWord)
			}
		}
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		b.text = strings.Join(body, "\n")
		blocks = append(blocks, b)
	}
	return blocks
}

// docCommand is one command of a runnable block and what it must print.
type docCommand struct {
	line    int // in the document
	text    string
	output  []string // nil when not compared
	compare bool
}

// commands splits a runnable block into its commands.
func (b docBlock) commands() []docCommand {
	var cmds []docCommand
	lines := strings.Split(b.text, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if b.lang == "console" && !strings.HasPrefix(line, "$ ") {
			if len(cmds) == 0 {
				continue
			}
			c := &cmds[len(cmds)-1]
			c.output = append(c.output, line)
			continue
		}
		text := strings.TrimPrefix(line, "$ ")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(strings.TrimSpace(text), "#") {
			continue
		}
		start := i
		for strings.HasSuffix(text, "\\") && i+1 < len(lines) {
			i++
			text += "\n" + lines[i]
		}
		cmds = append(cmds, docCommand{line: b.line + 1 + start, text: text, compare: b.lang == "console"})
	}
	for i := range cmds {
		out := cmds[i].output
		for len(out) > 0 && strings.TrimSpace(out[len(out)-1]) == "" {
			out = out[:len(out)-1]
		}
		cmds[i].output = out
	}
	return cmds
}

// outputMatches reports whether got matches the documented want, where
// "..." stands for any text within a line and a line of "..." for any
// lines.
func outputMatches(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if strings.TrimSpace(want[0]) == "..." {
		for i := 0; i <= len(got); i++ {
			if outputMatches(want[1:], got[i:]) {
				return true
			}
		}
		return false
	}
	return len(got) > 0 && lineMatches(want[0], got[0]) && outputMatches(want[1:], got[1:])
}

func lineMatches(want, got string) bool {
	parts := strings.Split(want, "...")
	pattern := make([]string, len(parts))
	for i, p := range parts {
		pattern[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(pattern, ".*") + "$").MatchString(strings.TrimRight(got, " "))
}

func TestDocOutputMatching(t *testing.T) {
	for _, tc := range []struct {
		want, got string
		match     bool
	}{
		{"a\nb", "a\nb", true},
		{"a\nb", "a\nc", false},
		{"a\nb", "a", false},
		{"a", "a\nb", false},
		{`body: {"error":...}`, `body: {"error":"x","reason":"y"}`, true},
		{`body: {"error":...}`, `body: {"err"}`, false},
		{"a\n...\nz", "a\nz", true},
		{"a\n...\nz", "a\nb\nc\nz", true},
		{"a\n...\nz", "a\nb\nc", false},
	} {
		if got := outputMatches(strings.Split(tc.want, "\n"), strings.Split(tc.got, "\n")); got != tc.match {
			t.Errorf("outputMatches(%q, %q) = %v, want %v", tc.want, tc.got, got, tc.match)
		}
	}
}

// devServer is a `scopegate serve --dev` for the docs' commands.
type devServer struct {
	secret string
	// addrs maps each documented address to the one the server uses.
	addrs map[string]string
}

func startDevServer(t *testing.T, bin string) *devServer {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--dev", "--grpc", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--dev-issuer", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	welcome := readUntil(t, stdout, "--method POST", testutil.WaitTimeout)
	admin := regexp.MustCompile(`msg="scopegate serving" grpc=\S+ admin=(\S+)`)
	var adminAddr string
	for deadline := time.Now().Add(testutil.WaitTimeout); adminAddr == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve --dev did not log its admin address:\n%s", stderr.String())
		}
		if m := admin.FindStringSubmatch(stderr.String()); m != nil {
			adminAddr = m[1]
		}
	}
	return &devServer{
		secret: field(t, welcome, `secret:\s+(\S+)`),
		addrs: map[string]string{
			"127.0.0.1:9001": field(t, welcome, `ext_authz gRPC:\s+(\S+)`),
			"127.0.0.1:9002": adminAddr,
			"127.0.0.1:9003": strings.TrimPrefix(field(t, welcome, `dev issuer:\s+(\S+)`), "http://"),
		},
	}
}

// TestDocsCommands runs the commands that README.md and docs/ mark as
// runnable, against the built binary and a dev server, and compares what
// they print with what the docs show.
func TestDocsCommands(t *testing.T) {
	bin := buildBinary(t)
	binDir := t.TempDir()
	if err := os.Rename(bin, filepath.Join(binDir, "scopegate")); err != nil {
		t.Fatal(err)
	}
	dev := startDevServer(t, filepath.Join(binDir, "scopegate"))
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, doc := range docFiles {
		src, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		blocks := docBlocks(string(src))
		for _, b := range blocks {
			if b.run {
				total += len(b.commands())
			}
		}
		t.Run(doc, func(t *testing.T) { runDoc(t, doc, blocks, root, binDir, dev) })
	}
	// Marks lost in an edit would make this test pass on nothing.
	if total < 10 {
		t.Fatalf("the docs mark %d runnable commands; want the walkthrough's and the CLI's, at least 10", total)
	}
}

// runDoc runs one document's blocks in order in one shell.
func runDoc(t *testing.T, doc string, blocks []docBlock, root, binDir string, dev *devServer) {
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "examples"), filepath.Join(dir, "examples")); err != nil {
		t.Fatal(err)
	}
	// Files are written before any command runs: a document may show a
	// file after the command that reads it.
	var cmds []docCommand
	for _, b := range blocks {
		if b.file != "" {
			writeFiles(t, dir, map[string]string{b.file: b.text + "\n"})
		}
		if b.run {
			cmds = append(cmds, b.commands()...)
		}
	}
	if len(cmds) == 0 {
		return
	}
	// Each command sees the exit status of the one before it, as at a
	// prompt, so that `echo $?` shows it.
	script := strings.Builder{}
	script.WriteString("sg_status=0\n")
	for i, c := range cmds {
		text := c.text
		for documented, actual := range dev.addrs {
			text = strings.ReplaceAll(text, documented, actual)
		}
		fmt.Fprintf(&script, "printf '@@begin %d@@\\n'\n(exit $sg_status)\n{\n%s\n} 2>&1\nsg_status=$?\nprintf '\\n@@end %d %%d@@\\n' $sg_status\n", i, text, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "--noprofile", "--norc")
	sh.Dir = dir
	sh.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "SECRET="+dev.secret)
	sh.Stdin = strings.NewReader(script.String())
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	err := sh.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s: the commands did not finish in 2m; output so far:\n%s", doc, &out)
	}
	if err != nil {
		t.Fatalf("%s: the shell failed: %v\n%s", doc, err, &out)
	}
	results := splitResults(out.String())
	for i, c := range cmds {
		r, ok := results[i]
		if !ok {
			t.Errorf("%s:%d: `%s` did not run; shell output:\n%s", doc, c.line, c.text, &out)
			continue
		}
		got := r.output
		for documented, actual := range dev.addrs {
			got = strings.ReplaceAll(got, actual, documented)
		}
		gotLines := strings.Split(strings.TrimRight(got, "\n"), "\n")
		if got == "" || strings.TrimRight(got, "\n") == "" {
			gotLines = nil
		}
		switch {
		case c.compare && !outputMatches(c.output, gotLines):
			t.Errorf("%s:%d: `%s` printed\n%s\nwhich differs from the documented\n%s", doc, c.line, c.text, got, strings.Join(c.output, "\n"))
		case !c.compare && r.code != 0:
			t.Errorf("%s:%d: `%s` exited %d, want 0:\n%s", doc, c.line, c.text, r.code, got)
		}
	}
}

type docResult struct {
	output string
	code   int
}

var resultMarks = regexp.MustCompile(`(?s)@@begin (\d+)@@\n(.*?)\n?@@end (\d+) (\d+)@@\n`)

func splitResults(out string) map[int]docResult {
	results := map[int]docResult{}
	for _, m := range resultMarks.FindAllStringSubmatch(out, -1) {
		i, _ := strconv.Atoi(m[1])
		code, _ := strconv.Atoi(m[4])
		results[i] = docResult{output: m[2], code: code}
	}
	return results
}
