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

	// From the stored checkpoint: older than it, kept; newer, stored; new
	// counter, stored; zero, only read. From another: kept, whatever it
	// offers. (a: 30s/1, b: none, d: 40s/-7 before the call.)
	names := []string{"a", "d", "e", "b", "f", "g"}
	froms := []abacus.Checkpoint{checkpointAt(30*time.Second, 1), checkpointAt(40*time.Second, -7), {}, {}, checkpointAt(5*time.Second, 0), {}}
	tos := []abacus.Checkpoint{checkpointAt(20*time.Second, 99), checkpointAt(50*time.Second, 4), checkpointAt(10*time.Second, 8), {}, checkpointAt(50*time.Second, 3), checkpointAt(60*time.Second, 9)}
	want := []abacus.Checkpoint{checkpointAt(30*time.Second, 1), checkpointAt(50*time.Second, 4), checkpointAt(10*time.Second, 8), {}, {}, checkpointAt(60*time.Second, 9)}
	advance(t, b, ns, "g", checkpointAt(0, 0))
	want[5] = checkpointAt(0, 0) // g: from none, but it has one
	got, err := bs.AdvanceCheckpoints(ctx, ns, names, froms, tos)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range names {
		if !sameCheckpoint(got[i], want[i]) {
			t.Errorf("AdvanceCheckpoints[%d] (%s, from %+v to %+v) = %+v, want %+v", i, c, froms[i], tos[i], got[i], want[i])
		}
		st, err := b.RollupState(ctx, ns, c)
		if err != nil {
			t.Fatal(err)
		}
		if !sameCheckpoint(st.Checkpoint, want[i]) {
			t.Errorf("%s: stored %+v after AdvanceCheckpoints, want %+v", c, st.Checkpoint, want[i])
		}
	}
	_, err = bs.AdvanceCheckpoints(ctx, ns, names, froms[:1], tos)
	checkCode(t, "AdvanceCheckpoints with fewer froms than counters", err, abacus.InvalidArgument)

	// Concurrent batches over the same counters, each advancing from the
	// states it read and starting again from what a failed one returned:
	// each ends at the newest checkpoint offered, and a failed advance
	// returns another checkpoint than the one it started from.
	ns2 := newNamespace(t, b, "batchrollups2")
	batch := []string{"p", "q", "r"}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(batch))
	for w := range 8 {
		wg.Go(func() {
			tos := make([]abacus.Checkpoint, len(batch))
			for i := range batch {
				secs := int64(10 + (w*3+i)%8)
				tos[i] = checkpointAt(time.Duration(secs)*time.Second, secs)
			}
			states, err := bs.RollupStates(ctx, ns2, batch)
			if err != nil {
				errs <- err
				return
			}
			froms := make([]abacus.Checkpoint, len(batch))
			for i := range batch {
				froms[i] = states[i].Checkpoint
			}
			for {
				got, err := bs.AdvanceCheckpoints(ctx, ns2, batch, froms, tos)
				if err != nil {
					errs <- err
					return
				}
				retry := false
				for i := range batch {
					switch {
					case !tos[i].Newer(froms[i]) || sameCheckpoint(got[i], tos[i]):
					case sameCheckpoint(got[i], froms[i]):
						errs <- fmt.Errorf("%s: AdvanceCheckpoints from %+v to %+v stored nothing, but returned from as stored", batch[i], froms[i], tos[i])
						return
					case got[i].Through.Before(froms[i].Through):
						errs <- fmt.Errorf("%s: AdvanceCheckpoints returned %+v, older than the %+v it started from", batch[i], got[i], froms[i])
						return
					default:
						retry = true
					}
					froms[i] = got[i]
				}
				if !retry {
					return
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
		if !sameCheckpoint(st.Checkpoint, checkpointAt(17*time.Second, 17)) {
			t.Errorf("%s: checkpoint %+v after concurrent batches, want the newest offered, %+v", c, st.Checkpoint, checkpointAt(17*time.Second, 17))
		}
	}
}

// ScanManyAgrees runs reqs through s's ScanMany (s must be an
// abacus.MultiScanner), checks that each request yields exactly what Scan
// yields for it, in the same order, and returns what ScanMany yielded.
// Stores' own tests use it for the cases their implementation makes
// interesting (pages, chunks, memory).
func ScanManyAgrees(t testing.TB, s abacus.EventStore, ns *abacus.Namespace, reqs []abacus.ScanRequest) [][]abacus.Event {
	t.Helper()
	ms, ok := s.(abacus.MultiScanner)
	if !ok {
		t.Fatalf("%T is not an abacus.MultiScanner", s)
	}
	got := make([][]abacus.Event, len(reqs))
	if err := ms.ScanMany(context.Background(), ns, reqs, func(i int, e abacus.Event) error {
		got[i] = append(got[i], e)
		return nil
	}); err != nil {
		t.Fatalf("ScanMany: %v", err)
	}
	for i, r := range reqs {
		want := scanAll(t, s, ns, r.Counter, r.Range)
		if fmt.Sprint(got[i]) != fmt.Sprint(want) {
			t.Errorf("ScanMany[%d] (%s %s):\n got  %v\n want %v", i, r.Counter, fmtRange(r.Range), got[i], want)
		}
	}
	return got
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
	ScanManyAgrees(t, b, ns, reqs)
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
