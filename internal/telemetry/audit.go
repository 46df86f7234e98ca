package telemetry

import (
	"encoding/hex"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/scopegate/scopegate/authz"
)

// maxField bounds every value of an audit line that the request supplies
// (host, path, request id, source address), so that a line stays small
// whatever a caller sends.
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
// fixed order. Audit encodes it itself, without allocating, as slog
// cannot.
type Audit struct {
	allowRate  float64
	flushAfter time.Duration

	mu       sync.Mutex // serializes the writes to w, so lines do not interleave; guards what follows
	w        io.Writer
	buffered bool        // whether lines wait in pending; false once closed
	pending  []byte      // whole lines not yet written
	flush    *time.Timer // writes pending; armed while lines wait
}

// NewAudit returns an Audit that writes to w every deny, would-be deny
// (dry run) and, at random, the fraction allowSampleRate of allows: 1
// writes all of them, 0 none. Each line is one call of w.Write.
func NewAudit(w io.Writer, allowSampleRate float64) *Audit {
	return &Audit{w: w, allowRate: allowSampleRate}
}

// NewBufferedAudit returns an Audit as NewAudit does, but one that holds
// lines and writes them together, which saves a system call a line when w
// is a file or a pipe: no line waits longer than flushAfter, and Close
// writes those that wait. A call of w.Write carries whole lines, at most
// 4 KiB of them, but for a longer line, which is written alone.
func NewBufferedAudit(w io.Writer, allowSampleRate float64, flushAfter time.Duration) *Audit {
	return &Audit{w: w, allowRate: allowSampleRate, flushAfter: flushAfter, buffered: true, pending: make([]byte, 0, pipeBuf)}
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
	p := lineBufs.Get().(*[]byte)
	b := appendLine((*p)[:0], time.Now(), r, d, took)
	a.write(b)
	if cap(b) <= maxPooledLine {
		*p = b
		lineBufs.Put(p)
	}
}

// write writes line to w, or adds it to the lines waiting. As with slog,
// a failed write is not the check's concern: the line is lost and the
// check goes on.
func (a *Audit) write(line []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.buffered {
		a.w.Write(line)
		return
	}
	if len(a.pending)+len(line) > cap(a.pending) {
		a.writePending()
		if len(line) > cap(a.pending) {
			a.w.Write(line)
			return
		}
	}
	if len(a.pending) == 0 {
		if a.flush == nil {
			a.flush = time.AfterFunc(a.flushAfter, a.flushPending)
		} else {
			a.flush.Reset(a.flushAfter)
		}
	}
	a.pending = append(a.pending, line...)
}

// flushPending writes the lines waiting, if any.
func (a *Audit) flushPending() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.writePending()
}

// writePending writes the lines waiting, if any. a.mu must be held.
func (a *Audit) writePending() error {
	if len(a.pending) == 0 {
		return nil
	}
	_, err := a.w.Write(a.pending)
	a.pending = a.pending[:0]
	return err
}

// Close writes the lines that a buffered Audit holds; from then on, it
// writes each line as it comes, as one from NewAudit does. It does not
// close the writer. Close of an Audit from NewAudit, or of a nil one, does
// nothing.
func (a *Audit) Close() error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.buffered {
		return nil
	}
	a.buffered = false
	if a.flush != nil {
		a.flush.Stop()
	}
	return a.writePending()
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
	var method, host, requestID, peer, authorization string
	if r != nil {
		method, host, peer = r.Method, r.Host, r.Peer
		requestID, authorization = r.RequestID, r.Authorization
	}
	b = append(b, `{"time":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"decision","decision":"`...)
	b = append(b, Decision(d)...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(d.Status), 10)
	b = appendString(append(b, `,"reason":`...), string(d.Reason))
	b = appendString(append(b, `,"description":`...), d.Description)
	b = appendString(append(b, `,"route":`...), d.Route)
	b = appendString(append(b, `,"policy_version":`...), d.PolicyVersion)
	b = appendString(append(b, `,"client_id":`...), client)
	b = appendString(append(b, `,"subject":`...), subject)
	b = appendString(append(b, `,"issuer":`...), issuer)
	b = appendStrings(append(b, `,"scopes":`...), granted)
	b = appendStrings(append(b, `,"required_scopes":`...), d.Required)
	b = appendString(append(b, `,"method":`...), clip(method))
	b = appendString(append(b, `,"host":`...), clip(host))
	b = appendString(append(b, `,"path":`...), clip(d.Path))
	b = appendString(append(b, `,"request_id":`...), clip(requestID))
	b = appendString(append(b, `,"source":`...), clip(peer))
	b = append(b, `,"token_sha256":"`...)
	b = appendTokenID(b, authorization)
	b = append(b, `","latency_ms":`...)
	b = appendMillis(b, took.Microseconds())
	return append(b, "}\n"...)
}

// appendString appends s to b as a JSON string escaped as slog escapes
// the strings of its attributes: like encoding/json without HTML escaping,
// except that it writes \b and \f as \u0008 and \u000c.
func appendString(b []byte, s string) []byte {
	return appendQuoted(b, s, false)
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
		b = appendQuoted(b, e, true)
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

// appendQuoted appends s to b as a quoted JSON string. Quotes, backslashes
// and control characters are escaped, \n, \r and \t by their short forms,
// and \b and \f too if shortBF is set; each byte of invalid UTF-8 becomes
// \ufffd, and U+2028 and U+2029 are escaped so that the line is also valid
// JavaScript. <, > and & are left as they are.
func appendQuoted(b []byte, s string, shortBF bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		for i < len(s) && plain[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		b = append(b, s[start:i]...)
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				b = append(b, `\ufffd`...)
			case r == '\u2028' || r == '\u2029':
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			default:
				b = append(b, s[i:i+size]...)
			}
			i += size
			start = i
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\b' && shortBF:
			b = append(b, '\\', 'b')
		case c == '\f' && shortBF:
			b = append(b, '\\', 'f')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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

func clip(s string) string {
	if len(s) > maxField {
		return s[:maxField]
	}
	return s
}

// appendTokenID appends to b the first digits of the SHA-256 of the bearer
// token in the authorization header h, or nothing when h holds none.
func appendTokenID(b []byte, h string) []byte {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return b
	}
	token := strings.TrimLeft(h[len(scheme):], " ")
	if token == "" {
		return b
	}
	sum := authz.TokenKey(token)
	return hex.AppendEncode(b, sum[:tokenIDLen/2])
}
