package authz

import (
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The checks of a JWT's claims, and their copy into Claims; claims.go has
// the checks that introspection answers share.

// claims checks the claims m of a token of the issuer at now and returns
// them as Claims, whose strings, lists and maps are shared with the claims
// of other tokens through in.
func (is *jwtIssuer) claims(m jwt.MapClaims, now time.Time, extra []string, in *interner) (*Claims, error) {
	var exp, nbf, iat time.Time
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"exp", &exp}, {"nbf", &nbf}, {"iat", &iat}} {
		t, err := timeClaim(m, f.name)
		if err != nil {
			return nil, err
		}
		*f.dst = t
	}
	switch {
	case exp.IsZero():
		return nil, &TokenError{Reason: ReasonTokenInvalid, Description: "the token has no expiry (exp)"}
	case !now.Before(exp.Add(is.leeway)):
		return nil, &TokenError{Reason: ReasonTokenExpired, Description: "the token has expired"}
	}
	if err := notYetValid(nbf, iat, now, is.leeway); err != nil {
		return nil, err
	}
	switch {
	case is.maxLifetime > 0 && iat.IsZero():
		return nil, &TokenError{Reason: ReasonTokenLifetime, Description: "the token has no issue time (iat) to bound its lifetime"}
	case is.maxLifetime > 0 && exp.Sub(iat) > is.maxLifetime:
		return nil, &TokenError{Reason: ReasonTokenLifetime, Description: "the token's lifetime is longer than its issuer allows"}
	}
	var typ, tokenUse string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"typ", &typ}, {"token_use", &tokenUse}} {
		if err := stringClaim(m, f.name, f.dst); err != nil {
			return nil, err
		}
	}
	if err := notAnAccessToken(typ, tokenUse); err != nil {
		return nil, err
	}
	aud, err := m.GetAudience()
	if err != nil {
		return nil, malformedClaim("aud", err)
	}
	if len(is.audiences) > 0 && !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(is.audiences, a) }) {
		return nil, &TokenError{Reason: ReasonBadAudience, Description: "the token is not meant for this audience"}
	}
	cnf, err := parseConfirmation(m["cnf"])
	if err != nil {
		return nil, err
	}
	if err := cnf.requireBinding(is.requireBinding); err != nil {
		return nil, err
	}
	c := &Claims{Issuer: is.name, Expiry: exp, IssuedAt: iat, Confirmation: cnf}
	if len(aud) > 0 {
		c.Audience = is.audience(aud, in)
	}
	if err := stringClaim(m, "sub", &c.Subject); err != nil {
		return nil, err
	}
	c.Subject = in.intern(c.Subject)
	for _, name := range is.clientIDs {
		var id string
		if err := stringClaim(m, name, &id); err != nil {
			return nil, err
		}
		if c.ClientID == "" {
			c.ClientID = id
		}
	}
	c.ClientID = in.intern(c.ClientID)
	scopes, err := is.scopes(m)
	if err != nil {
		return nil, err
	}
	c.Scopes = in.internList(scopes)
	for _, name := range extra {
		if s, ok := m[name].(string); ok {
			if c.Extra == nil {
				c.Extra = make(map[string]string, len(extra))
			}
			c.Extra[name] = s
		}
	}
	c.Extra = in.internMap(c.Extra)
	return c, nil
}

// timeClaim returns the time of m's claim name, or the zero time when m
// has none.
func timeClaim(m jwt.MapClaims, name string) (time.Time, error) {
	v, ok := m[name]
	if !ok {
		return time.Time{}, nil
	}
	// tokenClaims decodes every number as a float64.
	secs, ok := v.(float64)
	if !ok {
		return time.Time{}, malformedClaim(name, nil)
	}
	return numericDate(name, secs)
}

// stringClaim sets *dst to m's claim name, leaving it alone when m has
// none; the claim must be a string.
func stringClaim(m jwt.MapClaims, name string, dst *string) error {
	switch s := m[name].(type) {
	case nil:
	case string:
		*dst = s
	default:
		return malformedClaim(name, nil)
	}
	return nil
}

// audience returns aud, the audiences of a token, shared: with the
// issuer's settings when it is one of the audiences they name, as most
// tokens are, else through in.
func (is *jwtIssuer) audience(aud []string, in *interner) []string {
	if len(aud) == 1 {
		if i := slices.Index(is.audiences, aud[0]); i >= 0 {
			return is.audiences[i : i+1 : i+1]
		}
	}
	return in.internList(aud)
}

// scopes returns the scopes in m's scope claim.
func (is *jwtIssuer) scopes(m jwt.MapClaims) ([]string, error) {
	name := is.scopeClaim
	if name == "" {
		name = "scope"
		if _, ok := m[name]; !ok {
			name = "scp"
		}
	}
	switch v := m[name].(type) {
	case nil:
		return nil, nil
	case string:
		return parseScopes(name, v)
	case []any:
		if name == "scope" {
			// RFC 9068 section 2.2.3: scope is a string.
			return nil, malformedClaim(name, nil)
		}
		if len(v) == 0 {
			return nil, nil
		}
		scopes := make([]string, len(v))
		for i, s := range v {
			s, ok := s.(string)
			if !ok {
				return nil, malformedClaim(name, nil)
			}
			if err := checkScope(name, s); err != nil {
				return nil, err
			}
			scopes[i] = s
		}
		return scopes, nil
	}
	return nil, malformedClaim(name, nil)
}

func malformedClaim(name string, err error) *TokenError {
	return &TokenError{Reason: ReasonTokenInvalid, Description: "the token's " + name + " claim is malformed", Err: err}
}
