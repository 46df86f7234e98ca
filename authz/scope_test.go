package authz

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// scopeGrammar is RFC 6749 section 3.3's scope, scope-token *( SP
// scope-token ), with the SP around and between the tokens that
// parseScopes allows repeated: the reference it is held to.
var scopeGrammar = regexp.MustCompile(`^ *(?:[\x21\x23-\x5B\x5D-\x7E]+ *)*$`)

// sameScopes fails t unless parseScopes reads scope as the grammar does:
// accepting exactly what it matches, as its SP-separated tokens.
func sameScopes(t testing.TB, scope string) {
	t.Helper()
	got, err := parseScopes("scope", scope)
	if !scopeGrammar.MatchString(scope) {
		var te *TokenError
		if !errors.As(err, &te) || te.Reason != ReasonTokenMalformed {
			t.Fatalf("parseScopes(%q) = %q, %v; want a refusal with reason %s", scope, got, err, ReasonTokenMalformed)
		}
		if len(scope) > 8 && strings.Contains(te.Description, scope) {
			t.Fatalf("the description %q quotes the scope", te.Description)
		}
		return
	}
	want := slices.DeleteFunc(strings.Split(scope, " "), func(s string) bool { return s == "" })
	if err != nil || !slices.Equal(got, want) || (len(want) == 0) != (got == nil) {
		t.Fatalf("parseScopes(%q) = %q, %v; want %q", scope, got, err, want)
	}
}

func TestParseScopesAsTheGrammar(t *testing.T) {
	for _, scope := range []string{
		"", " ", "a", "a b", " a  b ", "orders:read orders:write", "!#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~",
		"a\u00a0b", "a\u3000b", "a\u2028b", "a\u0085b", "a\tb", "a\vb", "a\nb", "a\rb", "a\x00b", "a\x7fb",
		`a"b`, `a\b`, "\xff", "a \xc2", "\u00e4",
	} {
		sameScopes(t, scope)
	}
}

func FuzzParseScopes(f *testing.F) {
	for _, s := range []string{"a b", " a  b ", "tenant:acme\u00a0orders:admin", "a\tb", `a"b`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, scope string) { sameScopes(t, scope) })
}
