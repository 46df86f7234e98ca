// Package yamlfile decodes the YAML files people write by hand (the policy
// and the config) strictly, and reports every problem with the file name,
// line, column and the offending source line, so that an error message can
// be pasted into a pull-request review as it is.
package yamlfile

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// File is a parsed YAML document that can locate its own fields, so that
// validation done after decoding can still point at a line.
type File struct {
	Name string
	Data []byte
	ast  *ast.File
}

// Decode parses data strictly into v: unknown fields, wrong types and
// duplicate keys are errors. The returned File locates fields by path for
// later validation errors.
func Decode(name string, data []byte, v any) (*File, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, syntaxError(name, data, err)
	}
	if err := yaml.UnmarshalWithOptions(data, v, yaml.Strict()); err != nil {
		return nil, syntaxError(name, data, err)
	}
	return &File{Name: name, Data: data, ast: f}, nil
}

// Errorf returns an Error for the field at path, a YAMLPath such as
// "$.routes[2].match.path". When the field is absent from the file the
// error points at its nearest parent that is present.
func (f *File) Errorf(path, format string, args ...any) *Error {
	e := &Error{File: f.Name, Field: fieldName(path), Msg: fmt.Sprintf(format, args...)}
	if tok := f.locate(path); tok != nil {
		e.Line, e.Column = tok.Position.Line, tok.Position.Column
		e.source = sourceLine(f.Data, e.Line)
	}
	return e
}

func (f *File) locate(path string) *token.Token {
	for p := path; p != "" && p != "$"; p = parentPath(p) {
		yp, err := yaml.PathString(p)
		if err != nil {
			continue
		}
		n, err := yp.FilterFile(f.ast)
		if err != nil || n == nil {
			continue
		}
		return n.GetToken()
	}
	return nil
}

func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i > 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i > 0 {
		return p[:i]
	}
	return ""
}

// fieldName turns "$.routes[2].match.path" into "routes[2].match.path".
func fieldName(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, "$"), ".")
}

// Error is one problem in a YAML file.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int
	Field  string // e.g. "routes[2].match.path"; empty for syntax errors
	Msg    string
	source string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Source returns the offending line of the file with a caret under the
// column, or "" when the position is unknown.
func (e *Error) Source() string {
	if e.source == "" {
		return ""
	}
	col := max(e.Column, 1)
	return fmt.Sprintf("%5d | %s\n      | %s^", e.Line, e.source, strings.Repeat(" ", col-1))
}

// Errors is a list of problems, reported together so that a user fixes a
// file in one pass.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Err returns es as an error, or nil when it is empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

func yamlToken(err error) *token.Token {
	var ye yaml.Error
	if errors.As(err, &ye) {
		return ye.GetToken()
	}
	return nil
}

func syntaxError(name string, data []byte, err error) *Error {
	e := &Error{File: name, Msg: yamlMessage(err)}
	if t := yamlToken(err); t != nil {
		e.Line, e.Column = t.Position.Line, t.Position.Column
		e.source = sourceLine(data, e.Line)
	}
	return e
}

// yamlMessage strips goccy's own position prefix and source excerpt, which
// Error renders in its own format.
func yamlMessage(err error) string {
	var ye yaml.Error
	if errors.As(err, &ye) {
		return ye.GetMessage()
	}
	return err.Error()
}

func sourceLine(data []byte, line int) string {
	if line <= 0 {
		return ""
	}
	lines := strings.Split(string(data), "\n")
	if line > len(lines) {
		return ""
	}
	return strings.TrimRight(lines[line-1], "\r")
}
