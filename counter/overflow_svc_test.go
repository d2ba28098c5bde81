package counter_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// TestOverflowRefused: with the overflow memo in place, an add that would
// take a rolled-up count out of int64 is still refused, unary and batched,
// and small adds to small counts are taken.
func TestOverflowRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, t.TempDir())
	ns, err := f.svc.CreateNamespace(ctx, testNamespace("ns", abacus.Accurate))
	if err != nil {
		t.Fatal(err)
	}
	t0 := f.clk.t
	n := 0
	add := func(counter string, delta int64) error {
		n++
		_, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "ns", Counter: counter, Delta: delta,
			Token: abacus.Token{ID: string(rune('a' + n)), Time: f.clk.t}})
		return err
	}
	batch := func(counter string, deltas ...int64) error {
		var adds []abacus.AddRequest
		for _, d := range deltas {
			n++
			adds = append(adds, abacus.AddRequest{Namespace: "ns", Counter: counter, Delta: d,
				Token: abacus.Token{ID: string(rune('a' + n)), Time: f.clk.t}})
		}
		_, err := f.svc.AddBatch(ctx, adds)
		return err
	}
	// Small adds, twice in one second: the second is answered by the memo.
	for range 2 {
		if err := add("c", 1); err != nil {
			t.Fatal(err)
		}
		if err := batch("c", 1, 2); err != nil {
			t.Fatal(err)
		}
	}
	// A large add takes the accurate path and fits.
	if err := add("c", math.MaxInt64-20); err != nil {
		t.Fatal(err)
	}
	f.clk.t = t0.Add(10 * time.Second)
	if ok, err := f.rollup(ctx, ns, "c"); err != nil || !ok {
		t.Fatalf("rollup: caught up %v, %v", ok, err)
	}
	if got := abacus.ErrorCode(add("c", 100)); got != abacus.OutOfRange {
		t.Errorf("unary add past int64: %v, want OutOfRange", got)
	}
	if got := abacus.ErrorCode(batch("c", 50, 50)); got != abacus.OutOfRange {
		t.Errorf("batched adds past int64: %v, want OutOfRange", got)
	}
	if err := add("c", 1); err != nil {
		t.Errorf("an add that fits: %v", err)
	}
}
