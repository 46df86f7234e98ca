package telemetry

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

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
type Audit struct {
	log       *slog.Logger
	allowRate float64
}

// NewAudit returns an Audit that writes to w every deny, would-be deny
// (dry run) and, at random, the fraction allowSampleRate of allows: 1
// writes all of them, 0 none.
func NewAudit(w io.Writer, allowSampleRate float64) *Audit {
	return &Audit{log: slog.New(slog.NewJSONHandler(w, nil)), allowRate: allowSampleRate}
}

// Record writes the line of the check of r that ended in d and took took,
// unless it is an allow that sampling skips. The token is never written:
// only the first digits of its SHA-256, as token_sha256.
func (a *Audit) Record(r *authz.Request, d *authz.Decision, took time.Duration) {
	if a == nil || !a.sampled(d) {
		return
	}
	var client, subject, issuer string
	var granted []string
	if c := d.Claims; c != nil {
		client, subject, issuer, granted = c.ClientID, c.Subject, c.Issuer, c.Scopes
	}
	var method, host, requestID, peer, token string
	if r != nil {
		method, host, peer = r.Method, r.Host, r.Peer
		requestID = r.RequestID
		token = tokenID(r.Authorization)
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "decision",
		slog.String("decision", Decision(d)),
		slog.Int("status", d.Status),
		slog.String("reason", string(d.Reason)),
		slog.String("description", d.Description),
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
		slog.String("token_sha256", token),
		slog.Float64("latency_ms", float64(took.Microseconds())/1000),
	)
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

// strs returns s, or an empty list for nil, so that a list field is always
// a JSON array.
func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func clip(s string) string {
	if len(s) > maxField {
		return s[:maxField]
	}
	return s
}

// tokenID returns the first digits of the SHA-256 of the bearer token in
// the authorization header h, or "" when h holds none.
func tokenID(h string) string {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return ""
	}
	token := strings.TrimLeft(h[len(scheme):], " ")
	if token == "" {
		return ""
	}
	sum := authz.TokenKey(token)
	return hex.EncodeToString(sum[:tokenIDLen/2])
}
