package authz

import (
	"context"
	"iter"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/scopegate/scopegate/policy"
)

// DefaultMaxTokenSize is the longest bearer token accepted when
// Options.MaxTokenSize is zero. Longer ones are refused before parsing.
const DefaultMaxTokenSize = 8 << 10

// Decision is the answer to one check.
type Decision struct {
	Allow bool
	// WouldDeny marks a deny that dry run turned into an allow (see
	// policy.Route.DryRun): Allow is true, and Status, Reason, Error,
	// Description and Required describe the deny, for the audit log.
	WouldDeny bool
	// Status is the HTTP status Envoy answers with on a deny, 200 on
	// allow; with WouldDeny, the status of the deny.
	Status int
	Reason Reason
	// Description is a human sentence for the caller and the logs. It never
	// contains the token.
	Description string
	// Error is the RFC 6750 error code ("invalid_request", "invalid_token",
	// "insufficient_scope") or "" when the challenge carries none.
	Error string
	Route string // the matched route's name, or ""
	Path  string // the normalized path, or "" when it could not be normalized
	// Required lists the scopes the route requires, for the RFC 6750
	// scope attribute of an insufficient_scope challenge.
	Required []string
	// Claims are the verified token's claims, or nil when no token was
	// verified. They may be shared with a cache: treat them as read-only.
	Claims *Claims
	// Principal is the mTLS peer's principal that the proxy verified
	// (Request.Principal), "" for none; it goes upstream in the principal
	// header of an allow.
	Principal     string
	PolicyVersion string
	// DPoP marks a deny whose challenge is a DPoP one (RFC 9449 §7.1):
	// the request used the DPoP scheme, its token is bound to a DPoP key,
	// or its route requires binding: dpop.
	DPoP bool
	// DPoPNonce is the nonce for the DPoP-Nonce header of the answer, or
	// "" for none.
	DPoPNonce string
}

// HeaderNames names the headers that carry the caller's identity upstream.
// Empty names take the defaults.
type HeaderNames struct {
	ClientID string `yaml:"client_id"` // default x-scopegate-client-id
	Subject  string `yaml:"subject"`   // default x-scopegate-subject
	Scopes   string `yaml:"scopes"`    // default x-scopegate-scopes
	// Issuer carries the token's iss: a client id means something only
	// together with the issuer that vouches for it.
	Issuer string `yaml:"issuer"` // default x-scopegate-issuer
	// Principal carries the mTLS peer's principal that the proxy verified,
	// such as its SPIFFE ID; removed when the peer presented none.
	Principal string `yaml:"principal"` // default x-scopegate-principal
	// Claims maps a token claim to a header, e.g. tenant: x-tenant-id.
	Claims map[string]string `yaml:"claims"`
	// RemoveAuthorization strips the authorization header before the
	// request goes upstream.
	RemoveAuthorization bool `yaml:"remove_authorization"`
}

// Options tunes an Authorizer. The zero value works.
type Options struct {
	Realm        string // the RFC 6750 realm; default "scopegate"
	MaxTokenSize int    // default DefaultMaxTokenSize
	Headers      HeaderNames
	// DPoP verifies the proofs of requests with the DPoP scheme
	// (RFC 9449). Nil refuses that scheme as any other but Bearer.
	DPoP *DPoPVerifier
}

// Authorizer decides requests: it finds the route in the policy, verifies
// the bearer token and checks the route's requirements. It is safe for
// concurrent use, and the policy can be swapped while it serves.
type Authorizer struct {
	policy   atomic.Pointer[policy.Policy]
	verifier Verifier
	realm    string
	maxToken int
	// identity lists every identity header scopegate sets or removes
	// upstream, so that callers cannot send their own values of them.
	identity            []identityHeader
	removeAuthorization bool
	dpop                *DPoPVerifier
}

// New returns an Authorizer that decides against p with tokens checked by v.
func New(p *policy.Policy, v Verifier, opts Options) *Authorizer {
	a := &Authorizer{verifier: v, realm: opts.Realm, maxToken: opts.MaxTokenSize,
		identity: opts.Headers.identity(), removeAuthorization: opts.Headers.RemoveAuthorization, dpop: opts.DPoP}
	if a.realm == "" {
		a.realm = "scopegate"
	}
	if a.maxToken <= 0 {
		a.maxToken = DefaultMaxTokenSize
	}
	a.policy.Store(p)
	return a
}

// identityHeader is one header that carries the caller's identity
// upstream: its name, lower case, and the decision's value of it, "" to
// remove it.
type identityHeader struct {
	name  string
	value func(*Decision) string
}

// claim returns the value of an identity header taken from a decision's
// claims: "" for a decision without a verified token.
func claim(f func(*Claims) string) func(*Decision) string {
	return func(d *Decision) string {
		if d.Claims == nil {
			return ""
		}
		return f(d.Claims)
	}
}

// principal is the value of the principal header. A principal that cannot
// go into a header value, a certificate subject in UTF-8, is not sent.
func principal(d *Decision) string {
	if !visible(d.Principal) {
		return ""
	}
	return d.Principal
}

// identity returns the identity headers that h names, the default names
// in place of empty ones: the client id, subject, scopes, issuer and
// principal headers, then the claim headers in the order of their names.
// It is the one list of what scopegate sets upstream; Names and Upstream
// read it.
func (h HeaderNames) identity() []identityHeader {
	ids := []identityHeader{
		{headerOr(h.ClientID, "x-scopegate-client-id"), claim(func(c *Claims) string { return c.ClientID })},
		{headerOr(h.Subject, "x-scopegate-subject"), claim(func(c *Claims) string { return c.Subject })},
		{headerOr(h.Scopes, "x-scopegate-scopes"), claim(func(c *Claims) string { return strings.Join(c.Scopes, " ") })},
		{headerOr(h.Issuer, "x-scopegate-issuer"), claim(func(c *Claims) string { return c.Issuer })},
		{headerOr(h.Principal, "x-scopegate-principal"), principal},
	}
	fixed := len(ids)
	for name, header := range h.Claims {
		ids = append(ids, identityHeader{strings.ToLower(header), claim(func(c *Claims) string { return c.Extra[name] })})
	}
	slices.SortFunc(ids[fixed:], func(a, b identityHeader) int { return strings.Compare(a.name, b.name) })
	return ids
}

// Names returns the names, lower case, of every identity header that an
// Authorizer with h sets or removes upstream: the headers a proxy must
// overwrite or clear, so that a caller cannot send its own values of them.
// The authorization header that RemoveAuthorization strips is not one of
// them.
func (h HeaderNames) Names() []string {
	ids := h.identity()
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = id.name
	}
	return names
}

func headerOr(name, def string) string {
	if name == "" {
		return def
	}
	return strings.ToLower(name)
}

// SetPolicy swaps the policy. Checks under way finish with the policy they
// started with.
func (a *Authorizer) SetPolicy(p *policy.Policy) { a.policy.Store(p) }

// Policy returns the policy in use.
func (a *Authorizer) Policy() *policy.Policy { return a.policy.Load() }

// Realm returns the RFC 6750 realm of the challenges.
func (a *Authorizer) Realm() string { return a.realm }

// Check decides r. It never fails: whatever goes wrong becomes a deny. On
// a route in dry run (policy.Route.DryRun), a deny that the token or the
// policy causes is allowed and marked WouldDeny.
func (a *Authorizer) Check(ctx context.Context, r *Request) Decision {
	p := a.policy.Load()
	d, route, decided := match(p, r, true)
	if !decided {
		if a.dpop != nil && hasScheme(r.Authorization, dpopScheme) {
			d = a.verifyDPoP(ctx, d, route, r)
		} else if token, reason, desc := bearer(r.Authorization, a.maxToken); reason != "" {
			d = d.badBearer(reason, desc)
		} else {
			d = a.verify(ctx, d, route, r, token, nil)
		}
		if !d.Allow && a.dpop != nil && (d.Reason == ReasonDPoPRequired ||
			route != nil && route.Require.Binding == policy.BindingDPoP) {
			d.DPoP = true
		}
	}
	return d.dryRun(p, route)
}

// Decide decides r as Check does for a request whose bearer token verified
// to claims, or that carries no token when claims is nil. It runs the code
// Check runs once the token is verified, on the same policy, and needs no
// Verifier: `scopegate policy test` decides its test cases with it. The
// claims' Confirmation is taken as confirmed. A request without a host, which Check refuses, is matched against the
// routes without hosts: a test case may leave the host out.
func (a *Authorizer) Decide(r *Request, claims *Claims) Decision {
	p := a.policy.Load()
	d, route, decided := match(p, r, false)
	if !decided {
		if claims == nil {
			_, reason, desc := bearer("", a.maxToken)
			d = d.badBearer(reason, desc)
		} else {
			d = authorize(d, route, claims)
		}
	}
	return d.dryRun(p, route)
}

// match normalizes r's path, checks its authority, finds its route in p
// and checks r's principal against it. It reports whether that decides r
// without a token: a bad path, a bad or, when needHost is set, missing
// host, a deny or public route, a principal the route does not accept, a
// route admitting its principals without a token, or no route under
// default: deny.
//
// A request that says nothing of its host is refused rather than matched
// against the routes without hosts: Envoy always sends one, and the
// upstream may route a host-less request to any of its virtual hosts.
func match(p *policy.Policy, r *Request, needHost bool) (d Decision, route *policy.Route, decided bool) {
	d.PolicyVersion, d.Principal = p.Version, r.Principal
	path, err := policy.NormalizePath(r.Path)
	if err != nil {
		// The error quotes the path, which may hold a token.
		desc := Redact("the request path is not allowed: "+err.Error(), BearerToken(r.Authorization))
		return d.deny(http.StatusBadRequest, ReasonBadPath, "", desc), nil, true
	}
	d.Path = path
	switch host, _, err := policy.ParseAuthority(r.Host); {
	case err != nil:
		return d.deny(http.StatusBadRequest, ReasonBadRequest, "", "the request host is not allowed: "+err.Error()), nil, true
	case host == "" && needHost:
		return d.deny(http.StatusBadRequest, ReasonBadRequest, "", "the request carries no host"), nil, true
	}
	route = p.Match(r.Method, r.Host, path, &r.Context)
	if route == nil {
		if p.Default != policy.DefaultAuthenticated {
			return d.deny(http.StatusForbidden, ReasonNoRoute, "", "no policy route matches this request"), nil, true
		}
		return d, nil, false
	}
	d.Route = route.Name
	switch {
	case route.Deny:
		return d.deny(http.StatusForbidden, ReasonRouteDenied, "", "the policy denies this route"), route, true
	case route.Public:
		d.Allow, d.Status, d.Reason = true, http.StatusOK, ReasonPublic
		return d, route, true
	case !route.Require.PrincipalAllowed(r.Principal):
		// Before the token: no token makes a wrong peer right, and the
		// identity provider is not asked about a request refused anyway.
		if r.Principal == "" {
			return d.deny(http.StatusForbidden, ReasonPrincipalNotAllowed, "", "this route requires a mutual TLS peer, and the request has none"), route, true
		}
		return d.deny(http.StatusForbidden, ReasonPrincipalNotAllowed, "", "the peer's principal is not allowed on this route"), route, true
	case route.Require.PrincipalOnly:
		d.Allow, d.Status, d.Reason = true, http.StatusOK, ReasonAllowed
		return d, route, true
	}
	return d, route, false
}

// verify verifies token, the token of r, confirms its binding and decides
// with its claims. proofKey is the RFC 7638 thumbprint of the key of r's
// verified DPoP proof, or nil for a token sent as Bearer: a token bound to
// a DPoP key is then refused.
func (a *Authorizer) verify(ctx context.Context, d Decision, route *policy.Route, r *Request, token string, proofKey *[32]byte) Decision {
	claims, d, ok := a.verifyToken(ctx, d, r, token)
	if !ok {
		return d
	}
	return a.confirmed(d, route, r, claims, proofKey)
}

// confirmed confirms the binding of claims, a verified token's, and
// decides with them.
func (a *Authorizer) confirmed(d Decision, route *policy.Route, r *Request, claims *Claims, proofKey *[32]byte) Decision {
	// RFC 8705 section 3 and RFC 9449 section 7.2: a bound token is
	// accepted only with its binding confirmed, never as a bearer token.
	if te := claims.Confirmation.confirm(r.Certificate, proofKey); te != nil {
		return d.deny(http.StatusUnauthorized, te.Reason, "invalid_token", te.Description)
	}
	return authorize(d, route, claims)
}

// verifyToken verifies token, the token of r, and checks that its claims
// can go upstream. It reports false with d turned into the deny when they
// cannot.
func (a *Authorizer) verifyToken(ctx context.Context, d Decision, r *Request, token string) (*Claims, Decision, bool) {
	claims, err := verifyFrom(ctx, a.verifier, token, r.Peer)
	if err != nil {
		te := tokenError(err)
		switch {
		case te.Unavailable:
			return nil, d.deny(http.StatusServiceUnavailable, te.Reason, "", te.Description), false
		case te.Reason == ReasonInternal:
			return nil, d.deny(http.StatusInternalServerError, te.Reason, "", te.Description), false
		}
		return nil, d.deny(http.StatusUnauthorized, te.Reason, "invalid_token", te.Description), false
	}
	if claims == nil {
		return nil, d.deny(http.StatusInternalServerError, ReasonInternal, "", "the token could not be verified"), false
	}
	if !headerSafe(claims) {
		return nil, d.deny(http.StatusUnauthorized, ReasonTokenInvalid, "invalid_token", "the token's identity claims hold characters that cannot go into a header"), false
	}
	return claims, d, true
}

// headerSafe reports whether every claim that goes upstream as a header
// value is visible ASCII or space: a claim with CR, LF or NUL would split
// or truncate the upstream request's headers, in whatever proxy fails to
// refuse it.
func headerSafe(c *Claims) bool {
	if !visible(c.Issuer) || !visible(c.ClientID) || !visible(c.Subject) {
		return false
	}
	for _, s := range c.Scopes {
		if !visible(s) {
			return false
		}
	}
	for _, v := range c.Extra {
		if !visible(v) {
			return false
		}
	}
	return true
}

func visible(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// authorize checks the requirements of route, nil for a request no route
// matches under default: authenticated, against a verified token's claims,
// whose binding is confirmed.
func authorize(d Decision, route *policy.Route, claims *Claims) Decision {
	d.Claims = claims
	if route != nil {
		req := &route.Require
		if !claims.Confirmation.meets(req.Binding) {
			return d.deny(http.StatusUnauthorized, ReasonBindingRequired, "invalid_token",
				"this route accepts only tokens bound to "+bindingWords(req.Binding))
		}
		// A client id or an audience means something only together with
		// the issuer that vouches for it: the issuer is checked first.
		if !req.IssuerAllowed(claims.Issuer) {
			return d.deny(http.StatusForbidden, ReasonIssuerNotAllowed, "", "the token's issuer is not accepted on this route")
		}
		if !req.AudienceAllowed(claims.Audience) {
			return d.deny(http.StatusUnauthorized, ReasonAudienceNotAllowed, "invalid_token", "the token's audience is not accepted on this route")
		}
		if !req.ClientAllowed(claims.ClientID) {
			return d.deny(http.StatusForbidden, ReasonClientNotAllowed, "", "this client is not allowed on this route")
		}
		if !req.ScopesMet(claims.Scopes) {
			d.Required = req.Required()
			return d.deny(http.StatusForbidden, ReasonInsufficientScope, "insufficient_scope", missingScopes(req, claims.Scopes))
		}
	}
	d.Allow, d.Status, d.Reason = true, http.StatusOK, ReasonAllowed
	return d
}

// badBearer denies a request whose authorization header holds no usable
// bearer token, for the reason bearer gave.
func (d Decision) badBearer(reason Reason, desc string) Decision {
	code := "invalid_request"
	if reason == ReasonTokenMissing {
		// RFC 6750 section 3.1: a request without credentials gets a
		// challenge without an error code.
		code = ""
	}
	return d.deny(http.StatusUnauthorized, reason, code, desc)
}

// dryRun turns d, if it is a deny, into an allow marked WouldDeny when the
// route that decided it is in dry run, or, for a request no route matches,
// when the policy is. Dry run covers what the policy decides about the
// caller: its token and the route's requirements. It never covers a path
// that cannot be matched safely, a request without HTTP attributes or an
// internal error.
func (d Decision) dryRun(p *policy.Policy, route *policy.Route) Decision {
	dry := p.DryRun
	if route != nil {
		dry = route.DryRun
	}
	if d.Allow || !dry {
		return d
	}
	switch d.Reason {
	case ReasonBadPath, ReasonBadRequest, ReasonInternal:
		return d
	}
	d.Allow, d.WouldDeny = true, true
	return d
}

// missingScopes says which scopes a token lacks, so that the owner of the
// calling service can tell what to ask its identity provider for.
func missingScopes(req *policy.Requirement, granted []string) string {
	allOf, anyOf := req.MissingScopes(granted)
	var b strings.Builder
	b.WriteString("the token lacks ")
	if len(allOf) > 0 {
		b.WriteString("scope ")
		b.WriteString(strings.Join(allOf, ", "))
	}
	if anyOf {
		if len(allOf) > 0 {
			b.WriteString(" and ")
		}
		b.WriteString("one of ")
		b.WriteString(strings.Join(req.AnyOf, ", "))
	}
	return b.String()
}

func (d Decision) deny(status int, reason Reason, code, desc string) Decision {
	d.Allow, d.Status, d.Reason, d.Error, d.Description = false, status, reason, code, desc
	return d
}

// hasScheme reports whether the authorization header h starts with
// scheme, which is lower case and ends in a space, case-insensitively.
func hasScheme(h, scheme string) bool {
	return len(h) >= len(scheme) && strings.EqualFold(h[:len(scheme)], scheme)
}

// bearer extracts the token from an authorization header value. The scheme
// is case-insensitive and exactly one token must follow it: a header that
// Envoy joined from several authorization headers is malformed.
func bearer(h string, maxSize int) (token string, reason Reason, desc string) {
	if h == "" {
		return "", ReasonTokenMissing, "the request carries no bearer token"
	}
	const scheme = "bearer "
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", ReasonTokenMalformed, "the authorization header is not a bearer token"
	}
	token = strings.TrimLeft(h[len(scheme):], " ")
	if len(token) > maxSize {
		return "", ReasonTokenTooLarge, "the bearer token is too large"
	}
	if !isB64Token(token) {
		return "", ReasonTokenMalformed, "the authorization header must hold exactly one bearer token"
	}
	return token, "", ""
}

// isB64Token reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && b64tokenChar[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// b64tokenChar marks the characters of a b64token before its padding: a
// table, since this runs over every byte of every token.
var b64tokenChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// Upstream yields the identity headers of an allowed request, each name
// with the value to set or with "" when the header is to be removed.
// Every identity header the caller may have sent is either overwritten
// or removed, so none can be spoofed.
func (a *Authorizer) Upstream(d *Decision) iter.Seq2[string, string] {
	return func(yield func(name, value string) bool) {
		for _, id := range a.identity {
			if !yield(id.name, id.value(d)) {
				return
			}
		}
		if a.removeAuthorization {
			yield("authorization", "")
		}
	}
}

// Challenge returns the WWW-Authenticate value of a deny, or "" when the
// deny has none (a 403 that no token could fix). A deny marked DPoP gets a
// DPoP challenge with the accepted algs (RFC 9449 §7.1) instead of a
// Bearer one.
func (a *Authorizer) Challenge(d *Decision) string {
	if d.Allow || (d.Status != http.StatusUnauthorized && d.Error != "insufficient_scope") {
		return ""
	}
	if d.DPoP && a.dpop != nil {
		return a.dpop.Challenge(a.realm, d.Error, d.Description)
	}
	var b strings.Builder
	b.WriteString(`Bearer realm="`)
	b.WriteString(quote(a.realm))
	b.WriteByte('"')
	if d.Error != "" {
		b.WriteString(`, error="`)
		b.WriteString(d.Error)
		b.WriteString(`", error_description="`)
		b.WriteString(quote(d.Description))
		b.WriteByte('"')
	}
	if len(d.Required) > 0 {
		b.WriteString(`, scope="`)
		b.WriteString(quote(strings.Join(d.Required, " ")))
		b.WriteByte('"')
	}
	return b.String()
}

// quote keeps a value inside an RFC 7230 quoted-string: RFC 6750 limits
// error_description and scope to printable ASCII without '"' and '\'.
func quote(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '\''
		}
	}
	return string(b)
}

// AppendBody appends the small JSON body of a deny to b.
func (d *Decision) AppendBody(b []byte) []byte {
	code := d.Error
	if code == "" {
		switch d.Status {
		case http.StatusBadRequest:
			code = "invalid_request"
		case http.StatusServiceUnavailable:
			code = "temporarily_unavailable"
		case http.StatusInternalServerError:
			code = "server_error"
		default:
			code = "access_denied"
		}
	}
	b = append(b, `{"error":`...)
	b = appendJSONString(b, code)
	if d.Description != "" {
		b = append(b, `,"error_description":`...)
		b = appendJSONString(b, d.Description)
	}
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, string(d.Reason))
	if d.Route != "" {
		b = append(b, `,"route":`...)
		b = appendJSONString(b, d.Route)
	}
	if len(d.Required) > 0 {
		b = append(b, `,"scope":"`...)
		for i, s := range d.Required {
			if i > 0 {
				b = append(b, ' ')
			}
			b = appendJSONStringContent(b, s)
		}
		b = append(b, '"')
	}
	return append(b, '}')
}
