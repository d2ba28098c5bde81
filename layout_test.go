package abacus

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestFloorDiv(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.Int64Range(-MaxEventNanos, MaxEventNanos).Draw(t, "a")
		b := rapid.Int64Range(1, MaxPartitionWidth).Draw(t, "b")
		q := floorDiv(a, b)
		// q·b ≤ a < (q+1)·b
		if q*b > a || a-q*b >= b {
			t.Fatalf("floorDiv(%d, %d) = %d", a, b, q)
		}
	})
}

func TestNanoBounds(t *testing.T) {
	var zero time.Time
	at := func(n int64) time.Time { return time.Unix(0, n) }
	cases := []struct {
		from, to time.Time
		lo, hi   int64
		ok       bool
	}{
		{zero, zero, -MaxEventNanos, MaxEventNanos, true},
		{at(10), at(20), 10, 19, true},
		{at(10), at(10), 0, 0, false},
		{at(10), at(11), 10, 10, true},
		{time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), at(5), -MaxEventNanos, 4, true},
		{zero, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), -MaxEventNanos, MaxEventNanos, true},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), zero, 0, 0, false},
		{zero, time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), 0, 0, false},
	}
	for _, c := range cases {
		lo, hi, ok := NanoBounds(c.from, c.to)
		if ok != c.ok || (ok && (lo != c.lo || hi != c.hi)) {
			t.Errorf("NanoBounds(%v, %v) = %d, %d, %v; want %d, %d, %v", c.from, c.to, lo, hi, ok, c.lo, c.hi, c.ok)
		}
	}
}
