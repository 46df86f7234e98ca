package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"
)

// TestPolicyTestJUnitCreatesTheReportDirectory pins the documented form,
// --junit reports/policy-tests.xml, in a folder without reports/: the
// directory is made, as pytest's --junitxml makes it.
func TestPolicyTestJUnitCreatesTheReportDirectory(t *testing.T) {
	bin := buildBinary(t)
	policyFile, err := filepath.Abs("../../examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "reports", "policy-tests.xml")
	code, stdout, stderr := runBinary(t, bin, "policy", "test", "--junit", report, policyFile)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, stdout, stderr)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, stdout)
	}
	var suites struct {
		Tests int `xml:"tests,attr"`
	}
	if err := xml.Unmarshal(data, &suites); err != nil || suites.Tests == 0 {
		t.Errorf("the report has %d tests (%v):\n%s", suites.Tests, err, data)
	}
}
