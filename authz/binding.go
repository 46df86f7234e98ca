package authz

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"

	"github.com/scopegate/scopegate/policy"
)

// Confirmation is a token's RFC 7800 confirmation claim, cnf: what the
// token is bound to, so that only who holds that can use it. JWTs and
// introspection answers carry it alike, and both are read by
// parseConfirmation. The zero value is an unbound, bearer token.
type Confirmation struct {
	// Methods are the confirmation methods that cnf holds.
	Methods ConfirmationMethods
	// CertificateSHA256 is the SHA-256 of the DER certificate that the
	// token is bound to (RFC 8705's x5t#S256), with ConfirmCertificate.
	CertificateSHA256 [32]byte
	// KeyThumbprint is the RFC 7638 SHA-256 thumbprint of the DPoP key
	// that the token is bound to (RFC 9449's jkt), with ConfirmDPoPKey.
	KeyThumbprint [32]byte
}

// ConfirmationMethods is a set of confirmation methods.
type ConfirmationMethods uint8

// The confirmation methods of a cnf.
const (
	// ConfirmCertificate is x5t#S256: the token is bound to the client
	// certificate of a mutual TLS connection (RFC 8705 section 3).
	ConfirmCertificate ConfirmationMethods = 1 << iota
	// ConfirmDPoPKey is jkt: the token is bound to the key that signs the
	// request's DPoP proof (RFC 9449 section 6).
	ConfirmDPoPKey
	// ConfirmUnsupported is any other member of cnf (jwk, jwe, jku, kid,
	// x5t, ...): a binding that scopegate does not verify, and for which
	// it refuses the token.
	ConfirmUnsupported
)

// Bound reports whether c binds its token to anything.
func (c *Confirmation) Bound() bool { return c.Methods != 0 }

// parseConfirmation returns the Confirmation of v, a cnf claim decoded as
// decoding into an any does; nil is no claim. A cnf that is not an
// object, that holds no member, or whose x5t#S256 or jkt is not the
// base64url of a SHA-256 refuses the token as malformed: an issuer that
// bound a token meant it to be bound.
func parseConfirmation(v any) (Confirmation, error) {
	var c Confirmation
	if v == nil {
		return c, nil
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return c, malformedConfirmation("is not an object holding a confirmation method")
	}
	for name, value := range m {
		switch name {
		case "x5t#S256":
			if !decodeSHA256(value, &c.CertificateSHA256) {
				return Confirmation{}, malformedConfirmation("x5t#S256 is not the base64url of a SHA-256")
			}
			c.Methods |= ConfirmCertificate
		case "jkt":
			if !decodeSHA256(value, &c.KeyThumbprint) {
				return Confirmation{}, malformedConfirmation("jkt is not the base64url of a SHA-256")
			}
			c.Methods |= ConfirmDPoPKey
		default:
			c.Methods |= ConfirmUnsupported
		}
	}
	return c, nil
}

// parseConfirmationJSON is parseConfirmation of the JSON raw; empty is no
// claim.
func parseConfirmationJSON(raw json.RawMessage) (Confirmation, error) {
	if len(raw) == 0 {
		return Confirmation{}, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return Confirmation{}, malformedConfirmation("is not JSON")
	}
	return parseConfirmation(v)
}

// decodeSHA256 decodes v, which must be a string of the 43 characters of
// the unpadded base64url of 32 bytes, into dst.
func decodeSHA256(v any, dst *[32]byte) bool {
	s, ok := v.(string)
	if !ok || len(s) != 43 {
		return false
	}
	n, err := base64.RawURLEncoding.Strict().Decode(dst[:], []byte(s))
	return err == nil && n == len(dst)
}

func malformedConfirmation(what string) *TokenError {
	return &TokenError{Reason: ReasonTokenMalformed, Description: "the token's cnf claim " + what}
}

// confirm checks that the client presenting a token with c holds what c
// binds it to: cert is the client's certificate, as the proxy forwarded
// it, and proofKey the RFC 7638 thumbprint of the key of the request's
// verified DPoP proof, nil for a token sent as Bearer. Every method that
// c holds must be confirmed, and a method scopegate does not verify never
// is. It does not allocate on success.
func (c *Confirmation) confirm(cert Certificate, proofKey *[32]byte) *TokenError {
	if c.Methods&ConfirmUnsupported != 0 {
		return &TokenError{Reason: ReasonBindingUnsupported,
			Description: "the token is bound by a confirmation method that is not supported"}
	}
	if c.Methods&ConfirmCertificate != 0 {
		if cert == "" {
			return &TokenError{Reason: ReasonCertificateMissing,
				Description: "the token is bound to a client certificate, and the request came without one"}
		}
		sum, err := cert.SHA256()
		if err != nil {
			return &TokenError{Reason: ReasonCertificateMissing,
				Description: "the token is bound to a client certificate, and the request's certificate could not be read", Err: err}
		}
		if subtle.ConstantTimeCompare(sum[:], c.CertificateSHA256[:]) != 1 {
			return &TokenError{Reason: ReasonCertificateMismatch,
				Description: "the token is bound to another client certificate"}
		}
	}
	if c.Methods&ConfirmDPoPKey != 0 {
		if proofKey == nil {
			return &TokenError{Reason: ReasonDPoPRequired,
				Description: "the token is bound to a DPoP key: send it with the DPoP scheme and a proof"}
		}
		if subtle.ConstantTimeCompare(proofKey[:], c.KeyThumbprint[:]) != 1 {
			return &TokenError{Reason: ReasonDPoPKeyMismatch,
				Description: "the token is bound to another key than the DPoP proof's"}
		}
	}
	return nil
}

// meets reports whether a token with c, its binding confirmed, meets the
// binding requirement b.
func (c *Confirmation) meets(b policy.Binding) bool {
	return b.MetBy(c.Methods&ConfirmCertificate != 0, c.Methods&ConfirmDPoPKey != 0)
}

// requireBinding refuses a token with c, verified by an issuer or an
// introspection whose require_binding is b, when c does not bind it as b
// asks. The binding itself is confirmed later, by the decision.
func (c *Confirmation) requireBinding(b policy.Binding) error {
	if !c.meets(b) {
		return &TokenError{Reason: ReasonBindingRequired,
			Description: "the token's issuer accepts only tokens bound to " + bindingWords(b)}
	}
	return nil
}

// bindingWords says what the binding requirement b asks for.
func bindingWords(b policy.Binding) string {
	switch b {
	case policy.BindingMTLS:
		return "a client certificate"
	case policy.BindingDPoP:
		return "a DPoP key"
	}
	return "a client certificate or a DPoP key"
}
