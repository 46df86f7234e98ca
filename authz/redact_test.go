package authz_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/scopegate/scopegate/authz"
)

const (
	sampleJWS = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdmMifQ.c2lnbmF0dXJl"
	sampleJWE = "eyJhbGciOiJSU0EtT0FFUCJ9.a2V5.aXY.Y2lwaGVy.dGFn"
)

func TestRedactReplacesEveryToken(t *testing.T) {
	tests := []struct {
		name, s, bearer, want string
	}{
		{"no token", "/orders/1", "", "/orders/1"},
		{"JWS in a path", "/callback/" + sampleJWS + "/x", "", "/callback/[token]/x"},
		{"JWE", "/k/" + sampleJWE, "", "/k/[token]"},
		{"JWS after other base64url", "/x" + sampleJWS, "", "/x[token]"},
		{"two", sampleJWS + ";" + sampleJWS, "", "[token];[token]"},
		{"eyJ without a dot is no token", "/keys/eyJhbGciOiJSUzI1NiJ9-x", "", "/keys/eyJhbGciOiJSUzI1NiJ9-x"},
		{"eyJ without a dot, then a JWS", "/eyJabc/" + sampleJWS, "", "/eyJabc/[token]"},
		{"the bearer", "/t/ory_at_0123456789abcdef/x?ory_at_0123456789abcdef", "ory_at_0123456789abcdef", "/t/[token]/x?[token]"},
		{"a bearer inside a run without a dot", "/eyJ-opaque-token-x", "opaque-token", "/eyJ-[token]-x"},
		{"a short bearer is not looked for", "/orders/abc", "abc", "/orders/abc"},
		{"bearer and JWS at one byte: the longer", "/" + sampleJWS + "~more", sampleJWS + "~more", "/[token]"},
		{"a JWS in a bearer-shaped run", "/" + sampleJWS, "eyJhbGci", "/[token]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := authz.Redact(tt.s, tt.bearer); got != tt.want {
				t.Errorf("Redact(%q, %q) = %q, want %q", tt.s, tt.bearer, got, tt.want)
			}
			if got := redactNaively(tt.s, tt.bearer); got != tt.want {
				t.Errorf("the reference redacts %q to %q, want %q", tt.s, got, tt.want)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc":            "abc",
		"bEaReR   abc":          "abc",
		"Bearer a b":            "a",
		"Bearer\tabc":           "abc",
		"Bearer abc,Bearer xyz": "abc",
		"Bearerabc":             "",
		"Bearer ":               "",
		"Basic dXNlcjp":         "",
		"DPoP abc":              "abc",
		"dpop\tabc,DPoP xyz":    "abc",
		"DPoPabc":               "",
		"DPoP ":                 "",
		"":                      "",
	} {
		if got := authz.BearerToken(h); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", h, got, want)
		}
	}
}

func TestRedactAllocatesOnlyWhenItRedacts(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { authz.Redact("/orders/eyJ1/x.y", sampleJWS) }); n != 0 {
		t.Errorf("Redact of a string without a token: %v allocations, want 0", n)
	}
}

// jwsRun is what a JWS or JWE looks like to Redact, anchored.
var jwsRun = regexp.MustCompile(`^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*`)

// redactNaively is Redact as it is specified, tried at every byte: the
// reference of FuzzRedact.
func redactNaively(s, bearer string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		end := -1
		if len(bearer) >= 8 && strings.HasPrefix(s[i:], bearer) {
			end = i + len(bearer)
		}
		if m := jwsRun.FindString(s[i:]); m != "" && i+len(m) > end {
			end = i + len(m)
		}
		if end < 0 {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(authz.RedactedToken)
		i = end
	}
	return b.String()
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"", "/orders/1", "/callback/" + sampleJWS, sampleJWS + sampleJWS, "eyJeyJ.x", "/eyJ-ab.", "aaaaaaaaaaaa"} {
		f.Add(s, "")
		f.Add(s, "aaaaaaaa")
		f.Add(s, sampleJWS)
	}
	f.Fuzz(func(t *testing.T, s, bearer string) {
		got, want := authz.Redact(s, bearer), redactNaively(s, bearer)
		if got != want {
			t.Fatalf("Redact(%q, %q) = %q, want %q", s, bearer, got, want)
		}
		f := authz.FindTokens(s, bearer)
		last := 0
		for start, end := f.Next(); start >= 0; start, end = f.Next() {
			if start < last || end <= start || end > len(s) {
				t.Fatalf("FindTokens(%q, %q): token [%d, %d) after one ending at %d", s, bearer, start, end, last)
			}
			last = end
		}
	})
}
