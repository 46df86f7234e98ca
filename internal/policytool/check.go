package policytool

import (
	"fmt"
	"io"
	"strings"

	"github.com/scopegate/scopegate/policy"
)

// CheckOptions tunes Check. The zero value reports text and lets
// warnings pass.
type CheckOptions struct {
	Strict bool // warnings fail the check too
	Format Format
}

// FileCheck is the result of checking one file.
type FileCheck struct {
	File     string       `json:"file"`
	Kind     string       `json:"kind"`              // "policy" or "tests"
	Version  string       `json:"version,omitempty"` // of a valid policy
	Routes   int          `json:"routes"`
	Tests    int          `json:"tests"`
	Problems []Diagnostic `json:"problems"` // errors, then warnings
}

// CheckReport is the result of Check.
type CheckReport struct {
	OK       bool        `json:"ok"`
	Errors   int         `json:"errors"`
	Warnings int         `json:"warnings"`
	Strict   bool        `json:"strict"`
	Files    []FileCheck `json:"files"`
}

// Check validates files, reports what it finds to w and returns the exit
// status: 0 when every file is valid (and, with Strict, draws no
// warning), 1 otherwise. A file whose name ends in _test.yaml or
// _test.yml is read as a file of test cases (policy.ParseTests), any
// other as a policy, which is also linted (policy.Lint).
func Check(w io.Writer, files []string, o CheckOptions) int {
	r := CheckReport{Strict: o.Strict, Files: make([]FileCheck, 0, len(files))}
	for _, name := range files {
		fc := checkFile(name)
		for _, d := range fc.Problems {
			if d.Severity == "error" {
				r.Errors++
			} else {
				r.Warnings++
			}
		}
		r.Files = append(r.Files, fc)
	}
	r.OK = r.Errors == 0 && (!o.Strict || r.Warnings == 0)
	if o.Format == JSON {
		writeJSON(w, &r)
	} else {
		r.writeText(w)
	}
	if !r.OK {
		return 1
	}
	return 0
}

func checkFile(name string) FileCheck {
	fc := FileCheck{File: name, Kind: "policy", Problems: []Diagnostic{}}
	if isTestFile(name) {
		fc.Kind = "tests"
		tests, err := policy.LoadTests(name)
		if err != nil {
			fc.Problems = diagnostics(name, err)
		}
		fc.Tests = len(tests)
		return fc
	}
	p, err := policy.Load(name)
	if err != nil {
		fc.Problems = diagnostics(name, err)
		return fc
	}
	fc.Version, fc.Routes, fc.Tests = p.Version, len(p.Routes), len(p.Tests)
	for _, wn := range policy.Lint(p) {
		fc.Problems = append(fc.Problems, warningDiagnostic(wn))
	}
	return fc
}

func isTestFile(name string) bool {
	return strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml")
}

func (r *CheckReport) writeText(w io.Writer) {
	for _, fc := range r.Files {
		for i := range fc.Problems {
			fc.Problems[i].writeText(w)
		}
		if len(fc.Problems) > 0 {
			continue
		}
		if fc.Kind == "tests" {
			fmt.Fprintf(w, "%s: ok (%s)\n", fc.File, plural(fc.Tests, "test"))
		} else {
			fmt.Fprintf(w, "%s: ok (version %s, %s, %s)\n", fc.File, fc.Version, plural(fc.Routes, "route"), plural(fc.Tests, "test"))
		}
	}
	if r.Errors+r.Warnings == 0 {
		return
	}
	verdict := "ok"
	if !r.OK {
		verdict = "FAIL"
	}
	strict := ""
	if r.Strict && r.Warnings > 0 {
		strict = " (--strict: warnings fail)"
	}
	fmt.Fprintf(w, "%s: %s, %s in %s%s\n", verdict, plural(r.Errors, "error"), plural(r.Warnings, "warning"), plural(len(r.Files), "file"), strict)
}
