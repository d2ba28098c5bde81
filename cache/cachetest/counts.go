package cachetest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/abacus-dev/abacus"
)

func testAddGetDelete(t *testing.T, c Cache, _ Capabilities) {
	ctx := context.Background()
	steps := []struct {
		op    string // "add", "delete"
		delta int64
		want  int64 // count after the step
	}{
		{"add", 5, 5},
		{"add", 3, 8},
		{"add", 0, 8}, // a zero delta reads and keeps the count
		{"delete", 0, 0},
		{"delete", 0, 0}, // deleting an absent key succeeds
		{"add", 2, 2},    // a deleted key starts again from 0
	}
	for i, s := range steps {
		switch s.op {
		case "add":
			if got := add(t, c, "k", s.delta); got != s.want {
				t.Fatalf("step %d: Add(%d) returned %d, want %d", i, s.delta, got, s.want)
			}
		case "delete":
			if err := c.Delete(ctx, "k"); err != nil {
				t.Fatalf("step %d: Delete: %v", i, err)
			}
		}
		wantCount(t, c, "k", s.want)
	}
	wantCount(t, c, "other", 0)
}

func testAbsent(t *testing.T, c Cache, _ Capabilities) {
	wantCount(t, c, "never-written", 0)
	if cp, ok, err := c.GetCheckpoint(context.Background(), "never-written"); err != nil || ok {
		t.Fatalf("GetCheckpoint of an absent key = %+v, %v, %v; want not found", cp, ok, err)
	}
}

// testNegative checks negative deltas: signed counts, or with NoNegative the
// documented clamping at 0 (the clamped part is forgotten, not owed).
func testNegative(t *testing.T, c Cache, caps Capabilities) {
	tests := []struct {
		name      string
		deltas    []int64
		want      int64 // count after the deltas
		wantNoNeg int64 // the same with NoNegative
	}{
		{"below zero from absent", []int64{-1}, -1, 0},
		{"below zero", []int64{3, -10}, -7, 0},
		{"stays positive", []int64{10, -4}, 6, 6},
		{"back to zero", []int64{4, -4}, 0, 0},
		{"up again after below zero", []int64{3, -10, 2}, -5, 2},
		{"min from absent", []int64{math.MinInt64}, math.MinInt64, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("neg%d", i)
			want := tt.want
			if caps.NoNegative {
				want = tt.wantNoNeg
			}
			var got int64
			for _, d := range tt.deltas {
				got = add(t, c, key, d)
			}
			if got != want {
				t.Fatalf("Add returned %d after %v, want %d", got, tt.deltas, want)
			}
			wantCount(t, c, key, want)
		})
	}
}

// testInt64Limits checks that a count reaches the int64 limits exactly and
// that an add past them fails with OutOfRange, leaving the count unchanged.
func testInt64Limits(t *testing.T, c Cache, caps Capabilities) {
	const (
		maxI = math.MaxInt64
		minI = math.MinInt64
	)
	tests := []struct {
		name      string
		start     int64 // added to an absent key first
		delta     int64
		want      int64 // count afterwards
		overflow  bool  // the add fails with OutOfRange
		negatives bool  // only for backends with negative counts
		wantNoNeg int64 // the count with NoNegative, for the cases that run there
	}{
		{name: "max from absent", delta: maxI, want: maxI, wantNoNeg: maxI},
		{name: "exactly max", start: maxI - 1, delta: 1, want: maxI, wantNoNeg: maxI},
		{name: "exactly max from halves", start: 1 << 62, delta: 1<<62 - 1, want: maxI, wantNoNeg: maxI},
		{name: "past max by one", start: maxI, delta: 1, want: maxI, overflow: true, wantNoNeg: maxI},
		{name: "past max by max", start: maxI, delta: maxI, want: maxI, overflow: true, wantNoNeg: maxI},
		{name: "past max from halves", start: 1 << 62, delta: 1 << 62, want: 1 << 62, overflow: true, wantNoNeg: 1 << 62},
		{name: "max then min", start: maxI, delta: minI, want: -1, wantNoNeg: 0},
		{name: "max then minus max", start: maxI, delta: -maxI, want: 0, wantNoNeg: 0},
		{name: "exactly min", start: minI + 1, delta: -1, want: minI, negatives: true},
		{name: "past min by one", start: minI, delta: -1, want: minI, overflow: true, negatives: true},
		{name: "past min by min", start: minI, delta: minI, want: minI, overflow: true, negatives: true},
		{name: "past min by one from minus max", start: -maxI, delta: -2, want: -maxI, overflow: true, negatives: true},
		{name: "min then max", start: minI, delta: maxI, want: -1, negatives: true},
	}
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.negatives && caps.NoNegative {
				t.Skip("the backend has no negative counts (Capabilities.NoNegative)")
			}
			want := tt.want
			if caps.NoNegative {
				want = tt.wantNoNeg
			}
			key := fmt.Sprintf("lim%d", i)
			if tt.start != 0 {
				add(t, c, key, tt.start)
			}
			got, err := c.Add(ctx, key, tt.delta, ttlLong)
			switch {
			case tt.overflow && abacus.ErrorCode(err) != abacus.OutOfRange:
				t.Fatalf("Add(%d) to %d = %d, %v; want OutOfRange", tt.delta, tt.start, got, err)
			case !tt.overflow && err != nil:
				t.Fatalf("Add(%d) to %d: %v", tt.delta, tt.start, err)
			case !tt.overflow && got != want:
				t.Fatalf("Add(%d) to %d returned %d, want %d", tt.delta, tt.start, got, want)
			}
			wantCount(t, c, key, want)
			// The count is still usable after a refused add.
			if tt.overflow && want > 0 {
				if got := add(t, c, key, -1); got != want-1 {
					t.Fatalf("Add(-1) after the refused add returned %d, want %d", got, want-1)
				}
			}
		})
	}
}

// testConcurrentAdds checks that adds from many goroutines are atomic: none
// is lost, and the counts returned by +1 adds are exactly 1..n.
func testConcurrentAdds(t *testing.T, c Cache, _ Capabilities) {
	const workers, perWorker = 16, 150
	ctx := context.Background()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		returned []int64
		errs     []error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []int64
			for i := range perWorker {
				n, err := c.Add(ctx, "ones", 1, ttlLong)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				mine = append(mine, n)
				if _, err := c.Add(ctx, "mixed", mixedDelta(i), ttlLong); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			returned = append(returned, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d concurrent adds failed, first: %v", len(errs), errs[0])
	}
	const n = workers * perWorker
	wantCount(t, c, "ones", n)
	slices.Sort(returned)
	for i, v := range returned {
		if v != int64(i+1) {
			t.Fatalf("the counts returned by concurrent +1 adds are not 1..%d: position %d holds %d", n, i, v)
		}
	}
	var mixed int64
	for i := range perWorker {
		mixed += workers * mixedDelta(i)
	}
	wantCount(t, c, "mixed", mixed)
}

// mixedDelta is a worker's i-th delta to the "mixed" key: +3 then -1, so that
// no interleaving of the workers takes the count below 0 (which NoNegative
// backends would clamp).
func mixedDelta(i int) int64 {
	if i%2 == 0 {
		return 3
	}
	return -1
}
