package embedded

import (
	"bytes"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"pgregory.net/rapid"
)

func TestInt64KeysSortNumerically(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := rapid.Int64().Draw(t, "a"), rapid.Int64().Draw(t, "b")
		if got, want := bytes.Compare(appendInt64(nil, a), appendInt64(nil, b)), cmpInt(a, b); got != want {
			t.Fatalf("compare(enc(%d), enc(%d)) = %d, want %d", a, b, got, want)
		}
		if getInt64(appendInt64(nil, a)) != a {
			t.Fatalf("round trip of %d", a)
		}
	})
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestEventValueRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := abacus.Event{Delta: rapid.Int64().Draw(t, "delta"), Clear: rapid.Bool().Draw(t, "clear")}
		d, c, ok := decodeEventValue(encodeEventValue(e))
		if !ok || d != e.Delta || c != e.Clear {
			t.Fatalf("round trip of %+v: %d %v %v", e, d, c, ok)
		}
	})
	for _, v := range [][]byte{nil, {0}, {0, 2}, {0, 0, 0}, {0x80}, encodeEventValue(abacus.Event{Delta: math.MinInt64})[:3]} {
		if _, _, ok := decodeEventValue(v); ok {
			t.Errorf("decodeEventValue(%x) accepted a malformed value", v)
		}
	}
}

// TestEventKeyOrder checks that, within a slice and counter, event keys sort
// by time bucket and then, within an event bucket, by time and ID: the order
// Scan relies on.
func TestEventKeyOrder(t *testing.T) {
	l := abacus.Layout{NSID: 7, BucketWidth: int64(10 * time.Second), SliceWidth: int64(time.Minute), Buckets: 4}
	rapid.Check(t, func(t *rapid.T) {
		n1 := rapid.Int64Range(0, int64(time.Minute)-1).Draw(t, "n1")
		n2 := rapid.Int64Range(0, int64(time.Minute)-1).Draw(t, "n2")
		id1, id2 := rapid.String().Draw(t, "id1"), rapid.String().Draw(t, "id2")
		k1 := eventKey(l, abacus.Event{Counter: "c", ID: id1}, n1)
		k2 := eventKey(l, abacus.Event{Counter: "c", ID: id2}, n2)
		tb1, tb2 := l.TimeBucket(n1), l.TimeBucket(n2)
		if tb1 != tb2 {
			if got := bytes.Compare(k1, k2); got != cmpInt(tb1, tb2) {
				t.Fatalf("keys of time buckets %d and %d compare %d", tb1, tb2, got)
			}
			return
		}
		if l.EventBucket(id1) == l.EventBucket(id2) {
			want := cmpInt(n1, n2)
			if want == 0 {
				want = bytes.Compare([]byte(id1), []byte(id2))
			}
			if got := bytes.Compare(k1, k2); got != want {
				t.Fatalf("keys (%d,%q) and (%d,%q) compare %d, want %d", n1, id1, n2, id2, got, want)
			}
		}
		p := counterPrefix(l.NSID, l.Slice(n1), "c")
		gotTB, gotN, gotID, ok := parseEventSuffix(k1[len(p):])
		if !ok || gotTB != tb1 || gotN != n1 || gotID != id1 {
			t.Fatalf("parse of %x: %d %d %q %v", k1, gotTB, gotN, gotID, ok)
		}
		if c, ok := parseCounter(k1); !ok || c != "c" {
			t.Fatalf("parseCounter(%x) = %q", k1, c)
		}
	})
}

func TestPrefixEnd(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := rapid.SliceOfN(rapid.Byte(), 1, 10).Draw(t, "p")
		suffix := rapid.SliceOf(rapid.Byte()).Draw(t, "suffix")
		end := prefixEnd(p)
		if end == nil {
			if !bytes.Equal(p, bytes.Repeat([]byte{0xff}, len(p))) {
				t.Fatalf("prefixEnd(%x) = nil", p)
			}
			return
		}
		k := append(slices.Clone(p), suffix...)
		if bytes.Compare(k, end) >= 0 || bytes.Compare(p, end) >= 0 {
			t.Fatalf("prefixEnd(%x) = %x is not above %x", p, end, k)
		}
	})
}

// TestMaxTimeMerger checks that the merge keeps the max whatever the order and
// grouping of operands, as Pebble may merge any contiguous run of them.
func TestMaxTimeMerger(t *testing.T) {
	key := counterKey(prefixLastWrite, 1, "c")
	rapid.Check(t, func(t *rapid.T) {
		ops := rapid.SliceOfN(rapid.Int64Range(-abacus.MaxEventNanos, abacus.MaxEventNanos), 1, 20).Draw(t, "ops")
		newer := rapid.Bool().Draw(t, "newer")
		m, err := maxTimeMerger.Merge(key, encodeTime(ops[0]))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range ops[1:] {
			if newer {
				err = m.MergeNewer(encodeTime(o))
			} else {
				err = m.MergeOlder(encodeTime(o))
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		v, _, err := m.Finish(true)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := decodeTime(v); !ok || got != slices.Max(ops) {
			t.Fatalf("merge of %v = %d, want %d", ops, got, slices.Max(ops))
		}
	})
	if _, err := maxTimeMerger.Merge(key, []byte{1, 2, 3}); err == nil {
		t.Error("merge accepted a malformed operand")
	}
	if _, err := maxTimeMerger.Merge([]byte("e-not-a-last-write"), encodeTime(1)); err == nil {
		t.Error("merge accepted a key outside the last-write space")
	}
}

// TestLayoutVersion checks that Open refuses a database written with another
// key layout instead of misreading it.
func TestLayoutVersion(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(metaKey("layout"), []byte("abacus.embedded.v0"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(dir, Options{}); abacus.ErrorCode(err) != abacus.FailedPrecondition {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("Open of a database with another layout = %v, want FailedPrecondition", err)
	}
}
