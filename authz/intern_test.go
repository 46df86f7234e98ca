package authz

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/scopegate/scopegate/internal/testutil"
)

// sameString reports whether a and b are the same bytes in memory, not
// only equal.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

// sameList reports whether a and b are the same list in memory.
func sameList(a, b []string) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

func TestInternShares(t *testing.T) {
	in := newInterner()
	// Built at run time, so that the two are apart in memory.
	a, b := strings.Repeat("svc-", 3), strings.Repeat("svc-", 3)
	if sameString(a, b) {
		t.Fatal("the test's strings share their bytes already")
	}
	ia, ib := in.intern(a), in.intern(b)
	if ia != a || !sameString(ia, ib) {
		t.Errorf("intern(%q) = %q and %q, not one shared string", a, ia, ib)
	}

	l1 := strings.Fields("orders:read orders:write")
	l2 := strings.Fields("orders:read  orders:write")
	i1, i2 := in.internList(l1), in.internList(l2)
	if !slices.Equal(i1, l1) || !sameList(i1, i2) {
		t.Errorf("internList(%q) = %q and %q, not one shared list", l1, i1, i2)
	}
	if got := in.internList(nil); got != nil {
		t.Errorf("internList(nil) = %q, want nil", got)
	}

	m1 := map[string]string{"tenant": "acme", "tier": "gold"}
	m2 := map[string]string{"tier": "gold", "tenant": "acme"}
	if im1, im2 := in.internMap(m1), in.internMap(m2); !maps.Equal(im1, m1) || reflect.ValueOf(im1).Pointer() != reflect.ValueOf(im2).Pointer() {
		t.Errorf("internMap(%v) = %v and %v, not one shared map", m1, im1, im2)
	}
	if got := in.internMap(map[string]string{}); got != nil {
		t.Errorf("internMap of an empty map = %v, want nil", got)
	}
}

func TestInternKeepsListsApart(t *testing.T) {
	in := newInterner()
	// Lists that a plain join would confuse, and lists that differ only
	// in empty strings.
	lists := [][]string{
		{"a b"}, {"a", "b"}, {"a\x00b"}, {"a", "", "b"}, {"", "a", "b"}, {"a", "b", ""},
		{""}, {"", ""}, {"\x01a"}, {string(rune(1)), "a"},
	}
	for range 2 {
		for _, l := range lists {
			if got := in.internList(slices.Clone(l)); !slices.Equal(got, l) {
				t.Errorf("internList(%q) = %q", l, got)
			}
		}
	}
	ms := []map[string]string{
		{"a": "b c"}, {"a b": "c"}, {"a": "", "b": "c"}, {"a": "b", "c": ""}, {"a": "bc"}, {"ab": "c"},
	}
	for range 2 {
		for _, m := range ms {
			if got := in.internMap(maps.Clone(m)); !maps.Equal(got, m) {
				t.Errorf("internMap(%v) = %v", m, got)
			}
		}
	}
}

func TestInternIsBounded(t *testing.T) {
	in := newInterner()
	long := strings.Repeat("x", maxInternedLen+1)
	if got := in.intern(long); !sameString(got, long) || len(in.strs) != 0 {
		t.Errorf("intern of a string of %d bytes = a copy, or held: %d strings held", len(long), len(in.strs))
	}
	longList := []string{long[:maxInternedLen/2], long[:maxInternedLen/2]}
	if got := in.internList(longList); !sameList(got, longList) || len(in.lists) != 0 {
		t.Errorf("internList of a list of %d bytes = a copy, or held: %d lists held", 2*len(longList[0]), len(in.lists))
	}
	// Ever new values, as many valid tokens with random subjects would
	// bring: the interner stays within its bounds and returns every value
	// as it was.
	for i := range 3 * maxInterned {
		s := fmt.Sprintf("user-%d", i)
		if got := in.intern(s); got != s {
			t.Fatalf("intern(%q) = %q", s, got)
		}
		l := []string{s, "orders:read"}
		if got := in.internList(l); !slices.Equal(got, l) {
			t.Fatalf("internList(%q) = %q", l, got)
		}
		m := map[string]string{"email": s}
		if got := in.internMap(maps.Clone(m)); !maps.Equal(got, m) {
			t.Fatalf("internMap(%v) = %v", m, got)
		}
		if n := len(in.strs) + len(in.lists) + len(in.maps); n > maxInterned || in.bytes > maxInternedBytes {
			t.Fatalf("after %d values, the interner holds %d values of %d bytes, beyond its bounds", i, n, in.bytes)
		}
	}
	// Values of a few hundred bytes fill the bytes before the count.
	for i := range 2 * maxInternedBytes / 500 {
		s := fmt.Sprintf("%500d", i)
		if got := in.intern(s); got != s {
			t.Fatalf("intern(%q) = %q", s, got)
		}
		if in.bytes > maxInternedBytes {
			t.Fatalf("the interner holds %d bytes, beyond its bound", in.bytes)
		}
	}
	// Once it forgot what it held, it shares again.
	a, b := strings.Repeat("y", 10), strings.Repeat("y", 10)
	if !sameString(in.intern(a), in.intern(b)) {
		t.Error("the interner does not share once it has been full")
	}
}

func TestInternConcurrently(t *testing.T) {
	in := newInterner()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2 * maxInterned {
				s := fmt.Sprintf("v-%d", (i*(g+1))%5000)
				if got := in.intern(s); got != s {
					t.Errorf("intern(%q) = %q", s, got)
					return
				}
				l := []string{s, "x"}
				if got := in.internList(l); !slices.Equal(got, l) {
					t.Errorf("internList(%q) = %q", l, got)
					return
				}
			}
		})
	}
	testutil.Wait(t, &wg, testutil.WaitTimeout, "the concurrent interning")
}
