package policy

import (
	"errors"
	"strings"
	"testing"
)

// TestRedteamParseAuthorityBoundsTheHostName pins the bound of a host name
// at the 253 bytes of the longest DNS name, its trailing dot and port
// aside: a longer host would be matched against the routes without hosts
// only, skipping a wildcard route that covers it.
func TestRedteamParseAuthorityBoundsTheHostName(t *testing.T) {
	longest := strings.Repeat("a.", 120) + "a.example.com" // 253 bytes
	for _, a := range []string{longest, longest + ".", longest + ":443", strings.ToUpper(longest) + ".:8443"} {
		if _, _, err := ParseAuthority(a); err != nil {
			t.Errorf("ParseAuthority(%d bytes %q...): %v, want the longest DNS name accepted", len(a), a[:16], err)
		}
	}
	for _, a := range []string{"a" + longest, "a" + longest + ".", "a" + longest + ":443", strings.Repeat("a.", 30<<10)} {
		if _, _, err := ParseAuthority(a); !errors.Is(err, ErrBadAuthority) || !strings.Contains(err.Error(), "longer than 253") {
			t.Errorf("ParseAuthority(%d bytes %q...) = %v, want a host name longer than 253 bytes refused", len(a), a[:16], err)
		}
	}
}
