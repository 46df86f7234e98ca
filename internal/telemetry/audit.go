package telemetry

import (
	"encoding/hex"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/scopegate/scopegate/authz"
)

// maxField bounds every value of an audit line that the request supplies
// (method, host, path, request id, source address, principal), so that a line stays
// small whatever a caller sends: it counts the bytes written, escapes
// included, since a NUL is six bytes once escaped.
const maxField = 1024

// tokenIDLen is the number of hex digits of a token's SHA-256 that an
// audit line carries: enough to tell one token's lines from another's, and
// to find its entry in a cache, never the token.
const tokenIDLen = 16

// Audit writes the audit log: one JSON line per decision, with the fields
// that say who was let in or kept out, where, by which route and policy,
// and why. Denies are always written; allows are sampled. A nil *Audit
// writes nothing. It is safe for concurrent use.
//
// A line is, byte for byte, what log/slog's JSON handler writes for a
// record of the same fields: time, level and msg, then the fields in a
// fixed order, those that the request supplies redacted and clipped as
// appendField says. Audit encodes it itself, without allocating, as slog
// cannot.
type Audit struct {
	allowRate float64

	// Of an Audit from NewAudit:
	mu sync.Mutex // serializes the writes to w, so lines do not interleave
	w  io.Writer

	q *lineQueue // of an Audit from NewBufferedAudit
}

// NewAudit returns an Audit that writes to w every deny, would-be deny
// (dry run) and, at random, the fraction allowSampleRate of allows: 1
// writes all of them, 0 none. Each line is one call of w.Write, made by
// the check that Record is called for: w must not block, as a
// bytes.Buffer does not. serve's audit log is a buffered one.
func NewAudit(w io.Writer, allowSampleRate float64) *Audit {
	return &Audit{w: w, allowRate: allowSampleRate}
}

// NewBufferedAudit returns an Audit as NewAudit does, but one whose checks
// never wait for w, whatever w does: a goroutine of its own writes the
// lines, several at once, which also saves a system call a line when w is
// a file or a pipe. No line waits longer than flushAfter for others. A
// call of w.Write carries whole lines, at most 4 KiB of them, but for a
// longer line, which is written alone.
//
// While w does not take lines as fast as they come, they wait, up to
// 1 MiB of them; past that, and once closed, lines are dropped. Dropped
// returns how many were, and logger, or slog's default logger if nil,
// says so, at most every 10 seconds. Close must be called to write the
// lines that wait and stop the goroutine.
func NewBufferedAudit(w io.Writer, allowSampleRate float64, flushAfter time.Duration, logger *slog.Logger) *Audit {
	return &Audit{allowRate: allowSampleRate, q: newLineQueue(w, flushAfter, logger)}
}

// pipeBuf is PIPE_BUF on Linux: what one write to a pipe puts in it
// whole, whatever else writes to the pipe. A buffered Audit writes no
// more at once, so that its lines reach a pipe, such as stdout under a
// container runtime or a shell's 2>&1, whole, as they did one at a time.
const pipeBuf = 4096

// lineBufs holds the buffers that lines are encoded in, so that writing a
// line allocates nothing.
var lineBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// maxPooledLine is the largest buffer that goes back to lineBufs, so that
// one outsized line does not keep its memory in the pool.
const maxPooledLine = 16 << 10

// Record writes the line of the check of r that ended in d and took took,
// unless it is an allow that sampling skips. The token is never written:
// only the first digits of its SHA-256, as token_sha256.
func (a *Audit) Record(r *authz.Request, d *authz.Decision, took time.Duration) {
	if a == nil || !a.sampled(d) {
		return
	}
	now := time.Now()
	p := lineBufs.Get().(*[]byte)
	b := appendLine((*p)[:0], now, r, d, took)
	if a.q != nil {
		a.q.add(b, now)
	} else {
		a.write(b)
	}
	if cap(b) <= maxPooledLine {
		*p = b
		lineBufs.Put(p)
	}
}

// write writes line to w. As with slog, a failed write is not the check's
// concern: the line is lost and the check goes on.
func (a *Audit) write(line []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.w.Write(line)
}

// Close writes the lines that a buffered Audit holds, waiting at most 2
// seconds for its writer to take them: past that, they are dropped, and
// the error says how many. From then on, the Audit drops every line. It
// does not close the writer. Close of an Audit from NewAudit, or of a nil
// one, does nothing.
func (a *Audit) Close() error {
	if a == nil || a.q == nil {
		return nil
	}
	return a.q.close()
}

// Dropped returns how many lines a buffered Audit dropped: because its
// writer did not take them in time, failed to write them, or was closed.
// It is 0 for an Audit from NewAudit.
func (a *Audit) Dropped() uint64 {
	if a == nil || a.q == nil {
		return 0
	}
	return a.q.dropped.Load()
}

// sampled reports whether d is to be written: every deny and would-be
// deny, and allows at the sample rate.
func (a *Audit) sampled(d *authz.Decision) bool {
	if !d.Allow || d.WouldDeny {
		return true
	}
	// Float64 is in [0, 1): a rate of 1 takes every allow, 0 none.
	return rand.Float64() < a.allowRate
}

// appendLine appends to b the audit line, newline included, of the check
// of r that ended in d at now and took took.
func appendLine(b []byte, now time.Time, r *authz.Request, d *authz.Decision, took time.Duration) []byte {
	var client, subject, issuer string
	var granted []string
	if c := d.Claims; c != nil {
		client, subject, issuer, granted = c.ClientID, c.Subject, c.Issuer, c.Scopes
	}
	var method, host, requestID, peer, principal, bearer string
	if r != nil {
		method, host, peer, principal = r.Method, r.Host, r.Peer, r.Principal
		requestID, bearer = r.RequestID, authz.BearerToken(r.Authorization)
	}
	b = append(b, `{"time":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"decision","decision":"`...)
	b = append(b, Decision(d)...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(d.Status), 10)
	b = appendString(append(b, `,"reason":`...), string(d.Reason))
	b = appendField(append(b, `,"description":`...), d.Description, bearer, -1)
	b = appendString(append(b, `,"route":`...), d.Route)
	b = appendString(append(b, `,"policy_version":`...), d.PolicyVersion)
	b = appendString(append(b, `,"client_id":`...), client)
	b = appendString(append(b, `,"subject":`...), subject)
	b = appendString(append(b, `,"issuer":`...), issuer)
	b = appendStrings(append(b, `,"scopes":`...), granted)
	b = appendStrings(append(b, `,"required_scopes":`...), d.Required)
	b = appendField(append(b, `,"method":`...), method, bearer, maxField)
	b = appendField(append(b, `,"host":`...), host, bearer, maxField)
	b = appendField(append(b, `,"path":`...), d.Path, bearer, maxField)
	b = appendField(append(b, `,"request_id":`...), requestID, bearer, maxField)
	b = appendField(append(b, `,"source":`...), peer, bearer, maxField)
	b = appendField(append(b, `,"principal":`...), principal, bearer, maxField)
	b = append(b, `,"token_sha256":"`...)
	b = appendTokenID(b, bearer)
	b = append(b, `","latency_ms":`...)
	b = appendMillis(b, took.Microseconds())
	return append(b, "}\n"...)
}

// appendString appends s to b as a JSON string escaped as slog escapes
// the strings of its attributes: like encoding/json without HTML escaping,
// except that it writes \b and \f as \u0008 and \u000c.
func appendString(b []byte, s string) []byte {
	b, _ = appendEscaped(append(b, '"'), s, math.MaxInt, false)
	return append(b, '"')
}

// appendField appends s to b as appendString does, but for what the
// request may have put in it: every token (see authz.Redact) is written
// as authz.RedactedToken, and no more than max bytes are written between
// the quotes, none with a negative max. The cut comes after escaping and
// before the first character or escape that would go past max: as if s
// were cut to the longest prefix that, escaped, fits.
func appendField(b []byte, s, bearer string, max int) []byte {
	b = append(b, '"')
	limit := math.MaxInt
	if max >= 0 {
		limit = len(b) + max
	}
	f := authz.FindTokens(s, bearer)
	last, full := 0, false
	for !full {
		start, end := f.Next()
		if start < 0 {
			b, _ = appendEscaped(b, s[last:], limit, false)
			break
		}
		if b, full = appendEscaped(b, s[last:start], limit, false); full {
			break
		}
		n := min(len(authz.RedactedToken), limit-len(b))
		b = append(b, authz.RedactedToken[:n]...)
		full = n < len(authz.RedactedToken)
		last = end
	}
	return append(b, '"')
}

// appendStrings appends s to b as a JSON array, an empty one for nil, as
// encoding/json encodes it with SetEscapeHTML(false): that is what slog
// wrote for a []string attribute.
func appendStrings(b []byte, s []string) []byte {
	b = append(b, '[')
	for i, e := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b, _ = appendEscaped(append(b, '"'), e, math.MaxInt, true)
		b = append(b, '"')
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// plain holds true for the bytes that a JSON string holds as they are:
// ASCII but for control characters, the quote and the backslash. Bytes
// from 0x80 are false, so that one lookup also finds the start of a
// multi-byte rune.
var plain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendEscaped appends s to b as the inside of a JSON string, or as much
// of it as keeps b within limit bytes, and reports whether it stopped
// short. Quotes, backslashes and control characters are escaped, \n, \r
// and \t by their short forms, and \b and \f too if shortBF is set; each
// byte of invalid UTF-8 becomes \ufffd, and U+2028 and U+2029 are escaped
// so that the line is also valid JavaScript. <, > and & are left as they
// are. It stops before a character or escape that does not fit whole.
func appendEscaped(b []byte, s string, limit int, shortBF bool) ([]byte, bool) {
	for i := 0; i < len(s); {
		start := i
		for end := start + min(len(s)-start, limit-len(b)); i < end && plain[s[i]]; {
			i++
		}
		b = append(b, s[start:i]...)
		if i == len(s) {
			break
		}
		c := s[i]
		if plain[c] {
			return b, true
		}
		size := 1
		esc := ""
		if c >= utf8.RuneSelf {
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				esc = `\ufffd`
			case r == '\u2028':
				esc = `\u2028`
			case r == '\u2029':
				esc = `\u2029`
			default:
				esc = s[i : i+size]
			}
		} else {
			switch {
			case c == '"':
				esc = `\"`
			case c == '\\':
				esc = `\\`
			case c == '\n':
				esc = `\n`
			case c == '\r':
				esc = `\r`
			case c == '\t':
				esc = `\t`
			case c == '\b' && shortBF:
				esc = `\b`
			case c == '\f' && shortBF:
				esc = `\f`
			}
		}
		n := len(esc)
		if esc == "" {
			n = len(`\u00XX`)
		}
		if n > limit-len(b) {
			return b, true
		}
		if esc == "" {
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		} else {
			b = append(b, esc...)
		}
		i += size
	}
	return b, false
}

// appendMillis appends the microseconds us to b as milliseconds, written
// as appendFloat writes float64(us)/1000 but without formatting a float:
// below 10¹⁵ that is the decimal us/1000 itself, since doubles of at most
// 15 significant digits read back as the digits they were made from.
func appendMillis(b []byte, us int64) []byte {
	if us <= -1e15 || us >= 1e15 {
		return appendFloat(b, float64(us)/1000)
	}
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return b
	}
	b = append(b, '.', byte('0'+frac/100))
	if frac%100 != 0 {
		b = append(b, byte('0'+frac/10%10))
		if frac%10 != 0 {
			b = append(b, byte('0'+frac%10))
		}
	}
	return b
}

// appendFloat appends f to b as encoding/json encodes a float64, which is
// how slog wrote a float attribute: the shortest decimal that reads back
// as f, in exponent form only below 1e-6 or from 1e21, with a two-digit
// negative exponent cut to one digit. f must be finite.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendTokenID appends to b the first digits of the SHA-256 of the bearer
// token, as authz.BearerToken takes it, or nothing when there is none.
func appendTokenID(b []byte, token string) []byte {
	if token == "" {
		return b
	}
	sum := authz.TokenKey(token)
	return hex.AppendEncode(b, sum[:tokenIDLen/2])
}
