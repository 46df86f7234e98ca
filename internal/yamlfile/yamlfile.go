// Package yamlfile decodes the YAML files people write by hand (the policy
// and the config) strictly, and reports every problem with the file name,
// line, column and the offending source line, so that an error message can
// be pasted into a pull-request review as it is.
package yamlfile

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is a parsed YAML document that can locate its own fields, so that
// validation done after decoding can still point at a line.
type File struct {
	Name string
	Data []byte
	root *yaml.Node
	// decoding holds the problems of decoding, which Err reports with
	// those of validation; failed holds the fields that did not decode,
	// a duplicate key not being one: the first of its values did.
	decoding Errors
	failed   []string
}

// Decode parses data strictly into v: unknown fields, wrong types and
// duplicate keys are errors, all reported at once. Only a file that is not
// well-formed YAML stops at its first error, and then the File is nil.
// Otherwise the File is returned even with an error, and v holds every
// part of the file that fit it (the first of duplicate keys), so that the
// caller can validate what was decoded and report every problem of the file
// in one pass with Err.
func Decode(name string, data []byte, v any) (*File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, decodeErrors(name, data, nil, err).err()
	}
	f := &File{Name: name, Data: data, root: &root}
	// yaml refuses a mapping holding a duplicate key whole, which would
	// hide every problem inside it: the later keys are reported here and
	// renamed in what is decoded, so that the rest of the mapping is.
	dups, renamed := duplicates(name, data, &root)
	dec := yaml.NewDecoder(bytes.NewReader(renamed))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		for _, e := range decodeErrors(name, data, &root, err) {
			if strings.Contains(e.Msg, renamedKey) {
				continue
			}
			if strings.Contains(e.Msg, "already defined") {
				// A key that could not be renamed: its whole mapping did
				// not decode.
				f.failed = append(f.failed, parent(e.Field))
				if slices.ContainsFunc(dups, func(d *Error) bool { return d.Line == e.Line }) {
					continue
				}
			} else {
				// An error on no field is about the whole document.
				f.failed = append(f.failed, cmp.Or(e.Field, "$"))
			}
			f.decoding = append(f.decoding, e)
		}
	}
	f.decoding = append(f.decoding, dups...)
	f.decoding.sort()
	return f, f.decoding.err()
}

// Err returns every problem of the file, sorted by line, or nil: those of
// decoding, then those of each layer in turn, the problems its caller found
// checking what was decoded, such as validating it and then reading the
// files it names. An error about a field that an earlier layer, or
// decoding, already reported, or about a field inside it, is left out: it
// would only restate that error.
func (f *File) Err(layers ...Errors) error {
	all := slices.Clone(f.decoding)
	reported := slices.Clone(f.failed)
	for _, layer := range layers {
		n := len(reported)
		for _, e := range layer {
			if !strings.Contains(e.Error(), renamedKey) && !slices.ContainsFunc(reported[:n], func(field string) bool { return within(e.Field, field) }) {
				all = append(all, e)
				reported = append(reported, e.Field)
			}
		}
	}
	all.sort()
	return all.Err()
}

// Failed reports whether the field at path, a YAMLPath such as
// "$.routes[2].match", a field inside it or the field holding it did not
// decode: what it holds is not what the file says.
func (f *File) Failed(path string) bool {
	field := strings.TrimPrefix(strings.TrimPrefix(path, "$"), ".")
	return slices.ContainsFunc(f.failed, func(failed string) bool { return within(failed, field) || within(field, failed) })
}

// parent returns the field holding field: "a" of "a.b", and "$", the
// whole document, of "a".
func parent(field string) string {
	i := strings.LastIndexByte(field, '.')
	if i < 0 {
		return "$"
	}
	return field[:i]
}

// within reports whether field is parent or a field inside it; every
// field is inside "$".
func within(field, parent string) bool {
	if parent == "$" {
		return true
	}
	if parent == "" || !strings.HasPrefix(field, parent) {
		return false
	}
	rest := field[len(parent):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// renamedKey begins the names that duplicates gives the later keys.
const renamedKey = "scopegate-duplicate-key-"

// duplicates returns an Error for every key of a mapping that repeats an
// earlier key of it, as yaml compares them, and data with those keys
// renamed where they can be: a plain key is renamed in place, so that no
// line moves. Aliases are not followed: the mapping they name is checked
// where it is written.
func duplicates(name string, data []byte, root *yaml.Node) (Errors, []byte) {
	var errs Errors
	lines := bytes.SplitAfter(data, []byte("\n"))
	renamed := false
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, path+"["+strconv.Itoa(i)+"]")
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				for j := 0; j < i; j += 2 {
					if first := n.Content[j]; first.Kind == k.Kind && first.Value == k.Value {
						errs = append(errs, &Error{File: name, Line: k.Line, Column: k.Column, Field: p,
							Msg: fmt.Sprintf("mapping key %q already defined at line %d", k.Value, first.Line), source: sourceLine(data, k.Line)})
						if rename(lines, k, renamedKey+strconv.Itoa(len(errs))) {
							renamed = true
						}
						break
					}
				}
				walk(n.Content[i+1], p)
			}
		}
	}
	walk(root, "")
	if !renamed {
		return errs, data
	}
	return errs, bytes.Join(lines, nil)
}

// rename replaces the plain scalar key k in lines with to, and reports
// whether it could.
func rename(lines [][]byte, k *yaml.Node, to string) bool {
	if k.Kind != yaml.ScalarNode || k.Style != 0 || k.Tag != "!!str" || k.Line < 1 || k.Line > len(lines) || k.Column < 1 {
		return false
	}
	line := []rune(string(lines[k.Line-1]))
	at := k.Column - 1
	if at+len([]rune(k.Value)) > len(line) || string(line[at:at+len([]rune(k.Value))]) != k.Value {
		return false
	}
	lines[k.Line-1] = []byte(string(line[:at]) + to + string(line[at+len([]rune(k.Value)):]))
	return true
}

// Errorf returns an Error for the field at path, a YAMLPath such as
// "$.routes[2].match.path". When the field is absent from the file the
// error points at its nearest parent that is present.
func (f *File) Errorf(path, format string, args ...any) *Error {
	e := &Error{File: f.Name, Field: strings.TrimPrefix(strings.TrimPrefix(path, "$"), "."), Msg: fmt.Sprintf(format, args...)}
	if n := f.locate(path); n != nil {
		e.Line, e.Column = n.Line, n.Column
		e.source = sourceLine(f.Data, e.Line)
	}
	return e
}

// Line returns the line of the field at path, or of its nearest parent
// present in the file; 0 when none is.
func (f *File) Line(path string) int {
	if n := f.locate(path); n != nil {
		return n.Line
	}
	return 0
}

// locate walks path through the document and returns the deepest node it
// reaches.
func (f *File) locate(path string) *yaml.Node {
	n := f.root
	if n == nil || n.Kind != yaml.DocumentNode || len(n.Content) == 0 {
		return nil
	}
	n = n.Content[0]
	for _, step := range steps(path) {
		next := child(n, step)
		if next == nil {
			break
		}
		n = next
	}
	return n
}

// steps splits "$.routes[2].match" into "routes", "[2]", "match".
func steps(path string) []string {
	var out []string
	for _, part := range strings.Split(strings.TrimPrefix(path, "$"), ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			switch {
			case i < 0:
				out, part = append(out, part), ""
			case i > 0:
				out, part = append(out, part[:i]), part[i:]
			default:
				j := strings.IndexByte(part, ']')
				if j < 0 {
					return append(out, part)
				}
				out, part = append(out, part[:j+1]), part[j+1:]
			}
		}
	}
	return out
}

func child(n *yaml.Node, step string) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if strings.HasPrefix(step, "[") {
		i, err := strconv.Atoi(strings.Trim(step, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == step {
			return n.Content[i+1]
		}
	}
	return nil
}

// Error is one problem in a YAML file.
type Error struct {
	File   string
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Field  string // e.g. "routes[2].match.path"; empty when unknown
	Msg    string
	source string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Source returns the offending line of the file, with a caret under the
// column when it is known, or "" when the line is unknown.
func (e *Error) Source() string {
	if e.source == "" {
		return ""
	}
	col := e.Column
	if col <= 0 {
		col = len(e.source) - len(strings.TrimLeft(e.source, " \t")) + 1
	}
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

// sort orders es by line and column; an error without a line goes last.
func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		if (a.Line == 0) != (b.Line == 0) {
			return cmp.Compare(b.Line, a.Line)
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}

// err returns es as an error: nil when it is empty, its only Error when it
// has one.
func (es Errors) err() error {
	if len(es) == 1 {
		return es[0]
	}
	return es.Err()
}

// lineMsg matches the "line N: message" form of the YAML parser's errors.
var lineMsg = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// decodeErrors turns the YAML parser's errors, which carry only a line in
// their text, into Errors that name the field on that line when root, the
// parsed document, is known.
func decodeErrors(name string, data []byte, root *yaml.Node, err error) Errors {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var es Errors
	for _, msg := range msgs {
		e := &Error{File: name, Msg: strings.TrimPrefix(msg, "yaml: ")}
		if m := lineMsg.FindStringSubmatch(msg); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = plain(m[2])
			e.source = sourceLine(data, e.Line)
			if root != nil {
				var key string
				if m := unknownField.FindStringSubmatch(m[2]); m != nil {
					key = m[1]
				}
				e.Field, e.Column = fieldAt(root, e.Line, key, "")
			}
		}
		es = append(es, e)
	}
	return es
}

// fieldAt returns the path and column of the outermost field whose key is
// on line (the first key of a list item rather than the item), or of the
// key named key when it is not "", or "" when there is none.
func fieldAt(n *yaml.Node, line int, key, path string) (string, int) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			return fieldAt(n.Content[0], line, key, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if k.Line == line && (key == "" || k.Value == key) {
				return p, k.Column
			}
			if f, col := fieldAt(v, line, key, p); f != "" {
				return f, col
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			if f, col := fieldAt(item, line, key, p); f != "" {
				return f, col
			}
			if item.Line == line && key == "" {
				return p, item.Column
			}
		}
	}
	return "", 0
}

var (
	unknownField = regexp.MustCompile(`^field (\S+) not found in type .*$`)
	wrongType    = regexp.MustCompile("^cannot unmarshal !!(\\w+) (?:`(.*)` )?into (.*)$")
)

// plain rewrites the YAML parser's messages, which speak of Go types, in
// the words of the file's author.
func plain(msg string) string {
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("unknown field %q", m[1])
	}
	if m := wrongType.FindStringSubmatch(msg); m != nil {
		kind := map[string]string{"str": "a string", "int": "a number", "float": "a number", "bool": "a boolean", "map": "a mapping", "seq": "a list", "null": "null"}[m[1]]
		if kind == "" {
			kind = "a " + m[1]
		}
		want := m[3]
		switch {
		case strings.HasPrefix(want, "[]"):
			want = "a list"
		case strings.HasPrefix(want, "map["), strings.HasPrefix(want, "struct"), strings.Contains(want, "."):
			want = map[string]string{"time.Duration": "a duration such as 30s", "*time.Duration": "a duration such as 30s"}[want]
			if want == "" {
				want = "a mapping"
			}
		case want == "string":
			want = "a string"
		case want == "bool":
			want = "true or false"
		default:
			want = "a number"
		}
		if m[2] != "" {
			return fmt.Sprintf("got %s (%q), want %s", kind, m[2], want)
		}
		return fmt.Sprintf("got %s, want %s", kind, want)
	}
	return msg
}

func sourceLine(data []byte, line int) string {
	if line <= 0 {
		return ""
	}
	for ; line > 1; line-- {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return ""
		}
		data = data[i+1:]
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	}
	return strings.TrimRight(string(data), "\r")
}
