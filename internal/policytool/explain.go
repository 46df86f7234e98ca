package policytool

import (
	"fmt"
	"io"
	"strings"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/policy"
)

// Query is the request Explain explains, and its token.
type Query struct {
	Method string
	Host   string
	Path   string // as sent
	// Principal is the mTLS peer's principal, "" for a request without
	// mutual TLS; Context is its route context, Envoy's
	// context_extensions.
	Principal string
	Context   policy.Context
	// NoToken explains a request without a token; otherwise the token is
	// taken as valid, with the claims below.
	NoToken  bool
	Issuer   string
	ClientID string
	Scopes   []string
	Audience []string
}

// Explanation is how a policy decides a request.
type Explanation struct {
	Policy  string `json:"policy"`
	Version string `json:"version"`
	Request string `json:"request"`
	// Path is the normalized path routes are matched against; "" when the
	// path is refused.
	Path string `json:"path"`
	// Routes are the routes that match, in precedence order: the first
	// decides.
	Routes []ExplainedRoute `json:"routes"`
	// Why says why the first route beats the second, or that it is the
	// only one, or what happens without a route.
	Why string `json:"why"`
	// Lacks lists what the token lacks for the deciding route.
	Lacks    []string `json:"lacks"`
	DryRun   bool     `json:"dry_run"` // the deciding route, or the policy for no route, is in dry run
	Decision Outcome  `json:"decision"`
}

// ExplainedRoute is a route that matches the request.
type ExplainedRoute struct {
	Name   string `json:"name"`
	Line   int    `json:"line"`
	Match  string `json:"match"`
	Effect string `json:"effect"`
}

// Explain shows how the policy in policyFile decides q: the normalized
// path, every route that matches in precedence order, the winner and why,
// what the winner requires and what the token lacks, and the decision of
// authz.Authorizer.Decide. It returns the exit status of `scopegate
// check`: 0 when the request would be allowed, 1 when it would be denied,
// 2 when the policy is invalid.
func Explain(w io.Writer, policyFile string, q Query, format Format) int {
	p, err := policy.Load(policyFile)
	if err != nil {
		for _, d := range diagnostics(policyFile, err) {
			d.writeText(w)
		}
		return 2
	}
	e := explain(p, q)
	if format == JSON {
		writeJSON(w, e)
	} else {
		e.writeText(w)
	}
	if e.Decision.Decision == policy.OutcomeDeny {
		return 1
	}
	return 0
}

func explain(p *policy.Policy, q Query) *Explanation {
	var c *authz.Claims
	if !q.NoToken {
		c = &authz.Claims{Issuer: q.Issuer, ClientID: q.ClientID, Subject: q.ClientID, Scopes: q.Scopes, Audience: q.Audience}
	}
	d := authz.New(p, nil, authz.Options{}).Decide(&authz.Request{Method: q.Method, Host: q.Host, Path: q.Path, Principal: q.Principal, Context: q.Context}, c)
	e := &Explanation{
		Policy:   p.File,
		Version:  p.Version,
		Request:  describeQuery(q),
		Path:     d.Path,
		Routes:   []ExplainedRoute{},
		Lacks:    []string{},
		Decision: newOutcome(p, &d),
	}
	if d.Reason == authz.ReasonBadPath {
		e.Why = "the path is refused before any route is looked at"
		return e
	}
	all := p.MatchAll(q.Method, q.Host, d.Path, &q.Context)
	for _, r := range all {
		e.Routes = append(e.Routes, ExplainedRoute{Name: r.Name, Line: r.Line, Match: describeMatch(r), Effect: r.Effect()})
	}
	switch len(all) {
	case 0:
		e.Why = fmt.Sprintf("no route matches, so the policy's default decides: %s", p.Default)
		e.DryRun = p.DryRun
		if p.Default == policy.DefaultAuthenticated {
			e.Lacks = lacks(nil, c)
		}
		return e
	case 1:
		e.Why = "it is the only route that matches"
	default:
		e.Why = fmt.Sprintf("it beats %q because %s", all[1].Name, policy.Precedence(all[0], all[1], q.Host))
	}
	win := all[0]
	e.DryRun = win.DryRun
	if !win.Public && !win.Deny {
		e.Lacks = append(lacksPrincipal(&win.Require, q.Principal), lacks(&win.Require, c)...)
	}
	return e
}

// lacksPrincipal lists what the peer with principal, "" for none, lacks to
// meet req.
func lacksPrincipal(req *policy.Requirement, principal string) []string {
	if req.PrincipalAllowed(principal) {
		return []string{}
	}
	if principal == "" {
		return []string{fmt.Sprintf("a mutual TLS peer with a principal in [%s] (the request has none)", strings.Join(req.Principals, " "))}
	}
	return []string{fmt.Sprintf("a principal in [%s] (the peer's is %q)", strings.Join(req.Principals, " "), principal)}
}

// lacks lists what the claims c, nil for no token, lack to meet req, nil
// for a route that asks for any valid token.
func lacks(req *policy.Requirement, c *authz.Claims) []string {
	if req != nil && req.PrincipalOnly {
		return []string{}
	}
	if c == nil {
		return []string{"a token"}
	}
	out := []string{}
	if req == nil {
		return out
	}
	if !req.IssuerAllowed(c.Issuer) {
		out = append(out, fmt.Sprintf("an issuer in [%s] (the token's is %q)", strings.Join(req.Issuers, " "), c.Issuer))
	}
	if !req.AudienceAllowed(c.Audience) {
		out = append(out, fmt.Sprintf("an audience in [%s] (the token has [%s])", strings.Join(req.Audiences, " "), strings.Join(c.Audience, " ")))
	}
	if !req.ClientAllowed(c.ClientID) {
		out = append(out, fmt.Sprintf("a client in [%s] (the token's is %q)", strings.Join(req.Clients, " "), c.ClientID))
	}
	allOf, anyOf := req.MissingScopes(c.Scopes)
	for _, s := range allOf {
		out = append(out, fmt.Sprintf("scope %s (all_of: %s)", s, strings.Join(req.AllOf, ", ")))
	}
	if anyOf {
		out = append(out, fmt.Sprintf("scope %s (any_of: %s)", strings.Join(req.AnyOf, " or "), strings.Join(req.AnyOf, ", ")))
	}
	return out
}

// describeMatch writes a route's match as "GET,HEAD /orders/** on host
// api.example.com".
func describeMatch(r *policy.Route) string {
	s := "any method"
	if len(r.Methods) > 0 {
		s = strings.Join(r.Methods, ",")
	}
	s += " " + r.Path
	if len(r.Hosts) > 0 {
		s += " on host " + strings.Join(r.Hosts, ", ")
	}
	if len(r.Context) > 0 {
		s += " with route context " + policy.ContextOf(r.Context).String()
	}
	return s
}

func describeQuery(q Query) string {
	s := describePeer(q.Method+" "+q.Path, q.Host, q.Principal, q.Context)
	if q.NoToken {
		return s + ", no token"
	}
	client := q.ClientID
	if client == "" {
		client = "(none)"
	}
	return fmt.Sprintf("%s, valid token of client %s with scopes [%s]", s, client, strings.Join(q.Scopes, " "))
}

// describePeer adds to the request line s what a request says of its
// host, peer and route context.
func describePeer(s, host, principal string, ctx policy.Context) string {
	if host != "" {
		s += " on host " + host
	}
	if principal != "" {
		s += " from peer " + principal
	}
	if !ctx.Empty() {
		s += " with route context " + ctx.String()
	}
	return s
}

func (e *Explanation) writeText(w io.Writer) {
	fmt.Fprintf(w, "policy:    %s (version %s)\n", e.Policy, e.Version)
	fmt.Fprintf(w, "request:   %s\n", e.Request)
	if e.Path == "" {
		fmt.Fprintf(w, "path:      refused: %s\n", e.Decision.Description)
	} else {
		fmt.Fprintf(w, "path:      %s (normalized)\n", e.Path)
	}
	if len(e.Routes) > 0 {
		fmt.Fprintf(w, "routes that match, in precedence order:\n")
		for i, r := range e.Routes {
			fmt.Fprintf(w, "  %d. %s (line %d): %s; %s\n", i+1, r.Name, r.Line, r.Match, r.Effect)
		}
		fmt.Fprintf(w, "winner:    %s: %s\n", e.Routes[0].Name, e.Why)
	} else {
		fmt.Fprintf(w, "winner:    none: %s\n", e.Why)
	}
	for i, l := range e.Lacks {
		label := "lacks:     "
		if i > 0 {
			label = "           "
		}
		fmt.Fprintf(w, "%s%s\n", label, l)
	}
	d := e.Decision
	fmt.Fprintf(w, "decision:  %s %d %s", d.Decision, d.Status, d.Reason)
	if d.Decision == policy.OutcomeWouldDeny {
		fmt.Fprint(w, " (dry run: the request is allowed)")
	}
	fmt.Fprintln(w)
	if d.Description != "" {
		fmt.Fprintf(w, "why:       %s\n", d.Description)
	}
}
