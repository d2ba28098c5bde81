package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// The optional store interfaces must answer exactly as the calls they stand
// for: callers use them when a store has them and fall back to one call per
// counter when it has not, and neither path may see anything else.

// testBatchRollupStore checks that RollupStates is RollupState of each
// counter and AdvanceCheckpoints is AdvanceCheckpoint of each, including
// under concurrency.
func testBatchRollupStore(t *testing.T, b Backend) {
	bs, ok := b.(abacus.BatchRollupStore)
	if !ok {
		t.Skip("the backend has no abacus.BatchRollupStore; callers fall back to RollupState and AdvanceCheckpoint, which the other cases check")
	}
	ctx := context.Background()
	ns := newNamespace(t, b, "batchrollups")
	// a: events and a checkpoint; b: events only; c: nothing; d: a checkpoint
	// only.
	mustAppend(t, b, ns, add("a", time.Second, "a1", 1), add("a", 70*time.Second, "a2", 2), add("b", 5*time.Second, "b1", 3))
	advance(t, b, ns, "a", checkpointAt(30*time.Second, 1))
	advance(t, b, ns, "d", checkpointAt(40*time.Second, -7))
	counters := []string{"a", "b", "c", "d", "a"}
	states, err := bs.RollupStates(ctx, ns, counters)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != len(counters) {
		t.Fatalf("RollupStates returned %d states for %d counters", len(states), len(counters))
	}
	for i, c := range counters {
		want, err := b.RollupState(ctx, ns, c)
		if err != nil {
			t.Fatal(err)
		}
		if got := states[i]; !sameCheckpoint(got.Checkpoint, want.Checkpoint) || !got.LastWrite.Equal(want.LastWrite) {
			t.Errorf("RollupStates[%d] (%s) = %+v, RollupState = %+v", i, c, got, want)
		}
	}
	if states, err := bs.RollupStates(ctx, ns, nil); err != nil || len(states) != 0 {
		t.Errorf("RollupStates of no counters = %v, %v", states, err)
	}

	// Older than stored: kept; newer: stored; new counter: stored; zero:
	// only read.
	names := []string{"a", "d", "e", "b"}
	offer := []abacus.Checkpoint{checkpointAt(20*time.Second, 99), checkpointAt(50*time.Second, 4), checkpointAt(10*time.Second, 8), {}}
	want := []abacus.Checkpoint{checkpointAt(30*time.Second, 1), checkpointAt(50*time.Second, 4), checkpointAt(10*time.Second, 8), {}}
	got, err := bs.AdvanceCheckpoints(ctx, ns, names, offer)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range names {
		if !sameCheckpoint(got[i], want[i]) {
			t.Errorf("AdvanceCheckpoints[%d] (%s) = %+v, want %+v", i, c, got[i], want[i])
		}
		st, err := b.RollupState(ctx, ns, c)
		if err != nil {
			t.Fatal(err)
		}
		if !sameCheckpoint(st.Checkpoint, want[i]) {
			t.Errorf("%s: stored %+v after AdvanceCheckpoints, want %+v", c, st.Checkpoint, want[i])
		}
	}

	// Concurrent batches over the same counters: each ends at the newest
	// checkpoint offered, and every call returns one at least as new as the
	// one it offered.
	ns2 := newNamespace(t, b, "batchrollups2")
	batch := []string{"p", "q", "r"}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			cps := make([]abacus.Checkpoint, len(batch))
			for i := range batch {
				cps[i] = checkpointAt(time.Duration(10+(w*3+i)%8)*time.Second, int64(w))
			}
			got, err := bs.AdvanceCheckpoints(ctx, ns2, batch, cps)
			if err != nil {
				errs <- err
				return
			}
			for i := range batch {
				if got[i].Through.Before(cps[i].Through) {
					errs <- fmt.Errorf("%s: AdvanceCheckpoints returned %v, older than the offered %v", batch[i], got[i].Through, cps[i].Through)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, c := range batch {
		st, err := b.RollupState(ctx, ns2, c)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Through.Equal(at(17 * time.Second)) {
			t.Errorf("%s: checkpoint through %v after concurrent batches, want the newest offered, %v", c, st.Through, at(17*time.Second))
		}
	}
}

// testMultiScanner checks that ScanMany yields, for each request, exactly
// what Scan yields for it, in the same order.
func testMultiScanner(t *testing.T, b Backend) {
	ms, ok := b.(abacus.MultiScanner)
	if !ok {
		t.Skip("the backend has no abacus.MultiScanner; callers fall back to Scan, which the other cases check")
	}
	ctx := context.Background()
	ns := newNamespace(t, b, "scanmany")
	var evs []abacus.Event
	for i := range 40 {
		c := []string{"x", "y", "z"}[i%3]
		// Spread over 3 slices (60 s), several time buckets (10 s) and
		// event buckets; two events share a time.
		evs = append(evs, add(c, time.Duration(i*4500)*time.Millisecond, fmt.Sprintf("e%d", i), int64(i+1)))
	}
	evs = append(evs, clr("x", 0, "e0-clear"))
	mustAppend(t, b, ns, evs...)
	reqs := []abacus.ScanRequest{
		{Counter: "x", Range: abacus.Range{}},
		{Counter: "y", Range: abacus.Range{From: at(20 * time.Second), To: at(130 * time.Second)}},
		{Counter: "z", Range: abacus.Range{From: at(100 * time.Second), To: at(100 * time.Second)}}, // empty
		{Counter: "none", Range: abacus.Range{}},
		{Counter: "x", Range: abacus.Range{From: at(54 * time.Second), To: at(54*time.Second + time.Nanosecond)}},
		{Counter: "z", Range: abacus.Range{From: at(62 * time.Second)}},
	}
	got := make([][]abacus.Event, len(reqs))
	if err := ms.ScanMany(ctx, ns, reqs, func(i int, e abacus.Event) error {
		got[i] = append(got[i], e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		want := scanAll(t, b, ns, r.Counter, r.Range)
		if fmt.Sprint(got[i]) != fmt.Sprint(want) {
			t.Errorf("ScanMany[%d] (%s %v..%v):\n got  %v\n want %v", i, r.Counter, r.Range.From, r.Range.To, got[i], want)
		}
	}
	stop := errors.New("stop")
	n := 0
	err := ms.ScanMany(ctx, ns, reqs, func(int, abacus.Event) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("ScanMany with a failing callback: %v after %d events, want stop after 3", err, n)
	}
	rev := []abacus.ScanRequest{{Counter: "x", Range: abacus.Range{Reverse: true}}}
	if err := ms.ScanMany(ctx, ns, rev, func(int, abacus.Event) error { return nil }); abacus.ErrorCode(err) != abacus.InvalidArgument {
		t.Errorf("ScanMany in reverse = %v, want InvalidArgument", err)
	}
}
