package yamlfile

import (
	"strings"
	"testing"
	"time"
)

type doc struct {
	A struct {
		B int           `yaml:"b"`
		D time.Duration `yaml:"d"`
	} `yaml:"a"`
	Routes []struct {
		Name string `yaml:"name"`
	} `yaml:"routes"`
}

func TestDecodeErrorsNameFileLineAndColumn(t *testing.T) {
	tests := []struct {
		name, in, want string
		line           int
	}{
		{"wrong type names the field and both kinds", "a:\n  b: x\n", `p.yaml:2:3: a.b: got a string ("x"), want a number`, 2},
		{"unknown field", "a:\n  c: 1\n", `p.yaml:2:3: a.c: unknown field "c"`, 2},
		{"duplicate key", "a:\n  b: 1\n  b: 2\n", `p.yaml:3:3: a.b: mapping key "b" already defined at line 2`, 3},
		{"bad duration", "a:\n  d: 3x\n", `p.yaml:2:3: a.d: got a string ("3x"), want a duration such as 30s`, 2},
		{"mapping for a list names the outer field", "routes:\n  - name: {x: 1}\n", `p.yaml:2:5: routes[0].name: got a mapping, want a string`, 2},
		{"syntax error", "a: [\n", "p.yaml:1: ", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			_, err := Decode("p.yaml", []byte(tt.in), &d)
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("err = %T %v, want *Error", err, err)
			}
			if !strings.HasPrefix(e.Error(), tt.want) || e.Line != tt.line {
				t.Errorf("err = %q (line %d), want prefix %q, line %d", e.Error(), e.Line, tt.want, tt.line)
			}
			if !strings.Contains(e.Source(), strings.Split(tt.in, "\n")[tt.line-1]) {
				t.Errorf("Source() = %q, want the offending line", e.Source())
			}
		})
	}
}

func TestErrorfLocatesFieldOrNearestParent(t *testing.T) {
	in := "routes:\n  - name: a\n  - name: b\n"
	var d doc
	f, err := Decode("p.yaml", []byte(in), &d)
	if err != nil {
		t.Fatal(err)
	}
	if e := f.Errorf("$.routes[1].name", "duplicate %q", "b"); e.Error() != `p.yaml:3:11: routes[1].name: duplicate "b"` {
		t.Errorf("present field: %q", e.Error())
	}
	if e := f.Errorf("$.routes[1].match.path", "required"); e.Line != 3 || e.Field != "routes[1].match.path" {
		t.Errorf("absent field: %q (line %d)", e.Error(), e.Line)
	}
}

func TestDecodeReportsEveryTypeErrorAtOnce(t *testing.T) {
	var d doc
	_, err := Decode("p.yaml", []byte("a:\n  b: x\n  c: 1\n"), &d)
	es, ok := err.(Errors)
	if !ok || len(es) != 2 || es[0].Line != 2 || es[1].Line != 3 {
		t.Fatalf("err = %v, want two errors on lines 2 and 3", err)
	}
}

func TestFlowListsKeepColonsInScalars(t *testing.T) {
	// goccy/go-yaml reads [orders:read] inside { } as a mapping; the
	// policy's own examples are written that way.
	var v struct {
		S struct {
			AllOf []string `yaml:"all_of"`
		} `yaml:"s"`
	}
	if _, err := Decode("p.yaml", []byte("s: { all_of: [orders:read, x:y] }\n"), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.S.AllOf) != 2 || v.S.AllOf[0] != "orders:read" {
		t.Fatalf("all_of = %q", v.S.AllOf)
	}
}

func TestErrorsJoinsEveryProblem(t *testing.T) {
	var es Errors
	if es.Err() != nil {
		t.Fatal("empty Errors must be a nil error")
	}
	es = append(es, &Error{File: "a", Line: 1, Column: 2, Msg: "x"}, &Error{File: "a", Msg: "y"})
	if got := es.Err().Error(); got != "a:1:2: x\na: y" {
		t.Errorf("got %q", got)
	}
}

func TestDecodeReportsEveryProblemOfAFile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // in order
	}{
		{"a duplicate key does not hide its mapping", "a:\n  b: 1\n  b: 2\n  c: 1\nroutes: x\n", []string{
			`p.yaml:3:3: a.b: mapping key "b" already defined at line 2`,
			`p.yaml:4:3: a.c: unknown field "c"`,
			`p.yaml:5:1: routes: got a string ("x"), want a list`,
		}},
		{"a key repeated twice is reported twice, naming the first", "a: {b: 1}\na: {b: x}\na: {c: 1}\n", []string{
			`p.yaml:2:1: a: mapping key "a" already defined at line 1`,
			`p.yaml:3:1: a: mapping key "a" already defined at line 1`,
		}},
		{"a quoted duplicate key is reported once", "a:\n  \"b\": 1\n  \"b\": 2\n", []string{
			`p.yaml:3:3: a.b: mapping key "b" already defined at line 2`,
		}},
		{"a key after a multi-byte character keeps its column", "routes:\n  - name: é\n    name: ü\n", []string{
			`p.yaml:3:5: routes[0].name: mapping key "name" already defined at line 2`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			f, err := Decode("p.yaml", []byte(tt.in), &d)
			if f == nil {
				t.Fatalf("no File for well-formed YAML: %v", err)
			}
			var got []string
			for _, e := range problemsOf(err) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDecodeKeepsTheFirstOfDuplicateKeys(t *testing.T) {
	var d doc
	if _, err := Decode("p.yaml", []byte("a:\n  b: 1\n  b: 2\nroutes: [{name: x}]\n"), &d); err == nil {
		t.Fatal("no error for a duplicate key")
	}
	if d.A.B != 1 || len(d.Routes) != 1 || d.Routes[0].Name != "x" {
		t.Errorf("decoded %+v, want a.b 1 and the routes", d)
	}
}

func TestErrLeavesOutWhatDecodingReportedAndSortsByLine(t *testing.T) {
	var d doc
	f, _ := Decode("p.yaml", []byte("routes: []\na:\n  b: x\n  b: 2\n"), &d)
	validation := Errors{
		f.Errorf("$.a.d", "must be positive"),   // at a, line 3; kept: a.d decoded
		f.Errorf("$.a.b", "must be positive"),   // a.b did not decode
		f.Errorf("$.routes", "at least one"),    // line 1
		f.Errorf("$.routes[0].name", "missing"), // line 1, kept
	}
	resolution := Errors{
		f.Errorf("$.routes", "cannot be read"), // already reported by validation
		f.Errorf("$.a.d", "unreadable"),        // likewise
	}
	want := []string{
		"p.yaml:1:9: routes: at least one",
		"p.yaml:1:9: routes[0].name: missing",
		`p.yaml:3:3: a.b: got a string ("x"), want a number`,
		"p.yaml:3:3: a.d: must be positive",
		`p.yaml:4:3: a.b: mapping key "b" already defined at line 3`,
	}
	var got []string
	for _, e := range problemsOf(f.Err(validation, resolution)) {
		got = append(got, e.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !f.Failed("$.a.b") || !f.Failed("$.a.b.c") || f.Failed("$.a.d") || f.Failed("$.routes") {
		t.Error("Failed: want a.b and inside it only")
	}
}

func problemsOf(err error) Errors {
	switch e := err.(type) {
	case nil:
		return nil
	case *Error:
		return Errors{e}
	case Errors:
		return e
	}
	return Errors{{Msg: "not a yamlfile error: " + err.Error()}}
}
