package authz

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// parse reads an introspection response received at now. Members are
// matched by exact name, and a member of the wrong JSON type fails the whole
// response: a provider's answer is trusted only when it is well formed.
func (in *Introspector) parse(body []byte, now time.Time) (CachedToken, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return CachedToken{}, introspectionFailed("the introspection response is not a JSON object", err)
	}
	var active bool
	if ok, err := member(m, "active", &active); !ok || err != nil {
		return CachedToken{}, introspectionFailed("the introspection response has no boolean active member", err)
	}
	if !active {
		return CachedToken{Until: now.Add(in.negTTL)}, nil
	}
	var (
		c                      = &Claims{}
		scope, tokenType       string
		typ, tokenUse          string
		exp, nbf, iat          float64
		hasExp, hasNbf, hasIat bool
		aud                    audience
		cnf                    json.RawMessage
		clientIDs              = make([]string, len(in.clientIDs))
		errs                   []error
	)
	for _, f := range []struct {
		name string
		v    any
		has  *bool
	}{
		{"iss", &c.Issuer, nil}, {"sub", &c.Subject, nil}, {"aud", &aud, nil}, {"scope", &scope, nil},
		{"token_type", &tokenType, nil}, {"typ", &typ, nil}, {"token_use", &tokenUse, nil},
		{"exp", &exp, &hasExp}, {"nbf", &nbf, &hasNbf}, {"iat", &iat, &hasIat}, {"cnf", &cnf, nil},
	} {
		ok, err := member(m, f.name, f.v)
		if err != nil {
			errs = append(errs, err)
		}
		if f.has != nil {
			*f.has = ok
		}
	}
	for i, name := range in.clientIDs {
		if _, err := member(m, name, &clientIDs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return CachedToken{}, introspectionFailed("the introspection response is malformed", errors.Join(errs...))
	}
	// The access token types of RFC 6749 section 7.1: scopegate checks no
	// proof of possession, so a DPoP- or MAC-bound token must not pass as a
	// bearer token. Okta answers Bearer for its refresh tokens too.
	if tokenType != "" && !strings.EqualFold(tokenType, "bearer") {
		return CachedToken{}, &TokenError{Reason: ReasonTokenType, Description: "the token is not a bearer access token"}
	}
	if err := notAnAccessToken(typ, tokenUse); err != nil {
		return CachedToken{}, err
	}
	var notBefore time.Time
	for _, f := range []struct {
		name string
		secs float64
		has  bool
		dst  *time.Time
	}{{"exp", exp, hasExp, &c.Expiry}, {"nbf", nbf, hasNbf, &notBefore}, {"iat", iat, hasIat, &c.IssuedAt}} {
		if !f.has {
			continue
		}
		t, err := numericDate(f.name, f.secs)
		if err != nil {
			return CachedToken{}, err
		}
		*f.dst = t
	}
	// As for a JWT, with the default leeway. Checked once, when the answer
	// comes: the answer is not cached when it refuses, and once nbf and iat
	// have passed they stay passed.
	if err := notYetValid(notBefore, c.IssuedAt, now, DefaultLeeway); err != nil {
		return CachedToken{}, err
	}
	confirmation, err := parseConfirmationJSON(cnf)
	if err != nil {
		return CachedToken{}, err
	}
	c.Confirmation = confirmation
	c.ClientID = cmp.Or(clientIDs...)
	c.Audience = aud
	scopes, err := parseScopes("scope", scope)
	if err != nil {
		return CachedToken{}, err
	}
	c.Scopes = scopes
	for _, name := range in.extra {
		var s string
		if ok, err := member(m, name, &s); ok && err == nil {
			if c.Extra == nil {
				c.Extra = make(map[string]string, len(in.extra))
			}
			c.Extra[name] = s
		}
	}
	until := now.Add(in.maxTTL)
	if !c.Expiry.IsZero() && c.Expiry.Before(until) {
		until = c.Expiry
	}
	return CachedToken{Claims: c, Until: until}, nil
}

// member decodes the member name of m into v, reporting whether it is
// present; null counts as absent.
func member(m map[string]json.RawMessage, name string, v any) (bool, error) {
	raw, ok := m[name]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("member %s: %w", name, err)
	}
	return true, nil
}

// audience is an aud member: one string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return errors.New("not a string or an array of strings")
	}
	*a = ss
	return nil
}
