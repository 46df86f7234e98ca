package policy

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/scopegate/scopegate/internal/yamlfile"
)

// Warning is a problem Lint finds in a valid policy: the server accepts
// it, but its author may not mean it.
type Warning struct {
	Check  string // the kind of problem, a stable name: "overlap", "unknown_scope", "unknown_issuer" or "principal_only"
	File   string
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Field  string // e.g. "routes[2].match"
	Msg    string
	// Source is the offending line of the file with a caret under the
	// column, as yamlfile.Error.Source returns it, or "".
	Source string
}

// String formats w as "file:line:column: field: message", the form of
// the errors Parse returns.
func (w *Warning) String() string {
	e := yamlfile.Error{File: w.File, Line: w.Line, Column: w.Column, Field: w.Field, Msg: w.Msg}
	return e.Error()
}

// Lint returns the warnings of p, a policy returned by Parse or Load, in
// the order of the file:
//
//   - overlap: two routes with different outcomes both match some
//     request, so that precedence decides between them. The warning is
//     at the route that wins, with an example request and why it wins. A
//     route matching every request (/** without hosts or methods) acts as
//     a default, and its overlaps are not reported.
//   - unknown_scope: a route requires a scope that no issuer of the
//     policy's issuers section grants, or, for a route listing issuers,
//     none of those.
//   - unknown_issuer: a route requires an issuer that the issuers section
//     does not list, usually a typo: no token would meet it.
//   - principal_only: a route admits requests on the mTLS peer's
//     principal alone (require.token: false), without a token: whatever
//     holds a certificate for one of its principals, such as a
//     compromised sidecar, gets through.
//
// Without an issuers section there is nothing to compare with, and
// neither unknown_scope nor unknown_issuer is reported.
//
// Lint compares every pair of routes, so it is for reviewing a policy,
// not for loading one.
func Lint(p *Policy) []*Warning {
	if p.src == nil {
		return nil
	}
	l := &linter{p: p}
	l.overlaps()
	l.unknownIssuers()
	l.unknownScopes()
	l.principalOnly()
	slices.SortStableFunc(l.out, func(a, b *Warning) int { return cmp.Compare(a.Line, b.Line) })
	return l.out
}

type linter struct {
	p   *Policy
	out []*Warning
}

func (l *linter) warn(check, path, format string, args ...any) {
	e := l.p.src.Errorf(path, format, args...)
	l.out = append(l.out, &Warning{Check: check, File: e.File, Line: e.Line, Column: e.Column, Field: e.Field, Msg: e.Msg, Source: e.Source()})
}

func (l *linter) overlaps() {
	routes := l.p.Routes
	// Split once: a policy of n routes has n²/2 pairs.
	segs := make([][]string, len(routes))
	for i, r := range routes {
		segs[i] = patternSegments(r.Path)
	}
	for i, a := range routes {
		if matchesEverything(a) {
			continue
		}
		for j := i + 1; j < len(routes); j++ {
			b := routes[j]
			if matchesEverything(b) || sameOutcome(a, b) {
				continue
			}
			ex, ok := overlap(a, b, segs[i], segs[j])
			if !ok {
				continue
			}
			ctx := ContextOf(ex.context)
			all := l.p.MatchAll(ex.method, ex.host, ex.path, &ctx)
			wi, lj := i, j
			ia, ib := slices.Index(all, a), slices.Index(all, b)
			if ia < 0 || ib < 0 {
				// overlap builds a request both would match, but a route
				// listing HEAD takes HEAD from one matching it for GET.
				continue
			}
			if ib < ia {
				wi, lj = j, i
			}
			win, lose := routes[wi], routes[lj]
			msg := fmt.Sprintf("route %q and route %q at line %d both match %s, and %q decides it because %s; %q %s, while %q %s",
				win.Name, lose.Name, lose.Line, ex, win.Name, Precedence(win, lose, ex.host),
				win.Name, win.Effect(), lose.Name, lose.Effect())
			if win.DryRun && !lose.DryRun {
				msg += fmt.Sprintf("; while %q is in dry run, requests that %q would deny are allowed", win.Name, lose.Name)
			}
			l.warn("overlap", routePath(wi)+".match", "%s", msg)
		}
	}
}

func (l *linter) principalOnly() {
	for i, r := range l.p.Routes {
		if r.Require.PrincipalOnly {
			l.warn("principal_only", routePath(i)+".require.token",
				"route %q admits the peers [%s] on their mTLS principal alone, without a token; make sure no other workload can get a certificate for these principals", r.Name, strings.Join(r.Require.Principals, " "))
		}
	}
}

// issuer returns the issuer iss of the issuers section, or nil.
func (l *linter) issuer(iss string) *Issuer {
	for _, is := range l.p.Issuers {
		if is.Issuer == iss {
			return is
		}
	}
	return nil
}

func (l *linter) unknownIssuers() {
	if len(l.p.Issuers) == 0 {
		return
	}
	for i, r := range l.p.Routes {
		// Parse refuses repeated issuers, so Issuers has the file's order.
		for j, iss := range r.Require.Issuers {
			if l.issuer(iss) == nil {
				l.warn("unknown_issuer", fmt.Sprintf("%s.require.issuers[%d]", routePath(i), j),
					"route %q requires issuer %q, which issuers does not list", r.Name, iss)
			}
		}
	}
}

func (l *linter) unknownScopes() {
	if len(l.p.Issuers) == 0 {
		return
	}
	for i, r := range l.p.Routes {
		from, by := l.p.Issuers, "no issuer in issuers grants"
		if len(r.Require.Issuers) > 0 {
			from, by = nil, "none of its issuers grants"
			for _, iss := range r.Require.Issuers {
				if is := l.issuer(iss); is != nil {
					from = append(from, is)
				}
			}
			if len(from) < len(r.Require.Issuers) {
				continue // what an unknown issuer grants is unknown; unknown_issuer says so
			}
		}
		granted := make(map[string]bool)
		for _, is := range from {
			for _, s := range is.Scopes {
				granted[s] = true
			}
		}
		for _, list := range []struct {
			field  string
			scopes []string
		}{{"all_of", r.Require.AllOf}, {"any_of", r.Require.AnyOf}} {
			for _, s := range list.scopes {
				if !granted[s] {
					l.warn("unknown_scope", routePath(i)+".require.scopes."+list.field,
						"route %q requires scope %q, which %s", r.Name, s, by)
				}
			}
		}
	}
}

// Effect describes what r asks of a request, such as "requires scopes
// all_of [orders:read]" or "is public", with " (dry run)" when r is in dry
// run.
func (r *Route) Effect() string {
	var s string
	switch {
	case r.Public:
		return "is public"
	case r.Deny:
		s = "denies every request"
	default:
		var parts []string
		rq := &r.Require
		for _, f := range []struct {
			name string
			list []string
		}{{"principals", rq.Principals}, {"issuers", rq.Issuers}, {"scopes all_of", rq.AllOf}, {"scopes any_of", rq.AnyOf}, {"clients", rq.Clients}, {"audiences", rq.Audiences}} {
			if len(f.list) > 0 {
				parts = append(parts, fmt.Sprintf("%s [%s]", f.name, strings.Join(f.list, " ")))
			}
		}
		switch {
		case rq.PrincipalOnly:
			s = "requires " + strings.Join(parts, ", ") + " and no token"
		case len(parts) == 0:
			s = "admits any valid token"
		default:
			s = "requires " + strings.Join(parts, ", ")
		}
	}
	if r.DryRun {
		s += " (dry run)"
	}
	return s
}

// matchesEverything reports whether r matches every request.
func matchesEverything(r *Route) bool {
	return r.Path == "/**" && len(r.Hosts) == 0 && len(r.Methods) == 0 && len(r.Context) == 0
}

func sameOutcome(a, b *Route) bool {
	ra, rb := &a.Require, &b.Require
	return a.Public == b.Public && a.Deny == b.Deny && a.DryRun == b.DryRun &&
		sameSet(ra.AllOf, rb.AllOf) && sameSet(ra.AnyOf, rb.AnyOf) && sameSet(ra.Issuers, rb.Issuers) &&
		sameSet(ra.Clients, rb.Clients) && sameSet(ra.Audiences, rb.Audiences) &&
		sameSet(ra.Principals, rb.Principals) && ra.PrincipalOnly == rb.PrincipalOnly
}

// example is a request, built to show an overlap.
type example struct {
	method, host, path string
	context            map[string]string // nil for none
}

func (e example) String() string {
	s := e.method + " " + e.path
	if e.host != "" {
		s += " on host " + e.host
	}
	if len(e.context) > 0 {
		s += " with route context " + formatContext(e.context)
	}
	return s
}

// overlap returns a request that both a and b match, if there is one.
// sa and sb are the segments of their paths.
func overlap(a, b *Route, sa, sb []string) (example, bool) {
	var ex example
	var ok bool
	if ex.method, ok = commonMethod(routeMethods(a), routeMethods(b)); !ok {
		return ex, false
	}
	if ex.host, ok = commonHost(a.Hosts, b.Hosts); !ok {
		return ex, false
	}
	if !contextsCompatible(a.Context, b.Context) {
		return ex, false
	}
	if len(a.Context)+len(b.Context) > 0 {
		ex.context = maps.Clone(a.Context)
		if ex.context == nil {
			ex.context = map[string]string{}
		}
		maps.Copy(ex.context, b.Context)
	}
	ex.path, ok = commonPath(sa, sb)
	return ex, ok
}

func commonMethod(a, b []string) (string, bool) {
	switch {
	case len(a) == 0 && len(b) == 0:
		return "GET", true
	case len(a) == 0:
		return b[0], true
	case len(b) == 0:
		return a[0], true
	}
	for _, m := range a {
		if slices.Contains(b, m) {
			return m, true
		}
	}
	return "", false
}

// commonHost returns a host that both lists match, "" for any host.
func commonHost(a, b []string) (string, bool) {
	switch {
	case len(a) == 0 && len(b) == 0:
		return "", true
	case len(a) == 0:
		return concreteHost(b[0]), true
	case len(b) == 0:
		return concreteHost(a[0]), true
	}
	for _, x := range a {
		for _, y := range b {
			for _, h := range []string{concreteHost(x), concreteHost(y)} {
				if hostCovers(x, h) && hostCovers(y, h) {
					return h, true
				}
			}
		}
	}
	return "", false
}

// concreteHost returns a host that the host or wildcard pattern matches.
func concreteHost(pattern string) string {
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return "x." + suffix
	}
	return pattern
}

func hostCovers(pattern, host string) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+suffix)
	}
	return pattern == host
}

// commonPath returns a path that both patterns, split into segments,
// match.
func commonPath(sa, sb []string) (string, bool) {
	var out []string
	for i := 0; ; i++ {
		endA, endB := i == len(sa), i == len(sb)
		restA := !endA && segmentKind(sa[i]) == segRest
		restB := !endB && segmentKind(sb[i]) == segRest
		switch {
		case restA:
			return joinPath(appendConcrete(out, sb[i:])), true
		case restB:
			return joinPath(appendConcrete(out, sa[i:])), true
		case endA || endB:
			return joinPath(out), endA && endB
		}
		x, y := sa[i], sb[i]
		switch kx, ky := segmentKind(x), segmentKind(y); {
		case kx == segLiteral && ky == segLiteral:
			if x != y {
				return "", false
			}
			out = append(out, x)
		case kx == segLiteral:
			out = append(out, x)
		case ky == segLiteral:
			out = append(out, y)
		default:
			out = append(out, "1")
		}
	}
}

// appendConcrete appends to out a path that the pattern segments segs
// match: each literal, "1" for a parameter, nothing for a final **.
func appendConcrete(out, segs []string) []string {
	for _, s := range segs {
		switch segmentKind(s) {
		case segLiteral:
			out = append(out, s)
		case segParam:
			out = append(out, "1")
		}
	}
	return out
}

func joinPath(segs []string) string {
	return "/" + strings.Join(segs, "/")
}
