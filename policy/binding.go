package policy

import "fmt"

// Binding is what a token must be bound to, a route's require.binding and
// an issuer's require_binding: the zero value asks for nothing, and a
// plain bearer token meets it.
type Binding string

// The values of a binding requirement.
const (
	BindingNone Binding = ""
	// BindingMTLS asks for a token bound to the client's certificate
	// (RFC 8705, cnf.x5t#S256), presented over mutual TLS with it.
	BindingMTLS Binding = "mtls"
	// BindingDPoP asks for a token bound to a key that signs a DPoP proof
	// (RFC 9449, cnf.jkt), presented with that proof.
	BindingDPoP Binding = "dpop"
	// BindingAny asks for either.
	BindingAny Binding = "any"
)

// Check returns an error when b is not one of the bindings.
func (b Binding) Check() error {
	switch b {
	case BindingNone, BindingMTLS, BindingDPoP, BindingAny:
		return nil
	}
	return fmt.Errorf("is %q; it must be %q, %q or %q", string(b), BindingMTLS, BindingDPoP, BindingAny)
}

// MetBy reports whether a token bound to the client's certificate, when
// mtls is set, and to a DPoP key, when dpop is set, meets b. The caller
// has verified both bindings.
func (b Binding) MetBy(mtls, dpop bool) bool {
	switch b {
	case BindingNone:
		return true
	case BindingMTLS:
		return mtls
	case BindingDPoP:
		return dpop
	case BindingAny:
		return mtls || dpop
	}
	return false
}
