package policy

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

var normalizeTests = []struct {
	name string
	in   string
	want string // "" when the path must be rejected
	err  string // part of the rejection's message
}{
	{"canonical_path_is_kept", "/orders/1/items", "/orders/1/items", ""},
	{"root", "/", "/", ""},
	{"query_is_dropped", "/orders?id=1&x=%zz", "/orders", ""},
	{"raw_hash_is_rejected", "/orders#top", "", "raw '#', which no request-target carries at byte 7"},
	{"bypass_hash_before_dot_dot", "/public#/../admin/x", "", "raw '#'"},
	{"raw_hash_in_the_query_is_rejected", "/orders?a=1#/../admin", "", "raw '#', which no request-target carries at byte 11"},
	{"encoded_hash_is_a_path_byte", "/a%23b/%23", "/a%23b/%23", ""},
	{"encoded_question_mark_is_part_of_the_path", "/a%3fb", "/a%3Fb", ""},
	{"empty_path_is_rejected", "", "", "empty path"},
	{"query_alone_is_rejected", "?a=1", "", "empty path"},
	{"relative_path_is_rejected", "orders/1", "", "does not start with /"},
	{"asterisk_form_is_rejected", "*", "", "does not start with /"},
	{"absolute_form_is_rejected", "http://example.com/admin", "", "does not start with /"},

	{"unreserved_escape_is_decoded", "/%61dmin", "/admin", ""},
	{"every_unreserved_escape_is_decoded", "/%41%5a%30%39%2D%2e%5F%7e", "/AZ09-._~", ""},
	{"escape_of_a_character_not_allowed_raw_gets_upper_case_hex", "/a%3fb%23%c3%a9%5b", "/a%3Fb%23%C3%A9%5B", ""},
	{"encoded_space_stays_encoded", "/a%20b", "/a%20b", ""},
	{"encoded_percent_stays_encoded", "/%25%32%65", "/%252e", ""},
	{"raw_non_ascii_is_encoded", "/café", "/caf%C3%A9", ""},
	{"raw_space_and_braces_are_encoded", "/a b/{id}", "/a%20b/%7Bid%7D", ""},
	{"sub_delims_colon_and_at_stay_raw", "/a=b,c!$&'()*+:@", "/a=b,c!$&'()*+:@", ""},
	{"every_encoded_sub_delim_colon_and_at_is_decoded", "/%21%24%26%27%28%29%2A%2B%2C%3D%3A%40", "/!$&'()*+,=:@", ""},
	{"encoded_colon_is_the_raw_colon", "/v1/jobs/nightly%3arun", "/v1/jobs/nightly:run", ""},
	{"encoded_at_sign_is_the_raw_at_sign", "/users/me%40admin", "/users/me@admin", ""},
	{"semicolon_in_the_query_is_dropped_with_it", "/a?x=1;y=2", "/a", ""},

	{"repeated_slashes_are_merged", "/a//b///c", "/a/b/c", ""},
	{"leading_double_slash_is_merged", "//admin", "/admin", ""},
	{"trailing_slash_is_kept", "/orders/", "/orders/", ""},
	{"repeated_trailing_slashes_become_one", "/orders//", "/orders/", ""},
	{"dot_segment_is_removed", "/a/./b", "/a/b", ""},
	{"dot_dot_segment_removes_the_previous", "/a/b/../c", "/a/c", ""},
	{"dot_segments_cannot_climb_above_root", "/../x", "/x", ""},
	{"many_dot_dot_segments_stop_at_root", "/a/../../../..", "/", ""},
	{"final_dot_dot_leaves_a_trailing_slash", "/a/b/..", "/a/", ""},
	{"final_dot_leaves_a_trailing_slash", "/a/.", "/a/", ""},
	{"dots_inside_a_segment_are_literal", "/a/..b/.c/...", "/a/..b/.c/...", ""},
	{"dot_segment_after_merged_slashes", "/a//..//b", "/b", ""},

	{"bypass_dot_dot_from_public_to_admin", "/public/../admin", "/admin", ""},
	{"bypass_encoded_dot_dot", "/public/%2e%2e/admin", "/admin", ""},
	{"bypass_mixed_encoded_dot_dot", "/public/.%2E/admin", "/admin", ""},
	{"bypass_encoded_dot", "/%2e/admin", "/admin", ""},
	{"bypass_encoded_letter", "/%61%64%6d%69%6e/x", "/admin/x", ""},
	{"bypass_encoded_slash", "/admin%2Fx", "", `encoded slash "%2F" at byte 6`},
	{"bypass_lower_case_encoded_slash", "/public/..%2fadmin", "", `encoded slash "%2f"`},
	{"bypass_backslash", "/a\\b", "", "backslash at byte 2"},
	{"bypass_backslash_dot_dot", "/public\\..\\admin", "", "backslash"},
	{"bypass_encoded_backslash", "/a%5Cb", "", "encoded backslash %5C"},
	{"bypass_lower_case_encoded_backslash", "/a%5cb", "", "encoded backslash %5C"},
	{"bypass_encoded_nul", "/admin%00.json", "", "encoded NUL %00 at byte 6"},
	{"raw_nul_is_rejected", "/admin\x00", "", "NUL at byte 6"},
	{"raw_newline_is_rejected", "/a\nb", "", "control character 0x0A at byte 2"},
	{"raw_delete_is_rejected", "/a\x7f", "", "control character 0x7F"},
	{"encoded_control_character_is_rejected", "/a%0d%0aSet-Cookie:x", "", "encoded control character 0x0D %0D"},
	{"invalid_escape_is_rejected", "/%zz", "", `invalid escape "%zz" at byte 1`},
	{"half_hex_escape_is_rejected", "/a%4g", "", `invalid escape "%4g"`},
	{"truncated_escape_is_rejected", "/a%4", "", `truncated escape "%4"`},
	{"escape_cut_by_a_slash_is_rejected", "/a%4/b", "", `truncated escape "%4"`},
	{"lone_percent_is_rejected", "/a%", "", "truncated escape"},
	{"problem_after_dot_dot_is_still_found", "/../%2F", "", "encoded slash"},
	{"bypass_semicolon_dot_dot", "/docs/..;/admin/users", "", "semicolon at byte 8"},
	{"bypass_encoded_dot_dot_semicolon", "/docs/%2e%2e;/admin/users", "", "semicolon at byte 12"},
	{"bypass_path_parameter", "/admin;x/users", "", "semicolon at byte 6"},
	{"bypass_trailing_semicolon", "/admin;", "", "semicolon"},
	{"bypass_encoded_semicolon", "/docs/..%3B/admin", "", "encoded semicolon %3B at byte 8"},
	{"bypass_lower_case_encoded_semicolon", "/docs/..%3b/admin", "", "encoded semicolon %3B"},
}

func TestNormalizePath(t *testing.T) {
	for _, tt := range normalizeTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizePath(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("NormalizePath(%q) = %q, want an error", tt.in, got)
				}
				if !errors.Is(err, ErrBadPath) {
					t.Errorf("error %v does not wrap ErrBadPath", err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if again, err := NormalizePath(got); again != got || err != nil {
				t.Errorf("NormalizePath(%q) = %q, %v; normalizing twice changed it", got, again, err)
			}
		})
	}
}

func TestNormalizePathErrorQuotesThePathButNeverItsQueryNorAllOfIt(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdmMifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
	tests := []struct {
		in, quoted string
	}{
		{"/a;b", `"/a;b"`},
		{"/a;b?access_token=" + jwt, `"/a;b..."`},
		{"/a;b?x=1&token=" + jwt, `"/a;b..."`},
		{"/a;b#access_token=" + jwt, `"/a;b..."`},
		// Cut before the segment that crosses 64 bytes, not inside it.
		{"/files;x/" + jwt, `"/files;x..."`},
		{"/\"" + strings.Repeat("a", 200) + "%2F", `"..."`},
		{"/" + strings.Repeat("a", 62) + "/b;", `"/` + strings.Repeat("a", 62) + `..."`},
		{"/" + strings.Repeat("a", 63) + ";b/c", `"/` + strings.Repeat("a", 63) + `..."`},
	}
	for _, tt := range tests {
		_, err := NormalizePath(tt.in)
		if err == nil {
			t.Fatalf("NormalizePath(%q) = nil error, want one", tt.in)
		}
		msg := err.Error()
		if want := "bad request path " + tt.quoted + ": "; !strings.HasPrefix(msg, want) {
			t.Errorf("NormalizePath(%q): error %s, want it to start with %s", tt.in, msg, want)
		}
		if strings.Contains(msg, "c2lnbmF0dXJl") || strings.Contains(msg, "access_token") {
			t.Errorf("NormalizePath(%q): error %s quotes the token or the query", tt.in, msg)
		}
	}
}

func TestNormalizePathAllocations(t *testing.T) {
	for _, p := range []string{"/", "/orders/123/items", "/a%20b/c%C3%A9/", "/x=1,y/@me:run", "/orders?id=1%zz;x", "/a/%23b"} {
		if n := testing.AllocsPerRun(100, func() { NormalizePath(p) }); n != 0 {
			t.Errorf("NormalizePath(%q), canonical but for its query, made %v allocations, want 0", p, n)
		}
	}
	// A short path that needs work costs one allocation: the result.
	if n := testing.AllocsPerRun(100, func() { NormalizePath("/public/%2e%2e/admin?q=1") }); n != 1 {
		t.Errorf("NormalizePath of a short non-canonical path made %v allocations, want 1", n)
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, tt := range normalizeTests {
		f.Add(tt.in)
	}
	for _, s := range []string{
		"/%2e%2e/%2e%2e/etc/passwd", "/a/b/c/./../../g", "/./", "/..", "/.../..../",
		"/%", "/%%", "/%2", "/%2e%2", "/a?/../b", "/a#/../b", "//..//..//", "/%7E%7e",
		"/\xff\xfe", "/a/%2E%2E%2F", "/%252F", "/ä/ö/ü", "/x/./.%2e/./y/",
		"/a;b", "/..;/x", "/%3b", "/%3A%40%2a%3d", "/%253B", "/a%3F%23%20",
		"/public#/../admin/x", "/a?b#c", "/a%23/..#",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := NormalizePath(raw)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("NormalizePath(%q): error %v does not wrap ErrBadPath", raw, err)
			}
			return
		}
		// A request-target carries no fragment: a '#' anywhere, the
		// query included, is refused, never cut off.
		if strings.Contains(raw, "#") {
			t.Fatalf("NormalizePath(%q) = %q, accepted a raw '#'", raw, out)
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("NormalizePath(%q) = %q, does not start with /", raw, out)
		}
		if strings.Contains(out, "//") {
			t.Fatalf("NormalizePath(%q) = %q, has //", raw, out)
		}
		for seg := range strings.SplitSeq(out, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("NormalizePath(%q) = %q, has a dot segment", raw, out)
			}
		}
		// ';' must never reach an upstream that would cut a path
		// parameter off at it.
		if strings.ContainsAny(out, "?#\\;") {
			t.Fatalf("NormalizePath(%q) = %q, has ?, #, \\ or ;", raw, out)
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 || c >= 0x7F {
				t.Fatalf("NormalizePath(%q) = %q, has byte 0x%02X", raw, out, c)
			}
		}
		for i := 0; i < len(out); i++ {
			if out[i] != '%' {
				continue
			}
			// An escape is kept only for a byte that may not appear raw,
			// written one way: two upper-case hex digits.
			esc := out[i:min(i+3, len(out))]
			d, err := strconv.ParseUint(esc[1:], 16, 8)
			if err != nil || len(esc) < 3 || esc != strings.ToUpper(esc) {
				t.Fatalf("NormalizePath(%q) = %q, has escape %q", raw, out, esc)
			}
			if c := byte(d); c == '/' || c == '\\' || c == ';' || c < 0x20 || c == 0x7F || isPchar(c) {
				t.Fatalf("NormalizePath(%q) = %q, has escape %s of %q", raw, out, esc, c)
			}
		}
		again, err := NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("NormalizePath(%q) = %q, but NormalizePath(%q) = %q, %v", raw, out, out, again, err)
		}
		// The fast path must recognize every output, or canonical paths
		// would pay for normalization on every request.
		if p, ok := canonical(out); !ok || p != out {
			t.Fatalf("NormalizePath(%q) = %q, which canonical rejects", raw, out)
		}
	})
}

// isPchar reports whether RFC 3986 allows c raw in a path segment
// (pchar), written out here rather than taken from the code under test.
func isPchar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, bm := range []struct{ name, path string }{
		{"canonical", "/api/v1/orders/12345/items"},
		{"query", "/api/v1/orders/12345/items?expand=all"},
		{"escapes", "/api/v1/%6Frders/caf%c3%a9/items"},
		{"sub_delim_escapes", "/api/v1/jobs/nightly%3Arun/by/me%40example.com"},
		{"dot_segments", "/api/v1/public/../orders/./12345//items"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizePath(bm.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
