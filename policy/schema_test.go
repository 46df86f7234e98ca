package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// The JSON Schemas that editors use to check policy files and test files
// as they are typed. They live in docs/, where users point their editors
// at them.
const (
	policySchema = "../docs/policy.schema.json"
	testsSchema  = "../docs/policy-tests.schema.json"
)

func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	s, err := jsonschema.NewCompiler().Compile(name)
	if err != nil {
		t.Fatalf("compiling %s: %v", name, err)
	}
	return s
}

// yamlInstance reads YAML as the JSON value the schema describes.
func yamlInstance(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestSchemaAcceptsEveryValidFile checks the schemas against every example
// and every valid test policy: an editor must never flag a file the server
// accepts.
func TestSchemaAcceptsEveryValidFile(t *testing.T) {
	schemas := map[bool]*jsonschema.Schema{false: compileSchema(t, policySchema), true: compileSchema(t, testsSchema)}
	var files []string
	for _, glob := range []string{"../examples/*.yaml", "testdata/*.yaml"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	checked := 0
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		isTests := strings.HasSuffix(name, "_test.yaml")
		if isTests {
			_, err = ParseTests(name, data)
		} else {
			if filepath.Base(name) == "config.yaml" {
				continue // the example configuration, not a policy
			}
			_, err = Parse(name, data)
		}
		if err != nil {
			continue // TestSchemaRejects covers invalid files
		}
		checked++
		if err := schemas[isTests].Validate(yamlInstance(t, data)); err != nil {
			t.Errorf("%s is valid, but the schema refuses it:\n%v", name, err)
		}
	}
	if checked < 4 {
		t.Fatalf("checked %d files, want the examples and the valid test policies", checked)
	}
}

func TestSchemaRejects(t *testing.T) {
	s := compileSchema(t, policySchema)
	const route = "version: 1\nroutes:\n  - name: r\n    match: { path: /x }\n"
	tests := []struct {
		name string
		src  string
	}{
		{"missing_version", "routes: []\n"},
		{"other_version", "version: 2\n"},
		{"unknown_top_level_field", "version: 1\nroute: []\n"},
		{"unknown_route_field", route + "    publik: true\n"},
		{"wrong_type", route + "    public: sometimes\n"},
		{"public_with_require", route + "    public: true\n    require: {}\n"},
		{"public_and_deny", route + "    public: true\n    deny: true\n"},
		{"public_with_a_mode", route + "    public: true\n    mode: dry_run\n"},
		{"deny_with_require", route + "    deny: true\n    require: {}\n"},
		{"bad_mode", "version: 1\nmode: shadow\n"},
		{"bad_route_name", "version: 1\nroutes:\n  - name: a/b\n    match: { path: /x }\n"},
		{"path_with_semicolon", "version: 1\nroutes:\n  - name: r\n    match: { path: \"/a;v=1\" }\n"},
		{"issuer_required_twice", route + "    require: { issuers: [https://a, https://a] }\n"},
		{"relative_path", "version: 1\nroutes:\n  - name: r\n    match: { path: x }\n"},
		{"empty_method_list", "version: 1\nroutes:\n  - name: r\n    match: { path: /x, methods: [] }\n"},
		{"host_with_port", "version: 1\nroutes:\n  - name: r\n    match: { path: /x, hosts: [\"a.example.com:443\"] }\n"},
		{"scope_with_space", route + "    require: { scopes: { all_of: [\"a b\"] } }\n"},
		{"issuer_without_scopes", "version: 1\nissuers:\n  - issuer: https://a\n"},
		{"test_token_word", route + "tests:\n  - name: t\n    request: { method: GET, path: /x }\n    token: nobody\n    expect: deny\n"},
		{"test_expect_without_decision_or_status", route + "tests:\n  - name: t\n    request: { method: GET, path: /x }\n    token: none\n    expect: { reason: no_route }\n"},
		{"unknown_binding", route + "    require: { binding: x509 }\n"},
		{"test_token_bound_to_any", route + "tests:\n  - name: t\n    request: { method: GET, path: /x }\n    token: { binding: any }\n    expect: deny\n"},
		{"principal_with_an_inner_wildcard", route + "    require: { principals: [\"spiffe://td/ns/*/sa/a\"] }\n"},
		{"principal_trust_domain_alone", route + "    require: { principals: [\"spiffe://td\"] }\n"},
		{"principal_dns_wildcard", route + "    require: { principals: [\"*.example.com\"] }\n"},
		{"token_false_without_principals", route + "    require: { token: false }\n"},
		{"token_false_with_scopes", route + "    require: { principals: [spiffe://td/a], token: false, scopes: { all_of: [a] } }\n"},
		{"token_false_with_a_binding", route + "    require: { principals: [spiffe://td/a], token: false, binding: mtls }\n"},
		{"empty_context", "version: 1\nroutes:\n  - name: r\n    match: { path: /x, context: {} }\n"},
		{"empty_context_value", "version: 1\nroutes:\n  - name: r\n    match: { path: /x, context: { a: \"\" } }\n"},
		{"test_unknown_claim", route + "tests:\n  - name: t\n    request: { method: GET, path: /x }\n    token: { scope: [a] }\n    expect: deny\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse("t.yaml", []byte(tt.src)); err == nil {
				t.Fatalf("Parse accepts the case; it must be invalid for the server too")
			}
			if err := s.Validate(yamlInstance(t, []byte(tt.src))); err == nil {
				t.Errorf("the schema accepts:\n%s", tt.src)
			}
		})
	}
}

// TestSchemaFollowsTheParser checks that each object of the schema lists
// exactly the fields of the struct the parser decodes it into, so that a
// field added to one is added to the other.
func TestSchemaFollowsTheParser(t *testing.T) {
	data, err := os.ReadFile(policySchema)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	defs := doc["definitions"].(map[string]any)
	def := func(path ...string) map[string]any {
		m := defs
		for _, p := range path {
			m = m[p].(map[string]any)
		}
		return m
	}
	test := def("test", "properties")
	tests := []struct {
		name   string
		object map[string]any // the schema of the object
		goType any
	}{
		{"policy", doc, policyFile{}},
		{"issuer", def("issuer"), issuerFile{}},
		{"route", def("route"), routeFile{}},
		{"match", def("match"), matchFile{}},
		{"require", def("require"), requireFile{}},
		{"scopes", def("require", "properties", "scopes"), scopesFile{}},
		{"test", def("test"), testFile{}},
		{"request", test["request"].(map[string]any), requestFile{}},
		{"token", test["token"].(map[string]any)["oneOf"].([]any)[1].(map[string]any), claimsFile{}},
		{"expect", test["expect"].(map[string]any)["oneOf"].([]any)[1].(map[string]any), expectFields{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inSchema []string
			for k := range tt.object["properties"].(map[string]any) {
				inSchema = append(inSchema, k)
			}
			var inGo []string
			typ := reflect.TypeOf(tt.goType)
			for i := range typ.NumField() {
				inGo = append(inGo, typ.Field(i).Tag.Get("yaml"))
			}
			slices.Sort(inSchema)
			slices.Sort(inGo)
			if !slices.Equal(inSchema, inGo) {
				t.Errorf("schema properties %q, Go fields %q", inSchema, inGo)
			}
			if tt.object["additionalProperties"] != false {
				t.Errorf("the schema allows unknown fields; the parser does not")
			}
		})
	}
}
