package abacus_test

import (
	"math"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// Events fold in time order; at one time deltas before clears, then by ID.
func TestCompareEvents(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := func(off time.Duration, id string) abacus.Event {
		return abacus.Event{Time: t0.Add(off), ID: id, Delta: 1}
	}
	c := func(off time.Duration, id string) abacus.Event {
		return abacus.Event{Time: t0.Add(off), ID: id, Clear: true}
	}
	for _, tt := range []struct {
		name string
		a, b abacus.Event
		want int
	}{
		{"earlier time", d(0, "z"), d(time.Nanosecond, "a"), -1},
		{"later time", c(time.Second, "a"), d(0, "b"), 1},
		{"delta before clear at one time", d(0, "z"), c(0, "a"), -1},
		{"clear after delta at one time", c(0, "a"), d(0, "z"), 1},
		{"then by id", d(0, "a"), d(0, "b"), -1},
		{"same key", d(0, "a"), d(0, "a"), 0},
	} {
		if got := abacus.CompareEvents(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: CompareEvents = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestSumNeg(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 42, -42, math.MaxInt64, math.MinInt64 + 1} {
		if got, ok := abacus.SumOf(v).Neg().Int64(); !ok || got != -v {
			t.Errorf("-abacus.SumOf(%d) = %d, %v", v, got, ok)
		}
		if got := abacus.SumOf(v).AddSum(abacus.SumOf(v).Neg()); got != (abacus.Sum{}) {
			t.Errorf("%d + -%d = %+v", v, v, got)
		}
	}
	if got, ok := abacus.SumOf(math.MinInt64).Neg().AddSum(abacus.SumOf(-1)).Int64(); !ok || got != math.MaxInt64 {
		t.Errorf("-MinInt64 - 1 = %d, %v", got, ok)
	}
}
