package policy

import (
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// A principal pattern, an entry of require.principals, is one of:
//
//   - a SPIFFE ID, spiffe://cluster.local/ns/billing/sa/api: that ID only;
//   - a SPIFFE ID ending in /*, spiffe://cluster.local/ns/billing/sa/*: the
//     IDs with one more path segment;
//   - a SPIFFE ID ending in /**, spiffe://cluster.local/ns/billing/**: the
//     ID itself and those with any number of further segments, as a path
//     pattern's /** does; spiffe://cluster.local/** is every ID of the
//     trust domain;
//   - anything else, such as a DNS name: that principal exactly.
//
// SPIFFE IDs are parsed by go-spiffe, at load and at check: a principal
// that is not a valid SPIFFE ID, with a dot segment or a percent sign,
// meets no SPIFFE pattern. A wildcard anywhere else is an error, so that
// no pattern means something other than what it reads as.
type principalPattern struct {
	kind principalKind
	// id is the principal, for principalExact; otherwise the SPIFFE ID
	// that the wildcard follows.
	id spiffeid.ID
	// exact is the principal for principalExact.
	exact string
}

type principalKind uint8

const (
	principalExact   principalKind = iota // the whole principal
	principalSegment                      // id/*: one more segment
	principalRest                         // id/**: id and any segments below
)

// parsePrincipal parses one entry of require.principals.
func parsePrincipal(s string) (principalPattern, error) {
	if !strings.HasPrefix(strings.ToLower(s), "spiffe:") {
		if strings.Contains(s, "*") {
			return principalPattern{}, fmt.Errorf("%q has a wildcard, which only a SPIFFE ID may end in (spiffe://DOMAIN/PATH/* or /**); other principals match exactly", s)
		}
		return principalPattern{kind: principalExact, exact: s}, nil
	}
	p := principalPattern{kind: principalExact}
	base := s
	if b, ok := strings.CutSuffix(s, "/**"); ok {
		p.kind, base = principalRest, b
	} else if b, ok := strings.CutSuffix(s, "/*"); ok {
		p.kind, base = principalSegment, b
	}
	if strings.Contains(base, "*") {
		return principalPattern{}, fmt.Errorf("%q has a wildcard before its end: only a last segment of * or ** is allowed", s)
	}
	id, err := spiffeid.FromString(base)
	if err != nil {
		return principalPattern{}, fmt.Errorf("%q is not a SPIFFE ID: %v", s, err)
	}
	if p.kind == principalExact {
		if id.Path() == "" {
			return principalPattern{}, fmt.Errorf("%q names a trust domain, not a workload; write %s/** for every workload of it", s, s)
		}
		p.exact = id.String()
	}
	p.id = id
	return p, nil
}

// matches reports whether principal meets p.
func (p *principalPattern) matches(principal string) bool {
	if p.kind == principalExact {
		return principal == p.exact
	}
	id, err := spiffeid.FromString(principal)
	if err != nil || !id.MemberOf(p.id.TrustDomain()) {
		return false
	}
	path, base := id.Path(), p.id.Path()
	rest, ok := strings.CutPrefix(path, base+"/")
	switch p.kind {
	case principalSegment:
		return ok && rest != "" && !strings.Contains(rest, "/")
	default:
		return path == base || ok && rest != ""
	}
}

// PrincipalAllowed reports whether a peer with principal, "" for a
// request without mutual TLS, may use the route: Principals is empty, or
// principal meets one of its patterns. It does not allocate for a
// Requirement of a parsed policy.
func (r *Requirement) PrincipalAllowed(principal string) bool {
	if len(r.Principals) == 0 {
		return true
	}
	if principal == "" {
		return false
	}
	patterns := r.principals
	if patterns == nil {
		// A Requirement built by hand: patterns that do not parse
		// admit nobody.
		for _, s := range r.Principals {
			if p, err := parsePrincipal(s); err == nil {
				patterns = append(patterns, p)
			}
		}
	}
	for i := range patterns {
		if patterns[i].matches(principal) {
			return true
		}
	}
	return false
}

// principals validates a route's require.principals and require.token.
func (c *checker) principals(at string, rq *requireFile, req *Requirement) {
	req.Principals = c.list(at+".principals", rq.Principals, "allow any peer", func(s string) (string, error) {
		_, err := parsePrincipal(s)
		return s, err
	})
	for _, s := range req.Principals {
		p, _ := parsePrincipal(s) // list kept only those that parse
		req.principals = append(req.principals, p)
	}
	if rq.Token == nil || *rq.Token {
		return
	}
	req.PrincipalOnly = true
	switch {
	case rq.Principals == nil:
		c.errorf(at+".token", "is false, which needs principals: without them no token and no peer would be checked; use public: true for a route open to all")
	case rq.Scopes != nil || rq.Issuers != nil || rq.Clients != nil || rq.Audiences != nil || rq.Binding != "":
		c.errorf(at+".token", "is false, so no token is looked at: the route cannot also require scopes, issuers, clients, audiences or a binding")
	}
}
