package authz

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scopegate/scopegate/policy"
)

// Defaults of the JWT verification settings.
const (
	DefaultLeeway          = 30 * time.Second
	DefaultRefreshInterval = 5 * time.Minute
	DefaultRefetchCooldown = 10 * time.Second
)

// maxLeeway bounds Issuer.Leeway: a clock skew of minutes is a broken clock,
// and a longer leeway would keep expired tokens alive.
const maxLeeway = 5 * time.Minute

// jwtAlgorithms are the algorithms an issuer may allow. All are asymmetric:
// with HS256 and its kin the verifier's key is the signer's, and a public
// key used as an HMAC secret lets anyone sign.
var jwtAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// defaultJWTAlgorithms are the algorithms of an issuer that names none.
var defaultJWTAlgorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}

// Issuer configures one trusted token issuer.
type Issuer struct {
	// Issuer is the issuer's identifier; a token is the issuer's when its
	// iss is exactly this.
	Issuer string `yaml:"issuer"`
	// JWKSURI is where the issuer publishes its keys. It must be https, or
	// http to a loopback host.
	JWKSURI string `yaml:"jwks_uri"`
	// Discovery finds the JWKS URL in the issuer's OpenID configuration at
	// {issuer}/.well-known/openid-configuration, instead of JWKSURI.
	Discovery bool `yaml:"discovery"`
	// Audiences, when set, are the audiences scopegate accepts: a token's
	// aud must name at least one of them.
	Audiences []string `yaml:"audiences"`
	// Algorithms are the signature algorithms accepted; default RS256,
	// PS256, ES256 and EdDSA. RS, PS and ES with 256, 384 or 512, and
	// EdDSA, may be named; none and the HS algorithms never.
	Algorithms []string `yaml:"algorithms"`
	// Leeway is the clock skew tolerated on exp, nbf and iat; nil means
	// DefaultLeeway. It may not exceed 5m.
	Leeway *time.Duration `yaml:"leeway"`
	// MaxLifetime, when set, refuses a token whose exp is more than this
	// after its iat, and a token without iat.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// Type, when set, is the typ header required, such as "at+jwt"
	// (RFC 9068). It is compared case-insensitively, with or without the
	// "application/" prefix.
	Type string `yaml:"type"`
	// ScopeClaim names the claim holding the scopes: "scope", a
	// space-delimited string (RFC 9068), or "scp", an array or a
	// space-delimited string. Empty means scope when the token has it,
	// else scp.
	ScopeClaim string `yaml:"scope_claim"`
	// ClientIDClaims are the claims that hold the client id, the first one
	// present deciding; empty means client_id, then azp. sub is a client
	// id only when named: in a token a user obtained it is the user.
	ClientIDClaims []string `yaml:"client_id_claims"`
	// IntrospectJWTs sends the issuer's JWTs to introspection instead of
	// verifying them locally, so that revocation takes effect (within the
	// introspection cache's max_ttl).
	IntrospectJWTs bool `yaml:"introspect_jwts"`
	// AllowInsecureHTTP lets JWKSURI, and the issuer with Discovery, be
	// plain http to any host, not only to a loopback one: for a provider
	// reached over a network that protects the traffic itself, such as a
	// service mesh with mutual TLS. Elsewhere keys fetched in the clear
	// could be replaced on the way. Redirects still never go to plain
	// http.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
	// RequireBinding refuses the issuer's tokens that are not bound to
	// what it names (mtls, dpop or any), as a route's require.binding
	// does for a route, on every route: for an issuer that issues only
	// sender-constrained tokens, so that a stolen one is of no use.
	RequireBinding policy.Binding `yaml:"require_binding"`
}

// FieldError is a problem with one setting.
type FieldError struct {
	Field string // the setting's YAML name, relative to its block
	Msg   string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate returns every problem with i's settings, with fields named
// relative to the issuer.
func (i *Issuer) Validate() []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if i.Issuer == "" {
		add("issuer", "the issuer (the iss of its tokens) is required")
	}
	switch {
	case i.Discovery && i.JWKSURI != "":
		add("jwks_uri", "set jwks_uri or discovery, not both")
	case i.Discovery:
		if err := checkKeyURL(i.Issuer, i.AllowInsecureHTTP); err != nil && i.Issuer != "" {
			add("issuer", "discovery needs the issuer to be a URL: %v", err)
		}
	case i.JWKSURI == "":
		add("jwks_uri", "the URL of the issuer's keys is required, unless discovery is set")
	default:
		if err := checkKeyURL(i.JWKSURI, i.AllowInsecureHTTP); err != nil {
			add("jwks_uri", "%v", err)
		}
	}
	for n, a := range i.Audiences {
		if a == "" {
			add(fmt.Sprintf("audiences[%d]", n), "an audience must not be empty")
		}
	}
	checkAlgorithms(i.Algorithms, "only asymmetric signatures prove who signed", add)
	if i.Leeway != nil && (*i.Leeway < 0 || *i.Leeway > maxLeeway) {
		add("leeway", "must be between 0s and %v", maxLeeway)
	}
	if i.MaxLifetime < 0 {
		add("max_lifetime", "must not be negative")
	}
	switch i.ScopeClaim {
	case "", "scope", "scp":
	default:
		add("scope_claim", `%q is not "scope" or "scp"`, i.ScopeClaim)
	}
	validateClientIDClaims(i.ClientIDClaims, add)
	if err := i.RequireBinding.Check(); err != nil {
		add("require_binding", "%v", err)
	}
	return errs
}

// checkAlgorithms reports, through add, each of algs that is not one of
// jwtAlgorithms, saying why for none and the HS algorithms.
func checkAlgorithms(algs []string, whyNever string, add func(field, format string, args ...any)) {
	for n, alg := range algs {
		field := fmt.Sprintf("algorithms[%d]", n)
		switch {
		case slices.Contains(jwtAlgorithms, alg):
		case strings.EqualFold(alg, "none") || strings.HasPrefix(strings.ToUpper(alg), "HS"):
			add(field, "%q is never accepted: %s", alg, whyNever)
		default:
			add(field, "%q is not one of %s", alg, strings.Join(jwtAlgorithms, ", "))
		}
	}
}
