// Package policytool runs scopegate's policy commands, for the security
// teams that own a policy and the CI that guards it:
//
//   - Check validates policy and test files strictly, as the server would,
//     and lints them (see policy.Lint).
//   - Test runs a policy's test cases through the decision code the server
//     runs (authz.Authorizer.Decide), not a copy of it.
//   - Explain shows how a policy decides one request: the routes that
//     match, the one that wins and why, and what the token lacks.
//
// Each writes a report as text for people or JSON for machines, and
// returns the process exit status.
package policytool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/yamlfile"
	"github.com/scopegate/scopegate/policy"
)

// Format is the format of a report. The zero Format is Text. It is a
// flag.Value.
type Format string

// The formats of a report.
const (
	Text Format = "text"
	JSON Format = "json"
)

func (f *Format) String() string {
	if *f == "" {
		return string(Text)
	}
	return string(*f)
}

// Set sets f from a flag's value.
func (f *Format) Set(s string) error {
	switch Format(s) {
	case Text, JSON:
		*f = Format(s)
		return nil
	}
	return fmt.Errorf("unknown format %q: want text or json", s)
}

// Diagnostic is an error or warning about a file, as reports show it.
type Diagnostic struct {
	Severity string `json:"severity"`        // "error" or "warning"
	Check    string `json:"check,omitempty"` // for a warning, the policy.Warning's Check
	File     string `json:"file"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
	// Source is the offending line with a caret under the column.
	Source string `json:"source,omitempty"`
}

// diagnostics turns an error of policy.Parse, policy.ParseTests or reading
// a file into diagnostics.
func diagnostics(file string, err error) []Diagnostic {
	var list yamlfile.Errors
	var one *yamlfile.Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = yamlfile.Errors{one}
	default:
		return []Diagnostic{{Severity: "error", File: file, Message: err.Error()}}
	}
	out := make([]Diagnostic, len(list))
	for i, e := range list {
		out[i] = Diagnostic{Severity: "error", File: e.File, Line: e.Line, Column: e.Column, Field: e.Field, Message: e.Msg, Source: e.Source()}
	}
	return out
}

func warningDiagnostic(w *policy.Warning) Diagnostic {
	return Diagnostic{Severity: "warning", Check: w.Check, File: w.File, Line: w.Line, Column: w.Column, Field: w.Field, Message: w.Msg, Source: w.Source}
}

// writeText writes d as "file:line:column: severity: field: message",
// then its source line, indented.
func (d *Diagnostic) writeText(w io.Writer) {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d", d.Line)
		if d.Column > 0 {
			fmt.Fprintf(&b, ":%d", d.Column)
		}
	}
	fmt.Fprintf(&b, ": %s: ", d.Severity)
	if d.Field != "" {
		b.WriteString(d.Field)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	if d.Check != "" {
		fmt.Fprintf(&b, " [%s]", d.Check)
	}
	b.WriteByte('\n')
	if d.Source != "" {
		b.WriteString(d.Source)
		b.WriteByte('\n')
	}
	io.WriteString(w, b.String())
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) // only maps, slices, strings and numbers: cannot fail but on w
}

// newOutcome returns d, a decision on p, as an Outcome.
func newOutcome(p *policy.Policy, d *authz.Decision) Outcome {
	o := Outcome{Decision: outcome(d), Status: d.Status, Reason: d.Reason, Route: d.Route, Description: d.Description}
	if r := routeNamed(p, d.Route); r != nil {
		o.RouteLine = r.Line
	}
	return o
}

// outcome returns what d tells Envoy, in the words of a test case.
func outcome(d *authz.Decision) policy.Outcome {
	switch {
	case d.WouldDeny:
		return policy.OutcomeWouldDeny
	case d.Allow:
		return policy.OutcomeAllow
	}
	return policy.OutcomeDeny
}

// claims returns the claims of a test token, nil for none.
func claims(t *policy.Token) *authz.Claims {
	if t == nil {
		return nil
	}
	c := &authz.Claims{Issuer: t.Issuer, Subject: t.Subject, ClientID: t.ClientID, Audience: t.Audience, Scopes: t.Scopes}
	switch t.Binding {
	case policy.BindingMTLS:
		c.Confirmation.Methods = authz.ConfirmCertificate
	case policy.BindingDPoP:
		c.Confirmation.Methods = authz.ConfirmDPoPKey
	}
	return c
}

// plural returns "1 test" or "2 tests".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
