package authz

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/scopegate/scopegate/policy"
)

// dpopScheme is the authorization scheme of a DPoP-bound token (RFC 9449
// §7.1), lower case and with the space that follows it.
const dpopScheme = "dpop "

// verifyDPoP decides r, whose authorization header has the DPoP scheme: it
// verifies the token, requires it to be bound to a DPoP key, verifies the
// request's proof against it and passes the proof key's thumbprint to the
// binding check, so that cnf.jkt counts as confirmed.
func (a *Authorizer) verifyDPoP(ctx context.Context, d Decision, route *policy.Route, r *Request) Decision {
	d.DPoP = true
	token := strings.TrimLeft(r.Authorization[len(dpopScheme):], " ")
	switch {
	case len(token) > a.maxToken:
		return d.badBearer(ReasonTokenTooLarge, "the DPoP token is too large")
	case !isB64Token(token):
		return d.badBearer(ReasonTokenMalformed, "the authorization header must hold exactly one DPoP token")
	}
	claims, d, ok := a.verifyToken(ctx, d, r, token)
	if !ok {
		return d
	}
	if claims.Confirmation.Methods&ConfirmDPoPKey == 0 {
		return d.deny(http.StatusUnauthorized, ReasonDPoPRequired, "invalid_token",
			"the token is sent with the DPoP scheme, and is not bound to a DPoP key (cnf.jkt)")
	}
	htu, err := dpopHTU(r.Scheme, r.Host, r.Path)
	if err != nil {
		return d.deny(http.StatusUnauthorized, ReasonDPoPProofInvalid, "invalid_dpop_proof",
			"the request's URI, that the DPoP proof's htu must name, could not be built: "+htuWhy(r.Scheme))
	}
	check := DPoPCheck{Method: r.Method, HTU: htu, AccessToken: token,
		JKT: base64.RawURLEncoding.EncodeToString(claims.Confirmation.KeyThumbprint[:])}
	jkt, err := a.dpop.Verify(ctx, r.DPoP, check, time.Now())
	if err != nil {
		var de *DPoPError
		if !errors.As(err, &de) {
			return d.deny(http.StatusUnauthorized, ReasonDPoPProofInvalid, "invalid_dpop_proof", "the DPoP proof could not be verified")
		}
		d.DPoPNonce = de.Nonce
		return d.deny(de.Status(), de.Reason, de.Code(), de.Description)
	}
	var key [32]byte
	if !decodeSHA256(jkt, &key) {
		return d.deny(http.StatusInternalServerError, ReasonInternal, "", "the DPoP proof's key thumbprint could not be read")
	}
	return a.confirmed(d, route, r, claims, &key)
}

// htuWhy says why no htu could be built for a request with scheme.
func htuWhy(scheme string) string {
	if scheme == "" {
		return "the proxy did not say whether the request came over http or https"
	}
	return "its scheme, host or path is not one a URI can hold"
}
