package telemetry_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/telemetry"
	"github.com/scopegate/scopegate/internal/testutil"
)

// slogLine returns the line that log/slog's JSON handler writes, at now,
// for the check of r that ended in d and took took, with the attributes
// that the audit log gave slog when slog wrote it. The lines of Audit
// must match it byte for byte, so that what reads them need not change.
//
// What the request may have put in a field is redacted first (see
// authz.Redact), then cut to the longest prefix that slog writes in at
// most 1,024 bytes, escapes included.
func slogLine(now time.Time, r *authz.Request, d *authz.Decision, took time.Duration) string {
	var bearer string
	if r != nil {
		bearer = slogBearer(r.Authorization)
	}
	clip := func(s string) string { return slogClip(authz.Redact(s, bearer), 1024) }
	strs := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	var client, subject, issuer string
	var granted []string
	if c := d.Claims; c != nil {
		client, subject, issuer, granted = c.ClientID, c.Subject, c.Issuer, c.Scopes
	}
	var method, host, requestID, peer, principal, token string
	if r != nil {
		method, host, peer, principal = r.Method, r.Host, r.Peer, r.Principal
		requestID = r.RequestID
		token = slogTokenID(r.Authorization)
	}
	rec := slog.NewRecord(now, slog.LevelInfo, "decision", 0)
	rec.AddAttrs(
		slog.String("decision", telemetry.Decision(d)),
		slog.Int("status", d.Status),
		slog.String("reason", string(d.Reason)),
		slog.String("description", authz.Redact(d.Description, bearer)),
		slog.String("route", d.Route),
		slog.String("policy_version", d.PolicyVersion),
		slog.String("client_id", client),
		slog.String("subject", subject),
		slog.String("issuer", issuer),
		slog.Any("scopes", strs(granted)),
		slog.Any("required_scopes", strs(d.Required)),
		slog.String("method", clip(method)),
		slog.String("host", clip(host)),
		slog.String("path", clip(d.Path)),
		slog.String("request_id", clip(requestID)),
		slog.String("source", clip(peer)),
		slog.String("principal", clip(principal)),
		slog.String("token_sha256", token),
		slog.Float64("latency_ms", float64(took.Microseconds())/1000),
	)
	var b bytes.Buffer
	// A bytes.Buffer takes every write.
	_ = slog.NewJSONHandler(&b, nil).Handle(context.Background(), rec)
	return b.String()
}

// slogBearer is the token of the authorization header h: the first word
// after a "Bearer" or "DPoP" that a space or tab ends, words being
// separated by spaces, tabs and commas.
func slogBearer(h string) string {
	n := 0
	for _, scheme := range []string{"bearer", "dpop"} {
		if len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) && strings.ContainsRune(" \t", rune(h[len(scheme)])) {
			n = len(scheme)
		}
	}
	if n == 0 {
		return ""
	}
	words := strings.FieldsFunc(h[n:], func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
	if len(words) == 0 || strings.HasPrefix(strings.TrimLeft(h[n:], " \t"), ",") {
		return ""
	}
	return words[0]
}

// slogTokenID is the token_sha256 of a line for the authorization header h.
func slogTokenID(h string) string {
	token := slogBearer(h)
	if token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// slogClip returns the longest prefix of s that slog writes as a string
// attribute in at most max bytes between the quotes.
func slogClip(s string, max int) string {
	for n := min(len(s), max); n > 0; n-- {
		if slogQuotedLen(s[:n]) <= max {
			return s[:n]
		}
	}
	return ""
}

// slogQuotedLen is the length of s as slog writes it, quotes excluded.
func slogQuotedLen(s string) int {
	rec := slog.NewRecord(time.Time{}, slog.LevelInfo, "", 0)
	rec.AddAttrs(slog.String("s", s))
	var b bytes.Buffer
	_ = slog.NewJSONHandler(&b, nil).Handle(context.Background(), rec)
	return b.Len() - len(`{"level":"INFO","msg":"","s":""}`+"\n")
}

// recordLine returns the line that Record writes for r, d and took, and
// the line that slog wrote for them at the time the first one holds.
func recordLine(t testing.TB, r *authz.Request, d *authz.Decision, took time.Duration) (got, want string) {
	t.Helper()
	var b bytes.Buffer
	telemetry.NewAudit(&b, 1).Record(r, d, took)
	got = b.String()
	var line struct{ Time string }
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatalf("not a JSON line: %v: %q", err, got)
	}
	now, err := time.Parse(time.RFC3339Nano, line.Time)
	if err != nil {
		t.Fatalf("time: %v", err)
	}
	return got, slogLine(now, r, d, took)
}

func TestAuditLineIsSlogs(t *testing.T) {
	claims := &authz.Claims{Issuer: "https://idp.example.com", Subject: "billing-svc", ClientID: "billing-svc", Scopes: []string{"orders:read", "orders:list"}}
	deny := authz.Decision{
		Status: 403, Reason: authz.ReasonInsufficientScope, Error: "insufficient_scope",
		Description: "the token lacks one of orders:write, orders:admin",
		Route:       "orders-create", Path: "/orders", PolicyVersion: "0123456789ab",
		Required: []string{"orders:write", "orders:admin"}, Claims: claims,
	}
	type test struct {
		name string
		r    *authz.Request
		d    *authz.Decision
		took time.Duration
	}
	tests := []test{
		{"deny", request(), &deny, 1500 * time.Microsecond},
		{"allow without claims or required scopes", request(), &authz.Decision{Allow: true, Status: 200, Reason: authz.ReasonAllowed, Route: "public"}, 180 * time.Microsecond},
		{"would-be deny", request(), &authz.Decision{Allow: true, WouldDeny: true, Status: 403, Reason: authz.ReasonClientNotAllowed}, time.Second},
		{"no request", nil, &authz.Decision{Status: 500, Reason: authz.ReasonInternal}, 0},
		{"empty scopes", request(), &authz.Decision{Status: 403, Claims: &authz.Claims{Scopes: []string{}}, Required: []string{""}}, 0},
		{"no token", func() *authz.Request { r := request(); r.Authorization = ""; return r }(), &deny, 0},
		{"basic credentials", func() *authz.Request { r := request(); r.Authorization = "Basic dXNlcjpwYXNz"; return r }(), &deny, 0},
		{"bearer in capitals, spaces before the token", func() *authz.Request { r := request(); r.Authorization = "BEARER   " + token; return r }(), &deny, 0},
		{"DPoP token, the proof's path holding it", func() *authz.Request {
			r := request()
			r.Authorization, r.Path = "DPoP "+token, "/x/"+token
			return r
		}(), &deny, 0},
		{"bearer and no token", func() *authz.Request { r := request(); r.Authorization = "Bearer    "; return r }(), &deny, 0},
		{"long fields clipped", func() *authz.Request {
			r := request()
			r.Host = strings.Repeat("h", 5000)
			r.Method = strings.Repeat("M", 1025)
			r.Peer = strings.Repeat("p", 1024)
			r.Principal = "spiffe://" + strings.Repeat("é", 600)
			// é is 2 bytes: clipping at 1,024 bytes cuts the 513th in half.
			r.RequestID = "x" + strings.Repeat("é", 600)
			return r
		}(), &authz.Decision{Status: 403, Path: "/" + strings.Repeat("€", 2000)}, 0},
		{"fields of NULs clipped after escaping", func() *authz.Request {
			r := request()
			r.Host = strings.Repeat("\x00", 1000)
			r.RequestID = "ab" + strings.Repeat("\u2028", 400)
			r.Peer = strings.Repeat("\xff", 300)
			return r
		}(), &authz.Decision{Status: 400, Reason: authz.ReasonBadPath, Path: strings.Repeat(`"\`, 700)}, 0},
		{"tokens in fields redacted", func() *authz.Request {
			r := request()
			r.Host = "h." + token + ":443"
			r.RequestID = strings.Repeat("é", 510) + token
			r.Principal = "spiffe://td/" + token
			return r
		}(), &authz.Decision{Status: 400, Reason: authz.ReasonBadPath, Description: "bad " + token, Path: "/callback/" + token + "/x"}, 0},
		{"long description and scopes written whole", request(), &authz.Decision{Status: 403, Description: strings.Repeat("d", 3000), Required: []string{strings.Repeat("s", 3000)}}, 0},
	}
	for _, s := range []string{"<script>&amp;</script>", "\"quoted\" \\ back", "\n\r\t\b\f\x00\x1f\x7f", "\u2028\u2029", "\xff\xc3(\xed\xa0\x80", "é€😀"} {
		r := &authz.Request{Method: s, Host: s, Path: s, Peer: s, RequestID: s, Principal: s, Authorization: "Bearer " + s}
		d := &authz.Decision{
			Status: 403, Reason: authz.Reason(s), Description: s, Route: s, Path: s, PolicyVersion: s, Required: []string{s},
			Claims: &authz.Claims{Issuer: s, Subject: s, ClientID: s, Scopes: []string{s, "ok"}},
		}
		tests = append(tests, test{"fields of " + strings.ToValidUTF8(s, "?"), r, d, 0})
	}
	for _, took := range []time.Duration{
		time.Microsecond, 999 * time.Microsecond, 1001 * time.Microsecond, 1010 * time.Microsecond, 1100 * time.Microsecond,
		999 * time.Nanosecond, -5 * time.Microsecond, -1500 * time.Microsecond, 90 * time.Minute,
		999_999_999_999_999 * time.Microsecond, 1_000_000_000_000_000 * time.Microsecond, 1_234_567_890_123_456 * time.Microsecond,
		math.MaxInt64, math.MinInt64,
	} {
		tests = append(tests, test{"took " + took.String(), request(), &deny, took})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := recordLine(t, tt.r, tt.d, tt.took); got != want {
				t.Errorf("line\n%s\nwant slog's\n%s", got, want)
			}
		})
	}
}

func TestAuditEscapesStringsAsSlog(t *testing.T) {
	tests := []struct {
		in, field, list string // list is as field but for \b and \f, which slog wrote short in lists
	}{
		{"plain text", `"plain text"`, ""},
		{"", `""`, ""},
		// slog does not escape for HTML, unlike json.Marshal.
		{"<a href='x'>&amp;</a>", `"<a href='x'>&amp;</a>"`, ""},
		{`say "hi" \o/`, `"say \"hi\" \\o/"`, ""},
		{"\n\r\t", `"\n\r\t"`, ""},
		{"\b\f", `"\u0008\u000c"`, `"\b\f"`},
		{"\x00\x01\x1f \x7f", `"\u0000\u0001\u001f ` + "\x7f" + `"`, ""},
		{"a\u2028b\u2029c", `"a\u2028b\u2029c"`, ""},
		{"é€😀", `"é€😀"`, ""},
		{"\xff", `"\ufffd"`, ""},
		{"a\xc3", `"a\ufffd"`, ""},
		{"\xc3(", `"\ufffd("`, ""},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`, ""},         // a surrogate
		{"\xf0\x9f\x98", `"\ufffd\ufffd\ufffd"`, ""},         // a truncated rune
		{"\xe2\x80\xa8\xe2\x80", `"\u2028\ufffd\ufffd"`, ""}, // U+2028, then half of it
		{"\xef\xbf\xbd", "\"\ufffd\"", ""},                   // U+FFFD itself
		{strings.Repeat("0123456789", 4) + "\x00", `"` + strings.Repeat("0123456789", 4) + `\u0000"`, ""},
	}
	for _, tt := range tests {
		if tt.list == "" {
			tt.list = tt.field
		}
		got, want := recordLine(t, request(), &authz.Decision{Status: 403, Description: tt.in, Required: []string{tt.in}}, 0)
		if got != want {
			t.Errorf("%q: line\n%s\nwant slog's\n%s", tt.in, got, want)
		}
		if s := `"description":` + tt.field + `,`; !strings.Contains(got, s) {
			t.Errorf("%q: line %s, want %s", tt.in, got, s)
		}
		if s := `"required_scopes":[` + tt.list + `]`; !strings.Contains(got, s) {
			t.Errorf("%q: line %s, want %s", tt.in, got, s)
		}
		checkEscaped(t, tt.in, got)
	}
}

// checkEscaped checks that the description and the required scope of the
// line, both s, are as encoding/json writes s without HTML escaping, and
// read back as s with each byte of invalid UTF-8 replaced.
func checkEscaped(t *testing.T, s, line string) {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	std := strings.TrimSuffix(b.String(), "\n")
	if !strings.Contains(line, `"required_scopes":[`+std+`]`) {
		t.Errorf("%q: line %s, want required_scopes [%s] as encoding/json writes it", s, line, std)
	}
	short := strings.NewReplacer(`\u0008`, `\b`, `\u000c`, `\f`)
	field, _, _ := strings.Cut(line[strings.Index(line, `"description":`)+len(`"description":`):], `,"route":`)
	if short.Replace(field) != std {
		t.Errorf("%q: description %s, want %s as encoding/json writes it but for \\b and \\f", s, field, std)
	}
	var got struct {
		Description    string
		RequiredScopes []string `json:"required_scopes"`
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("%q: not a JSON line: %v: %s", s, err, line)
	}
	var want strings.Builder
	for _, r := range s { // a range yields U+FFFD for each invalid byte
		want.WriteRune(r)
	}
	if got.Description != want.String() || len(got.RequiredScopes) != 1 || got.RequiredScopes[0] != want.String() {
		t.Errorf("%q: read back as %q and %q, want %q", s, got.Description, got.RequiredScopes, want.String())
	}
}

func FuzzAuditLine(f *testing.F) {
	for _, s := range []string{"", "plain", "<&>", "\"\\", "\n\r\t\b\f\x00\x1f\x7f", "\u2028\u2029", "\xff\xc3(\xed\xa0\x80", "é€😀"} {
		f.Add(s, int64(180*time.Microsecond))
	}
	f.Add(strings.Repeat("\x00", 300), int64(0))
	f.Add("/a/eyJhbGciOiJub25lIn0.e30./b", int64(0))
	f.Add("x", int64(math.MinInt64))
	f.Add("x", int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, s string, took int64) {
		r := &authz.Request{Method: s, Host: s, Path: s, Peer: s, RequestID: s, Principal: s, Authorization: "Bearer " + s}
		d := &authz.Decision{
			Status: len(s), Reason: authz.Reason(s), Description: s, Route: s, Path: s, PolicyVersion: s, Required: []string{s},
			Claims: &authz.Claims{Issuer: s, Subject: s, ClientID: s, Scopes: []string{s, s}},
		}
		got, want := recordLine(t, r, d, time.Duration(took))
		if got != want {
			t.Fatalf("line\n%s\nwant slog's\n%s", got, want)
		}
		if authz.Redact(s, slogBearer(r.Authorization)) == s {
			checkEscaped(t, s, got)
		}
	})
}

// lineWriter keeps what is written to it, a call of Write at a time, and
// notes whether two calls overlapped.
type lineWriter struct {
	writing, overlapped atomic.Bool
	mu                  sync.Mutex
	writes              []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if !w.writing.CompareAndSwap(false, true) {
		w.overlapped.Store(true)
	}
	// Stay in Write a moment, so that a write that does not wait for the
	// one under way has a chance to overlap it.
	time.Sleep(time.Microsecond)
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	w.writing.Store(false)
	return len(p), nil
}

// recordConcurrently records lines from 8 goroutines at once, of up to
// about 1 KiB each and some 320 KiB in all: less than a buffered Audit
// queues, so that none is dropped however late its writer runs. It
// returns how many it recorded.
func recordConcurrently(t *testing.T, a *telemetry.Audit) int {
	const writers, each = 8, 60
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			r := request()
			r.RequestID = strings.Repeat(string(rune('a'+i)), 100*i)
			for range each {
				a.Record(r, &authz.Decision{Status: 403, Reason: authz.ReasonNoRoute}, 0)
			}
		})
	}
	testutil.Wait(t, &wg, testutil.WaitTimeout, "the lines recorded concurrently")
	return writers * each
}

func TestAuditWritesALineAtATime(t *testing.T) {
	var w lineWriter
	n := recordConcurrently(t, telemetry.NewAudit(&w, 1))
	if w.overlapped.Load() {
		t.Error("two writes overlapped")
	}
	if len(w.writes) != n {
		t.Fatalf("%d writes for %d lines", len(w.writes), n)
	}
	for _, s := range w.writes {
		if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") || !json.Valid([]byte(s)) {
			t.Fatalf("a write is not one JSON line: %q", s)
		}
	}
}
