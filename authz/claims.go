package authz

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The checks of claims that JWTs and introspection answers share.

// maxNumericDate is the last second of the year 9999.
const maxNumericDate = 253402300799

// numericDate returns the time of secs, the value of the time claim named
// claim (exp, nbf or iat), in whole seconds. It refuses a time before 1970
// or after 9999: no token means one, and converting a float64 beyond the
// range of an int64 to one gives whatever the CPU gives, on amd64 the year
// -292277022657, which passes every check that a time is not in the
// future. So iat 1e300 would be accepted.
func numericDate(claim string, secs float64) (time.Time, error) {
	if !(secs >= 0 && secs <= maxNumericDate) {
		return time.Time{}, &TokenError{Reason: ReasonTokenMalformed,
			Description: "the token's " + claim + " claim is not a time between the years 1970 and 9999"}
	}
	return time.Unix(int64(secs), 0), nil
}

// notYetValid refuses a token whose nbf, or iat, is later than now by more
// than leeway; a zero time is an absent claim.
func notYetValid(nbf, iat, now time.Time, leeway time.Duration) error {
	switch {
	case !nbf.IsZero() && now.Before(nbf.Add(-leeway)):
		return &TokenError{Reason: ReasonTokenNotYetValid, Description: "the token is not valid yet"}
	case !iat.IsZero() && now.Before(iat.Add(-leeway)):
		return &TokenError{Reason: ReasonTokenNotYetValid, Description: "the token is issued in the future"}
	}
	return nil
}

// notAccessTypes are the values of the typ claim (a claim, not the JOSE
// header) by which Keycloak marks its tokens that are not access tokens,
// all signed with the realm's keys and all introspectable: Refresh and
// Offline for refresh tokens, ID and Serialized-ID for ID tokens, Logout
// for back-channel logout tokens. Its access tokens carry Bearer.
var notAccessTypes = []string{"Refresh", "Offline", "ID", "Serialized-ID", "Logout"}

// accessTokenUses are the values of token_use that mark an access token:
// Ory Hydra's introspection answers access_token, and refresh_token for a
// refresh token (both with token_type Bearer); Amazon Cognito's JWTs carry
// access, and id in an ID token signed with the same keys.
var accessTokenUses = []string{"access_token", "access"}

// notAnAccessToken refuses a token whose typ claim or token_use marks it as
// a refresh, ID or logout token; "" is an absent claim. Types are compared
// case-insensitively, as OAuth compares token types.
func notAnAccessToken(typ, tokenUse string) error {
	if i := slices.IndexFunc(notAccessTypes, func(t string) bool { return strings.EqualFold(t, typ) }); i >= 0 {
		return &TokenError{Reason: ReasonTokenType,
			Description: "the token is not an access token: its typ is " + notAccessTypes[i]}
	}
	if tokenUse != "" && !slices.ContainsFunc(accessTokenUses, func(u string) bool { return strings.EqualFold(u, tokenUse) }) {
		return &TokenError{Reason: ReasonTokenType, Description: "the token is not an access token: its token_use says otherwise"}
	}
	return nil
}

// defaultClientIDClaims are the claims that hold a token's client id, the
// first one present deciding, unless an issuer or introspection names its
// own: client_id (RFC 9068, RFC 7662) and azp (OpenID Connect). sub is not
// one of them: in a token a user obtained, sub is the user, who could be
// named like a client on a clients allowlist.
var defaultClientIDClaims = []string{"client_id", "azp"}

// notClientIDClaims are the claims that scopegate reads for another
// meaning, which no client_id_claims may name.
var notClientIDClaims = []string{"iss", "aud", "exp", "nbf", "iat", "scope", "scp", "typ", "token_use", "token_type", "active"}

// validateClientIDClaims reports through add the problems of names, the
// client_id_claims setting.
func validateClientIDClaims(names []string, add func(field, format string, args ...any)) {
	if names != nil && len(names) == 0 {
		add("client_id_claims", "is empty; leave it out for the default %s", strings.Join(defaultClientIDClaims, ", "))
	}
	for i, name := range names {
		field := fmt.Sprintf("client_id_claims[%d]", i)
		switch {
		case name == "":
			add(field, "a claim name must not be empty")
		case slices.Contains(notClientIDClaims, name):
			add(field, "%q is not a client id: scopegate reads that claim for its own meaning", name)
		case slices.Contains(names[:i], name):
			add(field, "%q is listed twice", name)
		}
	}
}

// clientIDClaims returns the client_id_claims setting in effect.
func clientIDClaims(names []string) []string {
	if len(names) == 0 {
		return defaultClientIDClaims
	}
	return slices.Clone(names)
}
