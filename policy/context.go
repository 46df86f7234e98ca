package policy

import (
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
)

// Context is a request's route context: key-value pairs that the proxy's
// route configuration attaches to the check, Envoy's context_extensions
// (ExtAuthzPerRoute.check_settings.context_extensions), so that a route's
// match.context can match a route's tags. As in the protobuf map it comes
// from, a later value of a key replaces an earlier one. The zero value is
// empty.
//
// Its pairs are kept as they come, without a map, so that a request
// without context costs nothing and one with a few pairs one allocation.
type Context struct {
	pairs []contextPair
}

type contextPair struct{ key, value string }

// Set sets key to value, replacing an earlier value of key.
func (c *Context) Set(key, value string) {
	// Appended, not replaced in place: a CheckRequest may repeat a key
	// many times, which a search per Set would make quadratic. Get finds
	// the last.
	c.pairs = append(c.pairs, contextPair{key, value})
}

// Get returns the value of key, and whether the context has it.
func (c Context) Get(key string) (string, bool) {
	for i := len(c.pairs) - 1; i >= 0; i-- {
		if c.pairs[i].key == key {
			return c.pairs[i].value, true
		}
	}
	return "", false
}

// All returns each key of the context once, with its value, in key order.
func (c Context) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		sorted := slices.Clone(c.pairs)
		slices.SortStableFunc(sorted, func(a, b contextPair) int { return strings.Compare(a.key, b.key) })
		for i, p := range sorted {
			if i+1 < len(sorted) && sorted[i+1].key == p.key {
				continue // a later value replaces this one
			}
			if !yield(p.key, p.value) {
				return
			}
		}
	}
}

// Empty reports whether the context has no pair.
func (c Context) Empty() bool { return len(c.pairs) == 0 }

// String writes the context as "{key: value, ...}", in key order.
func (c Context) String() string {
	return formatContext(maps.Collect(c.All()))
}

// ContextOf returns the context holding the pairs of m.
func ContextOf(m map[string]string) Context {
	var c Context
	for _, k := range slices.Sorted(maps.Keys(m)) {
		c.Set(k, m[k])
	}
	return c
}

// pairsOf returns the pairs of m, in key order.
func pairsOf(m map[string]string) []contextPair {
	var out []contextPair
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, contextPair{k, m[k]})
	}
	return out
}

// formatContext writes a route's or request's context as "{key: value}".
func formatContext(m map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %s", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// contextMet reports whether ctx, nil for none, holds every pair of r's
// match.context. It is asked only of routes that have one.
func (r *Route) contextMet(ctx *Context) bool {
	if ctx == nil {
		return false
	}
	for _, want := range r.contextPairs {
		if v, ok := ctx.Get(want.key); !ok || v != want.value {
			return false
		}
	}
	return true
}

// contextContains reports whether context a holds every pair of b.
func contextContains(a, b map[string]string) bool {
	for k, v := range b {
		if w, ok := a[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// contextsCompatible reports whether one request can meet both contexts:
// they give no key different values.
func contextsCompatible(a, b map[string]string) bool {
	for k, v := range a {
		if w, ok := b[k]; ok && w != v {
			return false
		}
	}
	return true
}

// contextsTie reports whether routes with contexts a and b, equal in every
// other constraint, would tie for some request: one request can meet both,
// and neither holds the other, so neither is more specific.
func contextsTie(a, b map[string]string) bool {
	return contextsCompatible(a, b) && (maps.Equal(a, b) || !contextContains(a, b) && !contextContains(b, a))
}

// contextSpecific reports whether a route with context a comes before one
// with b, for a request that meets both: a holds b and more.
func contextSpecific(a, b map[string]string) bool {
	return len(a) > len(b) && contextContains(a, b)
}

// matchContext validates a route's match.context at path.
func (c *checker) matchContext(path string, m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	if len(m) == 0 {
		c.errorf(path, "is empty; leave it out to match any context")
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch {
		case k == "":
			c.errorf(path, "has an empty key")
		case m[k] == "":
			// An empty value would read as "the key is absent" to some
			// and "the key is set to nothing" to others.
			c.errorf(path+"."+k, "is empty; a context value must be the exact value Envoy's route sets")
		default:
			out[k] = m[k]
		}
	}
	return out
}
