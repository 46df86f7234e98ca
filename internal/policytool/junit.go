package policytool

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
)

// The JUnit XML schema as CI systems (Jenkins, GitLab, GitHub actions that
// publish test results) read it: one testsuite per file of test cases.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// junit converts r. A file that could not be read or parsed becomes a
// test case in error, so that CI shows it rather than an empty report.
func junit(r *TestReport) *junitSuites {
	out := &junitSuites{Name: "scopegate policy test " + r.Policy}
	index := make(map[string]int) // file → index in out.Suites, which grows
	suite := func(file string) *junitSuite {
		i, ok := index[file]
		if !ok {
			i = len(out.Suites)
			index[file] = i
			out.Suites = append(out.Suites, junitSuite{Name: file})
		}
		return &out.Suites[i]
	}
	for _, d := range r.Errors {
		s := suite(d.File)
		s.Tests++
		s.Errors++
		s.Cases = append(s.Cases, junitCase{Name: "load " + d.File, Classname: d.File, File: d.File, Line: d.Line,
			Error: &junitProblem{Message: d.Message, Type: "invalid_file", Text: d.Source}})
	}
	for _, t := range r.Tests {
		s := suite(t.File)
		s.Tests++
		c := junitCase{Name: t.Name, Classname: t.File, File: t.File, Line: t.Line}
		if !t.Passed {
			s.Failures++
			c.Failure = &junitProblem{
				Message: fmt.Sprintf("expected %s, got %s", t.Expect, t.Got),
				Type:    "unexpected_decision",
				Text:    fmt.Sprintf("request:  %s\nexpected: %s\ngot:      %s\nwhy:      %s\n", t.Request, t.Expect, t.Got, t.Got.Description),
			}
		}
		s.Cases = append(s.Cases, c)
	}
	for _, s := range out.Suites {
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
	}
	return out
}

func writeJUnitFile(name string, r *TestReport) error {
	data, err := xml.MarshalIndent(junit(r), "", "  ")
	if err != nil {
		return err
	}
	data = append([]byte(xml.Header), append(data, '\n')...)
	// As pytest's --junitxml does: a report under reports/ needs no mkdir
	// first in CI.
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, data, 0o644)
}
