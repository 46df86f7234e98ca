package authz

import (
	"encoding/binary"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Bounds of an interner: of the values it holds, of the bytes of their
// keys in all, and of the key of one value.
const (
	maxInterned      = 4096
	maxInternedBytes = 256 << 10
	maxInternedLen   = 1 << 10
)

// interner shares the strings, lists and maps that the Claims of different
// tokens repeat: the subject, client id, audiences, scopes and extra
// claims of a client are the same in each of its tokens, and a full cache
// would otherwise hold them once a token. Everything it returns is
// shared, and must never be modified.
//
// It holds at most maxInterned values, whose keys (a string is its own)
// have maxInternedBytes in all, and forgets them all when it is full:
// tokens with ever new values, as an attacker with many valid tokens could
// bring, cost it no more than that, and the values of the tokens that come
// after are shared again. A value whose key is longer than maxInternedLen
// is not shared. It is safe for concurrent use.
type interner struct {
	mu    sync.Mutex
	strs  map[string]string
	lists map[string][]string          // by listKey
	maps  map[string]map[string]string // by the listKey of their sorted pairs
	bytes int                          // of the keys of the values held
}

func newInterner() *interner {
	return &interner{
		strs:  make(map[string]string),
		lists: make(map[string][]string),
		maps:  make(map[string]map[string]string),
	}
}

// intern returns a string equal to s, shared with the other callers that
// interned it.
func (in *interner) intern(s string) string {
	if s == "" || len(s) > maxInternedLen {
		return s
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.strs[s]; ok {
		return v
	}
	in.makeRoom(len(s))
	// A copy, in case s is part of a longer string that holding it would
	// keep alive.
	s = strings.Clone(s)
	in.strs[s] = s
	return s
}

// internList returns a list equal to l, shared with the other callers that
// interned an equal list, or nil when l is empty.
func (in *interner) internList(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	var buf [256]byte
	key, ok := listKey(buf[:0], l)
	if !ok {
		return l
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.lists[string(key)]; ok {
		return v
	}
	in.makeRoom(len(key))
	// The list's strings are all parts of its key: one allocation holds
	// them.
	k := string(key)
	v := make([]string, len(l))
	for n, i := 0, 0; n < len(v); n++ {
		size, w := binary.Uvarint(key[i:])
		i += w
		v[n] = k[i : i+int(size)]
		i += int(size)
	}
	in.lists[k] = v
	return v
}

// internMap returns a map equal to m, shared with the other callers that
// interned an equal map, or nil when m is empty. The caller must not
// modify m after: the map returned may be m itself.
func (in *interner) internMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	pairs := make([]string, 0, 2*len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		pairs = append(pairs, k, m[k])
	}
	var buf [256]byte
	key, ok := listKey(buf[:0], pairs)
	if !ok {
		return m
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.maps[string(key)]; ok {
		return v
	}
	in.makeRoom(len(key))
	in.maps[string(key)] = m
	return m
}

// share replaces the strings, lists and map of c, which no one else holds
// yet, by their interned equals.
func (in *interner) share(c *Claims) {
	c.Issuer = in.intern(c.Issuer)
	c.Subject = in.intern(c.Subject)
	c.ClientID = in.intern(c.ClientID)
	c.Audience = in.internList(c.Audience)
	c.Scopes = in.internList(c.Scopes)
	c.Extra = in.internMap(c.Extra)
}

// listKey appends to b the key of the list l: each of its strings
// preceded by its length, so that no two lists have the same key. It
// reports false when l is too long to be interned.
func listKey(b []byte, l []string) ([]byte, bool) {
	for _, s := range l {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
		if len(b) > maxInternedLen {
			return b, false
		}
	}
	return b, true
}

// makeRoom forgets every value held if a value of size bytes would not
// fit beside them. in.mu is held.
func (in *interner) makeRoom(size int) {
	if len(in.strs)+len(in.lists)+len(in.maps) < maxInterned && in.bytes+size <= maxInternedBytes {
		in.bytes += size
		return
	}
	clear(in.strs)
	clear(in.lists)
	clear(in.maps)
	in.bytes = size
}
