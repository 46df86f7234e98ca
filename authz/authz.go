// Package authz is scopegate's domain: the request as a decision sees it,
// the verification of bearer tokens, and the decision itself. It knows
// nothing of Envoy or gRPC; adapters translate to and from its types.
package authz

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"
	"unsafe"

	"github.com/scopegate/scopegate/policy"
)

// Request is an HTTP request as the decision sees it. Its strings may be
// views into the message a proxy sent: a Request is read, never modified.
type Request struct {
	Method string
	Host   string // as sent, possibly with a port
	Path   string // as sent, possibly with a query string
	// Scheme is the URL scheme of the request, "http" or "https", as the
	// proxy received it; empty when the proxy did not say.
	Scheme string
	// Authorization is the request's authorization header, repeated ones
	// joined with "," as Envoy joins them, so that two cannot pass for one.
	Authorization string
	// DPoP is the request's DPoP header, the proof of possession of RFC
	// 9449, repeated ones joined with "," as Envoy joins them, so that two
	// proofs cannot pass for one.
	DPoP string
	// RequestID is the request's x-request-id header, for the audit trail.
	RequestID string
	Peer      string // the source address of the request, for the audit trail

	// What the proxy verified of the peer's TLS connection; all empty for
	// a peer without mutual TLS.

	// Principal is the peer's identity as the proxy authenticated it from
	// its client certificate: Envoy's source.principal, the certificate's
	// first URI SAN (a SPIFFE ID in a mesh), else its first DNS SAN, else
	// its subject.
	Principal string
	// Certificate is the peer's client certificate, as the proxy sent it.
	Certificate Certificate
	// DestinationPrincipal is the identity that the proxy itself presented
	// to the peer: Envoy's destination.principal, the By of an
	// x-forwarded-client-cert.
	DestinationPrincipal string
	// SNI is the server name that the peer asked for in its TLS handshake.
	SNI string

	// Context is the context that the proxy's route attaches to the
	// request: Envoy's per-route context_extensions.
	Context Context
}

// Context is a request's route context: key-value pairs that the proxy's
// route configuration attaches to the check, Envoy's context_extensions
// (ExtAuthzPerRoute.check_settings.context_extensions). It is the
// policy's type, which routes' match.context is matched against.
type Context = policy.Context

// Claims is what a verified token says about its bearer, whatever the kind
// of token. Caches hold Claims, never decisions, so that every check
// evaluates its route's requirements afresh.
type Claims struct {
	Issuer   string
	Subject  string
	ClientID string
	Audience []string
	Scopes   []string
	Expiry   time.Time
	IssuedAt time.Time
	// Extra holds the string claims named in the claim → header map, so
	// that they can be forwarded upstream.
	Extra map[string]string
	// Confirmation is what the token is bound to (its cnf claim); the
	// zero value for a bearer token.
	Confirmation Confirmation
}

// Verifier checks a raw bearer token and returns the claims it carries.
// A Verifier returns a *TokenError for every token it refuses, so that the
// decision carries a stable reason; any other error denies with
// ReasonInternal.
type Verifier interface {
	Verify(ctx context.Context, token string) (*Claims, error)
}

// Reason is a stable, machine-readable code for why a decision was made. It
// appears in logs, metrics and the x-scopegate-reason response header.
type Reason string

// The reasons a decision can carry.
const (
	ReasonAllowed          Reason = "allowed"
	ReasonPublic           Reason = "public"
	ReasonTokenMissing     Reason = "token_missing"
	ReasonTokenMalformed   Reason = "token_malformed"
	ReasonTokenTooLarge    Reason = "token_too_large"
	ReasonTokenExpired     Reason = "token_expired"
	ReasonTokenNotYetValid Reason = "token_not_yet_valid"
	ReasonTokenLifetime    Reason = "token_lifetime_too_long"
	ReasonTokenInvalid     Reason = "token_invalid"
	ReasonTokenType        Reason = "token_type"
	ReasonBadSignature     Reason = "bad_signature"
	ReasonAlgorithm        Reason = "algorithm_not_allowed"
	ReasonUnknownKey       Reason = "unknown_key"
	ReasonUnknownIssuer    Reason = "unknown_issuer"
	ReasonBadAudience      Reason = "bad_audience"
	// The reasons of a sender-constrained token (RFC 8705, RFC 9449)
	// whose binding is not confirmed, or of a plain bearer token where a
	// binding is required.
	ReasonCertificateMissing  Reason = "certificate_missing"
	ReasonCertificateMismatch Reason = "certificate_mismatch"
	ReasonDPoPRequired        Reason = "dpop_required"
	ReasonDPoPKeyMismatch     Reason = "dpop_key_mismatch"
	ReasonBindingUnsupported  Reason = "binding_unsupported"
	ReasonBindingRequired     Reason = "binding_required"
	// The reasons of a refused DPoP proof (RFC 9449), with a *DPoPError.
	ReasonDPoPProofInvalid      Reason = "dpop_proof_invalid"
	ReasonDPoPNonceRequired     Reason = "dpop_nonce_required"
	ReasonDPoPReplayUnavailable Reason = "dpop_replay_unavailable"
	ReasonIssuerUnavailable     Reason = "issuer_unavailable"
	ReasonInactive              Reason = "token_inactive"
	ReasonIntrospection         Reason = "introspection_failed"
	ReasonIntrospectionDown     Reason = "introspection_unavailable"
	ReasonInsufficientScope     Reason = "insufficient_scope"
	ReasonClientNotAllowed      Reason = "client_not_allowed"
	ReasonIssuerNotAllowed      Reason = "issuer_not_allowed"
	ReasonAudienceNotAllowed    Reason = "audience_not_allowed"
	ReasonPrincipalNotAllowed   Reason = "principal_not_allowed"
	ReasonRouteDenied           Reason = "route_denied"
	ReasonNoRoute               Reason = "no_route"
	ReasonBadPath               Reason = "bad_path"
	ReasonBadRequest            Reason = "bad_request"
	ReasonInternal              Reason = "internal_error"
)

// TokenError is a Verifier's refusal of a token.
type TokenError struct {
	Reason Reason
	// Description is safe to show the caller: it never contains the token.
	Description string
	// Unavailable marks a refusal because a provider could not be asked
	// (the token may be fine): the caller should retry, not fetch a new
	// token, and the answer is 503 rather than 401.
	Unavailable bool
	Err         error // the cause, for logs; may be nil
}

func (e *TokenError) Error() string {
	msg := string(e.Reason) + ": " + e.Description
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *TokenError) Unwrap() error { return e.Err }

// tokenError returns err's *TokenError, or one for an internal failure.
func tokenError(err error) *TokenError {
	var te *TokenError
	if errors.As(err, &te) {
		return te
	}
	return &TokenError{Reason: ReasonInternal, Description: "the token could not be verified", Err: err}
}

// maxReplyMargin bounds how long before its caller's deadline a check
// gives up waiting on a provider.
const maxReplyMargin = 50 * time.Millisecond

// beforeDeadline returns ctx with its deadline, if it has one, brought
// forward by a fifth of the time left (at most maxReplyMargin). Waits on
// providers use it so that a slow provider ends in a deny that reaches
// Envoy in time: an answer after Envoy's own timeout is a gRPC error to
// Envoy, which an Envoy with failure_mode_allow turns into an allow.
func beforeDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, dl.Add(-min(time.Until(dl)/5, maxReplyMargin)))
}

// TokenKey returns the SHA-256 of a token: the only form in which a token
// may be used as a cache key or shown in a log.
func TokenKey(token string) [32]byte {
	// Hash the string's bytes in place: the copy that []byte(token) makes
	// was the only allocation of a cached check. Sum256 only reads them.
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}
