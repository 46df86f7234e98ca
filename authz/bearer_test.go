package authz

import (
	"strings"
	"testing"
)

func TestBearer(t *testing.T) {
	long := strings.Repeat("a", DefaultMaxTokenSize+1)
	tests := []struct {
		name   string
		header string
		token  string
		reason Reason
	}{
		{"missing header is token_missing", "", "", ReasonTokenMissing},
		{"scheme is case-insensitive", "bEaReR abc.def.ghi", "abc.def.ghi", ""},
		{"extra spaces after the scheme are tolerated", "Bearer   abc", "abc", ""},
		{"b64token padding is allowed", "Bearer abc==", "abc==", ""},
		{"basic scheme is malformed", "Basic dXNlcjpwYXNz", "", ReasonTokenMalformed},
		{"scheme without token is malformed", "Bearer ", "", ReasonTokenMalformed},
		{"scheme alone is malformed", "Bearer", "", ReasonTokenMalformed},
		{"two tokens are malformed", "Bearer abc def", "", ReasonTokenMalformed},
		{"headers joined by Envoy are malformed", "Bearer abc,Bearer def", "", ReasonTokenMalformed},
		{"trailing space is malformed", "Bearer abc ", "", ReasonTokenMalformed},
		{"padding in the middle is malformed", "Bearer ab=c", "", ReasonTokenMalformed},
		{"control characters are malformed", "Bearer ab\x00c", "", ReasonTokenMalformed},
		{"non-ASCII is malformed", "Bearer abcé", "", ReasonTokenMalformed},
		{"oversized token is refused before parsing", "Bearer " + long, "", ReasonTokenTooLarge},
		{"token at the cap is accepted", "Bearer " + long[1:], long[1:], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, reason, desc := bearer(tt.header, DefaultMaxTokenSize)
			if tok != tt.token || reason != tt.reason {
				t.Fatalf("bearer(%.40q) = %.40q, %q; want %.40q, %q", tt.header, tok, reason, tt.token, tt.reason)
			}
			if reason != "" && desc == "" {
				t.Errorf("a refusal must carry a description")
			}
		})
	}
}

func FuzzBearer(f *testing.F) {
	for _, s := range []string{"", "Bearer abc", "bearer a.b.c", "Bearer a b", "Bearer ==", "Basic x", "Bearer \xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, reason, desc := bearer(h, 64)
		if reason == "" {
			if tok == "" || len(tok) > 64 || !isB64Token(tok) {
				t.Fatalf("accepted %q from %q", tok, h)
			}
			if !strings.HasSuffix(h, tok) {
				t.Fatalf("token %q is not the end of %q", tok, h)
			}
			return
		}
		if tok != "" || desc == "" {
			t.Fatalf("refusal %q returned token %q, description %q", reason, tok, desc)
		}
		if strings.Contains(desc, h) && h != "" && len(h) > 8 {
			t.Fatalf("description echoes the header: %q", desc)
		}
	})
}
