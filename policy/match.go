package policy

import (
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
				if l := m.trie(h).leaf(e.segs); l.byMethod[head] == nil {
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
	if sameSet(a.Hosts, b.Hosts) && sameSet(a.Methods, b.Methods) {
		return f.Errorf(at, "route %q matches exactly the same requests as route %q at line %d; remove one or make them differ", b.Name, a.Name, a.Line)
	}
	host, method := c.host, c.method
	if host == "" {
		host = "any host"
	}
	if method == "" {
		method = "any method"
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

func (m *matcher) match(method, authority, path string) *Route {
	host, _, bad := splitAuthority(authority)
	if bad.reason != "" {
		return nil
	}
	id := m.methodIndex(method)
	if len(m.exact)+len(m.wildcard) > 0 {
		var buf [maxHostLen]byte
		if h, ok := hostKey(buf[:0], host); ok {
			if t := m.exact[string(h)]; t != nil {
				if r := t.match(path, id); r != nil {
					return r
				}
			}
			var s suffixes
			s.split(h)
			for _, n := range m.labels {
				if t := m.wildcard[string(s.of(h, n))]; t != nil {
					if r := t.match(path, id); r != nil {
						return r
					}
				}
			}
		}
	}
	return m.anyHost.match(path, id)
}

func (m *matcher) matchAll(method, authority, path string) []*Route {
	host, _, bad := splitAuthority(authority)
	if bad.reason != "" {
		return nil
	}
	id := m.methodIndex(method)
	var all []*Route
	if h, ok := hostKey(nil, host); ok {
		if t := m.exact[string(h)]; t != nil {
			t.matchAll(path, id, &all)
		}
		var s suffixes
		s.split(h)
		for _, n := range m.labels {
			if t := m.wildcard[string(s.of(h, n))]; t != nil {
				t.matchAll(path, id, &all)
			}
		}
	}
	m.anyHost.matchAll(path, id, &all)
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
// the rest of a path and the method with index id. The search backtracks:
// a literal child that matches the segment but holds no route for the rest
// of the path or the method gives way to the param child, then to /**.
// Each node is visited at most once per request, so a search costs at most
// the number of nodes on the path's matching branches.
func (n *node) match(path string, id int) *Route {
	seg, rest := nextSegment(path)
	if seg == "" {
		if r := n.end.pick(id); r != nil {
			return r
		}
		return n.rest.pick(id)
	}
	if c := n.literal[seg]; c != nil {
		if r := c.match(rest, id); r != nil {
			return r
		}
	}
	if n.param != nil {
		if r := n.param.match(rest, id); r != nil {
			return r
		}
	}
	return n.rest.pick(id)
}

// matchAll appends to all every route below n that matches, in precedence
// order.
func (n *node) matchAll(path string, id int, all *[]*Route) {
	seg, rest := nextSegment(path)
	if seg == "" {
		n.end.appendTo(id, all)
		n.rest.appendTo(id, all)
		return
	}
	if c := n.literal[seg]; c != nil {
		c.matchAll(rest, id, all)
	}
	if n.param != nil {
		n.param.matchAll(rest, id, all)
	}
	n.rest.appendTo(id, all)
}

// pick returns the route of l for the method with index id: the route
// listing the method, else the route listing none.
func (l *leaf) pick(id int) *Route {
	if l == nil {
		return nil
	}
	if id >= 0 && id < len(l.byMethod) && l.byMethod[id] != nil {
		return l.byMethod[id]
	}
	return l.any
}

// appendTo appends the routes of l for the method with index id to all, in
// precedence order.
func (l *leaf) appendTo(id int, all *[]*Route) {
	if l == nil {
		return
	}
	if id >= 0 && id < len(l.byMethod) && l.byMethod[id] != nil {
		*all = append(*all, l.byMethod[id])
	}
	if l.any != nil {
		*all = append(*all, l.any)
	}
}
