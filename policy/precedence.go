package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Precedence says why route a comes before route b for a request to host,
// when both match it, with whatever route context that request has: a sentence such as "its host api.example.com is
// exact; \"b\" has the wildcard *.example.com". It is for explaining a
// decision; Match decides without it.
func Precedence(a, b *Route, host string) string {
	name, _, _ := splitAuthority(host)
	hk, _ := hostKey(nil, name)
	h := string(hk)
	ka, kb := hostRank(a, h), hostRank(b, h)
	if ka.rank != kb.rank {
		return fmt.Sprintf("its %s beats %q's %s", ka, b.Name, kb)
	}
	if a.Path != b.Path {
		return fmt.Sprintf("its path %s is more specific than %q's %s: %s", a.Path, b.Name, b.Path, pathDifference(a.Path, b.Path))
	}
	if len(a.Methods) > 0 && len(b.Methods) == 0 {
		return fmt.Sprintf("it lists methods and %q lists none", b.Name)
	}
	if contextSpecific(a.Context, b.Context) {
		if len(b.Context) == 0 {
			return fmt.Sprintf("it matches the route context %s and %q matches none", formatContext(a.Context), b.Name)
		}
		return fmt.Sprintf("its route context %s holds %q's %s and more", formatContext(a.Context), b.Name, formatContext(b.Context))
	}
	if len(a.Context) > len(b.Context) {
		// Only a route that gets HEAD from GET and one listing HEAD are
		// ordered by their contexts' sizes alone; Parse refuses others.
		return fmt.Sprintf("its route context %s has more pairs than %q's %s", formatContext(a.Context), b.Name, formatContext(b.Context))
	}
	if slices.Contains(a.Methods, "HEAD") && !slices.Contains(b.Methods, "HEAD") {
		return fmt.Sprintf("it lists HEAD and %q gets HEAD from GET", b.Name)
	}
	// Parse rejects routes that tie, so this is a route compared with
	// itself.
	return "it is the same route"
}

// hostMatch is how a route's hosts match a request's host.
type hostMatch struct {
	rank    int    // higher comes first: 1 for none listed, 2+len(suffix) for a wildcard, max for exact
	pattern string // the host or wildcard that matched; "" for none listed
}

func (k hostMatch) String() string {
	switch {
	case k.pattern == "":
		return "lack of a host constraint"
	case strings.HasPrefix(k.pattern, "*."):
		return "host wildcard " + k.pattern
	}
	return "exact host " + k.pattern
}

// hostRank returns how r's hosts match the request host h, in the form
// hostKey returns.
func hostRank(r *Route, h string) hostMatch {
	if len(r.Hosts) == 0 {
		return hostMatch{rank: 1}
	}
	if slices.Contains(r.Hosts, h) {
		return hostMatch{rank: math.MaxInt, pattern: h}
	}
	best := hostMatch{}
	for _, pat := range r.Hosts {
		suffix, ok := strings.CutPrefix(pat, "*.")
		if ok && strings.HasSuffix(h, "."+suffix) && 2+len(suffix) > best.rank {
			best = hostMatch{rank: 2 + len(suffix), pattern: pat}
		}
	}
	return best
}

// pathDifference says where pattern a, which precedes b, first differs
// from it. Both match one request, so either a segment differs in kind or
// a ends where b goes on with /**.
func pathDifference(a, b string) string {
	sa, sb := patternSegments(a), patternSegments(b)
	for i := range sa {
		if i == len(sb) {
			break
		}
		ka, kb := segmentKind(sa[i]), segmentKind(sb[i])
		if ka != kb {
			return fmt.Sprintf("segment %d is %s where the other has %s", i+1, describeSegment(sa[i]), describeSegment(sb[i]))
		}
	}
	return "it ends where the other goes on with /**"
}

// patternSegments splits a canonical pattern into its segments.
func patternSegments(pattern string) []string {
	if pattern == "/" {
		return nil
	}
	return strings.Split(pattern[1:], "/")
}

// segmentKind returns the kind of a segment of a canonical pattern.
func segmentKind(seg string) segKind {
	switch {
	case seg == "**":
		return segRest
	case seg == "*" || strings.HasPrefix(seg, "{"):
		return segParam
	}
	return segLiteral
}

func describeSegment(seg string) string {
	switch segmentKind(seg) {
	case segRest:
		return "**"
	case segParam:
		return "the parameter " + seg
	}
	return fmt.Sprintf("the literal %q", seg)
}
