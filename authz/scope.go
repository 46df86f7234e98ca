package authz

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/scopegate/scopegate/policy"
)

// parseScopes returns the scopes in scope, the space-delimited value of
// the claim named claim, as RFC 6749 section 3.3 has it: scope tokens
// separated by SP. Leading, trailing and repeated SP are ignored, as
// providers and resource servers commonly do.
//
// Any other character outside the scope-token syntax refuses the token
// rather than splitting it or being kept in a scope: split on other white
// space (U+00A0, U+3000, TAB...), "tenant:acme\u00a0orders:admin" would
// grant orders:admin, which the provider never granted; kept, it would
// reach upstreams that read x-scopegate-scopes their own way. So every
// scope scopegate holds is one an upstream splitting on SP reads back.
func parseScopes(claim, scope string) ([]string, error) {
	n := 0
	for i := 0; i < len(scope); i++ {
		if scope[i] != ' ' && (i == 0 || scope[i-1] == ' ') {
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}
	scopes := make([]string, 0, n)
	for s := range strings.SplitSeq(scope, " ") {
		if s == "" {
			continue
		}
		if err := checkScope(claim, s); err != nil {
			return nil, err
		}
		scopes = append(scopes, s)
	}
	return scopes, nil
}

// checkScope refuses s, one scope of the claim named claim, unless it is
// a scope token: an element of an scp array, or a part of a scope string
// between spaces.
func checkScope(claim, s string) error {
	if policy.IsScopeToken(s) {
		return nil
	}
	what := "an empty scope"
	if i := strings.IndexFunc(s, func(r rune) bool { return !policy.IsScopeToken(string(r)) }); i >= 0 {
		// The character, not the scope: the description reaches the caller
		// and the audit log, which should not quote claims at length.
		switch r, size := utf8.DecodeRuneInString(s[i:]); {
		case r == utf8.RuneError && size == 1:
			what = "a byte that is not UTF-8"
		case r == ' ':
			what = "a space inside a scope"
		default:
			what = fmt.Sprintf("%U", r)
		}
	}
	return &TokenError{Reason: ReasonTokenMalformed,
		Description: "the token's " + claim + " claim holds " + what + ": scopes are printable ASCII separated by spaces (RFC 6749 section 3.3)"}
}
