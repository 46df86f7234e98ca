package policy

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/scopegate/scopegate/internal/yamlfile"
)

// matcher finds the route for a request in time that grows with the depth
// of its path, not with the number of routes: one path trie per host
// constraint, searched in precedence order.
type matcher struct {
	methods  map[string]int   // method → index into leaf.byMethod
	exact    map[string]*node // host → trie of the routes listing it
	wildcard map[string]*node // "example.com" → trie of the routes listing *.example.com
	// labels lists the label counts of the wildcard keys, largest first:
	// only suffixes of a request's host with that many labels can match,
	// so the others are never hashed.
	labels  []int
	anyHost *node // trie of the routes without hosts
}

// maxHostLen is the length of the longest DNS name (RFC 1035 section
// 2.3.4), written without its trailing dot. parseHost refuses longer
// hosts, so a longer request host matches no route listing hosts.
const maxHostLen = 253

// node is a point in a path trie, reached by the pattern segments on the
// way to it.
type node struct {
	literal map[string]*node
	param   *node // next segment is * or {name}
	end     *leaf // patterns ending here
	rest    *leaf // patterns ending here with /**
}

// leaf holds the routes of one path pattern in one host trie.
type leaf struct {
	byMethod []*Route // by method index; nil when no route here lists methods
	any      *Route   // the route listing no methods
	// tagged holds the routes here with a match.context; nil when there
	// are none, so that routes without context cost one comparison.
	tagged *taggedLeaf
}

// taggedLeaf holds the routes of a leaf that have a match.context, each
// list most specific context first: of two routes that one request can
// meet, Parse makes sure one's context holds the other's.
type taggedLeaf struct {
	byMethod [][]*Route // by method index
	any      []*Route   // the routes listing no methods
}

// conflict is two routes that would tie for some request.
type conflict struct {
	first        *Route
	second       *entry
	host, method string // an example of where they tie; "" for any
}

// compile builds the matcher for entries, which are in file order. It
// returns the pairs of routes that tie: Parse rejects a policy with any,
// so that precedence never depends on the order of the file.
func compile(entries []*entry) (*matcher, []conflict) {
	m := &matcher{
		methods:  make(map[string]int),
		exact:    make(map[string]*node),
		wildcard: make(map[string]*node),
		anyHost:  new(node),
	}
	for _, e := range entries {
		for _, meth := range routeMethods(e.route) {
			if _, ok := m.methods[meth]; !ok {
				m.methods[meth] = len(m.methods)
			}
		}
	}
	var conflicts []conflict
	for _, e := range entries {
		conflicts = append(conflicts, m.insert(e)...)
	}
	// HEAD goes to the routes that list GET without HEAD only after
	// every route has taken the methods it lists: a route listing HEAD
	// beats one that gets it from GET, and does not tie with it.
	if head, ok := m.methods[http.MethodHead]; ok {
		for _, e := range entries {
			if !headFromGet(e.route) {
				continue
			}
			for _, h := range hostsOrAny(e.route) {
				l := m.trie(h).leaf(e.segs)
				if len(e.route.Context) > 0 {
					l.tagged.headFromGet(head, e.route)
				} else if l.byMethod[head] == nil {
					l.byMethod[head] = e.route
				}
			}
		}
	}
	for k := range m.wildcard {
		if n := strings.Count(k, ".") + 1; !slices.Contains(m.labels, n) {
			m.labels = append(m.labels, n)
		}
	}
	slices.SortFunc(m.labels, func(a, b int) int { return b - a })
	return m, conflicts
}

// headFromGet reports whether r matches HEAD because it lists GET: HTTP
// servers answer HEAD with the GET handler, so a route constraining GET
// must also decide HEAD, or HEAD would reach that handler under another
// route's requirements.
func headFromGet(r *Route) bool {
	return slices.Contains(r.Methods, http.MethodGet) && !slices.Contains(r.Methods, http.MethodHead)
}

// routeMethods returns the methods r matches: those it lists, and HEAD
// when it lists GET. It is nil for a route matching any method.
func routeMethods(r *Route) []string {
	if headFromGet(r) {
		return append(slices.Clip(r.Methods), http.MethodHead)
	}
	return r.Methods
}

// hostsOrAny returns the hosts of r, or "" alone, for any host.
func hostsOrAny(r *Route) []string {
	if len(r.Hosts) == 0 {
		return []string{""}
	}
	return r.Hosts
}

// trie returns the trie for a host of a route's match, "" for none.
func (m *matcher) trie(host string) *node {
	tries, key := m.exact, host
	switch {
	case host == "":
		return m.anyHost
	case strings.HasPrefix(host, "*."):
		tries, key = m.wildcard, host[2:]
	}
	t := tries[key]
	if t == nil {
		t = new(node)
		tries[key] = t
	}
	return t
}

// insert adds e to the tries of its hosts and returns its conflicts with
// routes inserted before, one per route.
func (m *matcher) insert(e *entry) []conflict {
	var conflicts []conflict
	clash := func(first *Route, host, method string) {
		for _, c := range conflicts {
			if c.first == first {
				return
			}
		}
		conflicts = append(conflicts, conflict{first, e, host, method})
	}
	for _, h := range hostsOrAny(e.route) {
		l := m.trie(h).leaf(e.segs)
		if len(e.route.Context) > 0 {
			l.insertTagged(e.route, m.methods, func(first *Route, method string) { clash(first, h, method) })
			continue
		}
		if len(e.route.Methods) == 0 {
			if l.any != nil {
				clash(l.any, h, "")
			} else {
				l.any = e.route
			}
			continue
		}
		if l.byMethod == nil {
			l.byMethod = make([]*Route, len(m.methods))
		}
		for _, meth := range e.route.Methods {
			i := m.methods[meth]
			if first := l.byMethod[i]; first != nil {
				clash(first, h, meth)
			} else {
				l.byMethod[i] = e.route
			}
		}
	}
	return conflicts
}

// insertTagged adds r, which has a match.context, to l, and calls clash
// with each route there, and the method, that r would tie with. methods
// are the matcher's methods.
func (l *leaf) insertTagged(r *Route, methods map[string]int, clash func(first *Route, method string)) {
	t := l.tagged
	if t == nil {
		t = &taggedLeaf{byMethod: make([][]*Route, len(methods))}
		l.tagged = t
	}
	add := func(list []*Route, method string) []*Route {
		for _, first := range list {
			if contextsTie(first.Context, r.Context) {
				clash(first, method)
				return list
			}
		}
		return insertBySpecificity(list, r)
	}
	if len(r.Methods) == 0 {
		t.any = add(t.any, "")
		return
	}
	for _, meth := range r.Methods {
		i := methods[meth]
		t.byMethod[i] = add(t.byMethod[i], meth)
	}
}

// headFromGet adds r, which has a match.context and gets HEAD from GET,
// to the HEAD routes of t: after the routes listing HEAD with a context as
// specific, unless one of them has the same context.
func (t *taggedLeaf) headFromGet(head int, r *Route) {
	for _, first := range t.byMethod[head] {
		if slices.Contains(first.Methods, http.MethodHead) && maps.Equal(first.Context, r.Context) {
			return
		}
	}
	t.byMethod[head] = insertBySpecificity(t.byMethod[head], r)
}

// insertBySpecificity inserts r into list, which is ordered by the number
// of pairs of the routes' contexts, largest first, after the routes with
// as many.
func insertBySpecificity(list []*Route, r *Route) []*Route {
	i := 0
	for i < len(list) && len(list[i].Context) >= len(r.Context) {
		i++
	}
	return slices.Insert(list, i, r)
}

// leaf returns the leaf for the pattern segs below n, creating the nodes on
// the way.
func (n *node) leaf(segs []segment) *leaf {
	for _, s := range segs {
		switch s.kind {
		case segLiteral:
			c := n.literal[s.lit]
			if c == nil {
				if n.literal == nil {
					n.literal = make(map[string]*node)
				}
				c = new(node)
				n.literal[s.lit] = c
			}
			n = c
		case segParam:
			if n.param == nil {
				n.param = new(node)
			}
			n = n.param
		case segRest:
			if n.rest == nil {
				n.rest = new(leaf)
			}
			return n.rest
		}
	}
	if n.end == nil {
		n.end = new(leaf)
	}
	return n.end
}

// error describes the conflict at the second route, naming the first.
func (c conflict) error(f *yamlfile.File) *yamlfile.Error {
	a, b := c.first, c.second.route
	at := routePath(c.second.index) + ".match"
	if sameSet(a.Hosts, b.Hosts) && sameSet(a.Methods, b.Methods) && maps.Equal(a.Context, b.Context) {
		return f.Errorf(at, "route %q matches exactly the same requests as route %q at line %d; remove one or make them differ", b.Name, a.Name, a.Line)
	}
	host, method := c.host, c.method
	if host == "" {
		host = "any host"
	}
	if method == "" {
		method = "any method"
	}
	if len(a.Context)+len(b.Context) > 0 {
		both := maps.Clone(a.Context)
		maps.Copy(both, b.Context)
		return f.Errorf(at, "route %q and route %q at line %d both match %s, %s, path %s, context %s with equal precedence; make one route's context hold the other's, or give them a key with different values, so that one route decides each request", b.Name, a.Name, a.Line, method, host, b.Path, formatContext(both))
	}
	return f.Errorf(at, "route %q and route %q at line %d both match %s, %s, path %s with equal precedence; split their hosts or methods so that one route decides each request", b.Name, a.Name, a.Line, method, host, b.Path)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}

func (m *matcher) match(method, authority, path string, ctx *Context) *Route {
	host, _, bad := splitAuthority(authority)
	if bad.reason != "" {
		return nil
	}
	id := m.methodIndex(method)
	if len(m.exact)+len(m.wildcard) > 0 {
		var buf [maxHostLen]byte
		if h, ok := hostKey(buf[:0], host); ok {
			if t := m.exact[string(h)]; t != nil {
				if r := t.match(path, id, ctx); r != nil {
					return r
				}
			}
			var s suffixes
			s.split(h)
			for _, n := range m.labels {
				if t := m.wildcard[string(s.of(h, n))]; t != nil {
					if r := t.match(path, id, ctx); r != nil {
						return r
					}
				}
			}
		}
	}
	return m.anyHost.match(path, id, ctx)
}

func (m *matcher) matchAll(method, authority, path string, ctx *Context) []*Route {
	host, _, bad := splitAuthority(authority)
	if bad.reason != "" {
		return nil
	}
	id := m.methodIndex(method)
	var all []*Route
	if h, ok := hostKey(nil, host); ok {
		if t := m.exact[string(h)]; t != nil {
			t.matchAll(path, id, ctx, &all)
		}
		var s suffixes
		s.split(h)
		for _, n := range m.labels {
			if t := m.wildcard[string(s.of(h, n))]; t != nil {
				t.matchAll(path, id, ctx, &all)
			}
		}
	}
	m.anyHost.matchAll(path, id, ctx, &all)
	// A route listing both a host and a wildcard covering it is found in
	// both tries; its first place is its place in the precedence.
	out := all[:0]
	for i, r := range all {
		if !slices.Contains(all[:i], r) {
			out = append(out, r)
		}
	}
	return out
}

// methodIndex returns the index of method, in any case, in leaf.byMethod,
// or -1 when no route lists it.
func (m *matcher) methodIndex(method string) int {
	if i, ok := m.methods[method]; ok {
		return i
	}
	var buf [32]byte
	b := buf[:0]
	for i := 0; i < len(method); i++ {
		c := method[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	if i, ok := m.methods[string(b)]; ok {
		return i
	}
	return -1
}

// hostKey appends to dst the form of a request's host, as splitAuthority
// returns it, that routes list: lower case, without a trailing dot. It
// reports false, and appends nothing, for a host longer than any that
// routes can list.
func hostKey(dst []byte, host string) ([]byte, bool) {
	host = strings.TrimSuffix(host, ".")
	if len(host) > maxHostLen {
		return dst, false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// suffixes holds where the suffixes of a host that a wildcard could cover
// start: start[n] for the suffix of n labels.
type suffixes struct {
	// Each suffix adds a label and a dot, so a host of maxHostLen bytes
	// has at most maxHostLen/2.
	start [maxHostLen/2 + 1]int
	n     int // the number of suffixes
}

// split finds the suffixes of h, from the shortest. The whole host is not
// one: a wildcard needs a label before its suffix. Splitting stops at an
// empty label, since no suffix holding one is a host a route can list.
func (s *suffixes) split(h []byte) {
	s.n = 0
	for i := len(h) - 1; i > 0; i-- {
		if h[i] != '.' {
			continue
		}
		if i+1 == len(h) || h[i+1] == '.' {
			return
		}
		s.n++
		s.start[s.n] = i + 1
	}
}

// of returns the suffix of h of n labels, or nil when h has none.
func (s *suffixes) of(h []byte, n int) []byte {
	if n > s.n {
		return nil
	}
	return h[s.start[n]:]
}

// nextSegment splits the first segment off path, skipping empty segments.
// It returns "" when path has no segment left.
func nextSegment(path string) (seg, rest string) {
	i := 0
	for i < len(path) && path[i] == '/' {
		i++
	}
	path = path[i:]
	if j := strings.IndexByte(path, '/'); j >= 0 {
		return path[:j], path[j:]
	}
	return path, ""
}

// match returns the first route below n, in precedence order, that matches
// the rest of a path, the method with index id and the context ctx. The
// search backtracks: a literal child that matches the segment but holds no
// route for the rest of the path, the method or the context gives way to
// the param child, then to /**. Each node is visited at most once per
// request, so a search costs at most the number of nodes on the path's
// matching branches.
func (n *node) match(path string, id int, ctx *Context) *Route {
	seg, rest := nextSegment(path)
	if seg == "" {
		if r := n.end.pick(id, ctx); r != nil {
			return r
		}
		return n.rest.pick(id, ctx)
	}
	if c := n.literal[seg]; c != nil {
		if r := c.match(rest, id, ctx); r != nil {
			return r
		}
	}
	if n.param != nil {
		if r := n.param.match(rest, id, ctx); r != nil {
			return r
		}
	}
	return n.rest.pick(id, ctx)
}

// matchAll appends to all every route below n that matches, in precedence
// order.
func (n *node) matchAll(path string, id int, ctx *Context, all *[]*Route) {
	seg, rest := nextSegment(path)
	if seg == "" {
		n.end.appendTo(id, ctx, all)
		n.rest.appendTo(id, ctx, all)
		return
	}
	if c := n.literal[seg]; c != nil {
		c.matchAll(rest, id, ctx, all)
	}
	if n.param != nil {
		n.param.matchAll(rest, id, ctx, all)
	}
	n.rest.appendTo(id, ctx, all)
}

// pick returns the route of l for the method with index id and the
// context ctx: the route listing the method, else the route listing none,
// each time a route whose context ctx meets before the one without.
func (l *leaf) pick(id int, ctx *Context) *Route {
	if l == nil {
		return nil
	}
	t := l.tagged
	if t != nil && id >= 0 && id < len(t.byMethod) {
		if r := firstMet(t.byMethod[id], ctx); r != nil {
			return r
		}
	}
	if id >= 0 && id < len(l.byMethod) && l.byMethod[id] != nil {
		return l.byMethod[id]
	}
	if t != nil {
		if r := firstMet(t.any, ctx); r != nil {
			return r
		}
	}
	return l.any
}

// firstMet returns the first route of list whose context ctx meets.
func firstMet(list []*Route, ctx *Context) *Route {
	for _, r := range list {
		if r.contextMet(ctx) {
			return r
		}
	}
	return nil
}

// appendTo appends the routes of l for the method with index id and the
// context ctx to all, in precedence order.
func (l *leaf) appendTo(id int, ctx *Context, all *[]*Route) {
	if l == nil {
		return
	}
	t := l.tagged
	if t != nil && id >= 0 && id < len(t.byMethod) {
		appendMet(all, t.byMethod[id], ctx)
	}
	if id >= 0 && id < len(l.byMethod) && l.byMethod[id] != nil {
		*all = append(*all, l.byMethod[id])
	}
	if t != nil {
		appendMet(all, t.any, ctx)
	}
	if l.any != nil {
		*all = append(*all, l.any)
	}
}

// appendMet appends to all the routes of list whose context ctx meets.
func appendMet(all *[]*Route, list []*Route, ctx *Context) {
	for _, r := range list {
		if r.contextMet(ctx) {
			*all = append(*all, r)
		}
	}
}
