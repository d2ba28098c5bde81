package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

func checkpointAt(off time.Duration, count int64) abacus.Checkpoint {
	return abacus.Checkpoint{Count: abacus.SumOf(count), Through: at(off)}
}

func sameCheckpoint(a, b abacus.Checkpoint) bool {
	return a.Count == b.Count && a.Through.Equal(b.Through)
}

// testCheckpointMonotonic checks that AdvanceCheckpoint stores a checkpoint
// only from the stored one (count and time, all 128 bits of the count) and
// only forward, and returns the checkpoint stored afterwards.
func testCheckpointMonotonic(t *testing.T, b Backend) {
	ctx := context.Background()
	ns := newNamespace(t, b, "checkpoints")
	big := abacus.Checkpoint{Count: abacus.Sum{Hi: 1, Lo: 2}, Through: at(time.Hour)}
	steps := []struct {
		name           string
		from, to, want abacus.Checkpoint
	}{
		{"first", abacus.Checkpoint{}, checkpointAt(10*time.Second, 5), checkpointAt(10*time.Second, 5)},
		{"older: kept", checkpointAt(10*time.Second, 5), checkpointAt(5*time.Second, 99), checkpointAt(10*time.Second, 5)},
		{"equal time: not newer", checkpointAt(10*time.Second, 5), checkpointAt(10*time.Second, 7), checkpointAt(10*time.Second, 5)},
		{"stale: from none", abacus.Checkpoint{}, checkpointAt(20*time.Second, 1), checkpointAt(10*time.Second, 5)},
		{"stale: other count", checkpointAt(10*time.Second, 4), checkpointAt(20*time.Second, 1), checkpointAt(10*time.Second, 5)},
		{"stale: other time", checkpointAt(9*time.Second, 5), checkpointAt(20*time.Second, 1), checkpointAt(10*time.Second, 5)},
		{"newer, negative count", checkpointAt(10*time.Second, 5), checkpointAt(20*time.Second, -3), checkpointAt(20*time.Second, -3)},
		{"zero: never newer", checkpointAt(20*time.Second, -3), abacus.Checkpoint{}, checkpointAt(20*time.Second, -3)},
		{"beyond int64", checkpointAt(20*time.Second, -3), big, big},
		{"stale: other high half", abacus.Checkpoint{Count: abacus.Sum{Hi: 0, Lo: 2}, Through: big.Through}, checkpointAt(2*time.Hour, 1), big},
		{"stale: other low half", abacus.Checkpoint{Count: abacus.Sum{Hi: 1, Lo: 3}, Through: big.Through}, checkpointAt(2*time.Hour, 1), big},
		{"from beyond int64", big, checkpointAt(2*time.Hour, 1), checkpointAt(2*time.Hour, 1)},
	}
	for _, s := range steps {
		got, err := b.AdvanceCheckpoint(ctx, ns, "c", s.from, s.to)
		if err != nil {
			t.Fatalf("%s: AdvanceCheckpoint: %v", s.name, err)
		}
		if !sameCheckpoint(got, s.want) {
			t.Fatalf("%s: AdvanceCheckpoint(%+v, %+v) = %+v, want %+v", s.name, s.from, s.to, got, s.want)
		}
		st, err := b.RollupState(ctx, ns, "c")
		if err != nil {
			t.Fatal(err)
		}
		if !sameCheckpoint(st.Checkpoint, s.want) {
			t.Fatalf("%s: RollupState = %+v, want %+v", s.name, st.Checkpoint, s.want)
		}
	}
	// A counter without a checkpoint is advanced from the zero one only.
	if got, err := b.AdvanceCheckpoint(ctx, ns, "d", checkpointAt(10*time.Second, 5), checkpointAt(20*time.Second, 6)); err != nil || got != (abacus.Checkpoint{}) {
		t.Fatalf("AdvanceCheckpoint of a counter without a checkpoint, from one = %+v, %v; want the zero checkpoint", got, err)
	}
	if got, err := b.AdvanceCheckpoint(ctx, ns, "d", abacus.Checkpoint{Count: abacus.SumOf(1)}, checkpointAt(20*time.Second, 6)); err != nil || got != (abacus.Checkpoint{}) {
		t.Fatalf("AdvanceCheckpoint of a counter without a checkpoint, from a count without a time = %+v, %v; want the zero checkpoint", got, err)
	}
	// Checkpoints are per counter and per namespace.
	other := newNamespace(t, b, "checkpoints2")
	for _, c := range []struct {
		ns      *abacus.Namespace
		counter string
	}{{ns, "d"}, {other, "c"}} {
		st, err := b.RollupState(ctx, c.ns, c.counter)
		if err != nil || st != (abacus.RollupState{}) {
			t.Fatalf("RollupState(%s, %s) = %+v, %v; want the zero state", c.ns.Name, c.counter, st, err)
		}
	}
}

// testCheckpointConcurrent races rollups of one counter from many
// goroutines, each advancing the checkpoint from the one it read to a time of
// its own (and the count that belongs to it, one per second) and, when its
// compare-and-swap fails, starting again from the checkpoint returned,
// while a reader checks that the stored checkpoint never moves back; the
// final one is the newest offered, with its own count.
func testCheckpointConcurrent(t *testing.T, b Backend) {
	ctx := context.Background()
	ns := newNamespace(t, b, "cprace")
	const goroutines, perG = 16, 20
	var (
		wg      sync.WaitGroup
		done    atomic.Bool
		maxSecs atomic.Int64
		failed  atomic.Int64
	)
	reader := make(chan error, 1)
	go func() {
		var last time.Time
		for !done.Load() {
			st, err := b.RollupState(ctx, ns, "c")
			if err != nil {
				reader <- err
				return
			}
			if st.Through.Before(last) {
				reader <- fmt.Errorf("checkpoint moved back from %v to %v", last, st.Through)
				return
			}
			if !st.Through.IsZero() && st.Count != abacus.SumOf(int64(st.Through.Sub(t0)/time.Second)) {
				reader <- fmt.Errorf("checkpoint %+v: count does not belong to its time", st.Checkpoint)
				return
			}
			last = st.Through
		}
		reader <- nil
	}()
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range perG {
				secs := rng.Int64N(1000) + 1
				for {
					m := maxSecs.Load()
					if secs <= m || maxSecs.CompareAndSwap(m, secs) {
						break
					}
				}
				to := checkpointAt(time.Duration(secs)*time.Second, secs)
				st, err := b.RollupState(ctx, ns, "c")
				if err != nil {
					t.Errorf("RollupState: %v", err)
					return
				}
				from := st.Checkpoint
				for to.Newer(from) {
					got, err := b.AdvanceCheckpoint(ctx, ns, "c", from, to)
					if err != nil {
						t.Errorf("AdvanceCheckpoint: %v", err)
						return
					}
					if got.Through.Before(from.Through) {
						t.Errorf("AdvanceCheckpoint(%+v, %+v) returned an older checkpoint %+v", from, to, got)
						return
					}
					if sameCheckpoint(got, to) {
						break
					}
					if sameCheckpoint(got, from) {
						t.Errorf("AdvanceCheckpoint(%+v, %+v) stored nothing, but returned from as stored", from, to)
						return
					}
					failed.Add(1)
					from = got
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	if err := <-reader; err != nil {
		t.Fatal(err)
	}
	st, err := b.RollupState(ctx, ns, "c")
	if err != nil {
		t.Fatal(err)
	}
	want := checkpointAt(time.Duration(maxSecs.Load())*time.Second, maxSecs.Load())
	if !sameCheckpoint(st.Checkpoint, want) {
		t.Fatalf("final checkpoint %+v, want the newest %+v", st.Checkpoint, want)
	}
	t.Logf("%d advances from a stale checkpoint failed", failed.Load())
}

// testBehindCounters checks which counters are reported as behind: a last
// write at or after the checkpoint, or no checkpoint.
func testBehindCounters(t *testing.T, b Backend) {
	ctx := context.Background()
	ns1 := newNamespace(t, b, "behind1")
	ns2 := newNamespace(t, b, "behind2")
	type key struct {
		nsID    uint64
		counter string
	}
	want := map[key]bool{}
	// written, never rolled up: behind
	mustAppend(t, b, ns1, add("fresh", 5*time.Second, "a", 1))
	want[key{ns1.ID, "fresh"}] = true
	// rolled up past its last write: not behind
	mustAppend(t, b, ns1, add("done", 5*time.Second, "a", 1))
	advance(t, b, ns1, "done", checkpointAt(10*time.Second, 1))
	// last write exactly at the checkpoint: behind (the window is [from, to))
	mustAppend(t, b, ns1, add("edge", 10*time.Second, "a", 1))
	advance(t, b, ns1, "edge", checkpointAt(10*time.Second, 0))
	want[key{ns1.ID, "edge"}] = true
	// written after its checkpoint: behind
	mustAppend(t, b, ns2, add("later", 15*time.Second, "a", 1))
	advance(t, b, ns2, "later", checkpointAt(10*time.Second, 0))
	want[key{ns2.ID, "later"}] = true
	// a checkpoint without writes: not behind
	advance(t, b, ns2, "idle", checkpointAt(10*time.Second, 0))
	// same counter name in both namespaces, behind in one only
	mustAppend(t, b, ns1, add("shared", 5*time.Second, "a", 1))
	mustAppend(t, b, ns2, add("shared", 5*time.Second, "a", 1))
	advance(t, b, ns2, "shared", checkpointAt(time.Minute, 1))
	want[key{ns1.ID, "shared"}] = true

	got := map[key]bool{}
	err := b.BehindCounters(ctx, func(nsID uint64, counter string) error {
		if nsID != ns1.ID && nsID != ns2.ID {
			return nil // not ours
		}
		k := key{nsID, counter}
		if got[k] {
			t.Errorf("BehindCounters reported %v twice", k)
		}
		got[k] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("BehindCounters = %v, want %v", got, want)
	}
	// Rolling "fresh" up past its write takes it off the list.
	advance(t, b, ns1, "fresh", checkpointAt(6*time.Second, 1))
	delete(want, key{ns1.ID, "fresh"})
	got = map[key]bool{}
	if err := b.BehindCounters(ctx, func(nsID uint64, counter string) error {
		if nsID == ns1.ID || nsID == ns2.ID {
			got[key{nsID, counter}] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after a rollup, BehindCounters = %v, want %v", got, want)
	}
}

// advance advances counter's checkpoint to cp from the stored one.
func advance(t tb, b Backend, ns *abacus.Namespace, counter string, cp abacus.Checkpoint) {
	t.Helper()
	st, err := b.RollupState(context.Background(), ns, counter)
	if err != nil {
		t.Fatalf("RollupState: %v", err)
	}
	got, err := b.AdvanceCheckpoint(context.Background(), ns, counter, st.Checkpoint, cp)
	if err != nil {
		t.Fatalf("AdvanceCheckpoint: %v", err)
	}
	if !sameCheckpoint(got, cp) {
		t.Fatalf("AdvanceCheckpoint(%+v, %+v) = %+v", st.Checkpoint, cp, got)
	}
}

// testCounters checks Counters: each counter with events in a slice
// overlapping the range, once.
func testCounters(t *testing.T, b Backend) {
	ns := newNamespace(t, b, "counters")
	other := newNamespace(t, b, "counters-other")
	mustAppend(t, b, ns,
		add("x", 5*time.Second, "a", 1), add("x", 50*time.Second, "b", 1), // slice 0, twice
		add("y", 65*time.Second, "a", 1),                                    // slice 1
		add("z", 10*time.Second, "a", 1), add("z", 130*time.Second, "a", 1), // slices 0 and 2
		add("zz", 3*time.Minute+time.Second, "a", 1), // slice 3
		add("x\x01", 4*time.Minute, "a", 1),          // a name that extends another
	)
	mustAppend(t, b, other, add("w", 5*time.Second, "a", 1))
	var zero time.Time
	cases := []struct {
		from, to time.Time
		want     string
	}{
		{zero, zero, "x,x\x01,y,z,zz"},
		{at(0), at(sliceWidth), "x,z"},
		{at(59 * time.Second), at(sliceWidth + time.Nanosecond), "x,y,z"}, // overlaps slices 0 and 1
		{at(55 * time.Second), at(56 * time.Second), "x,z"},               // slice overlap, not event times
		{at(sliceWidth), at(3 * sliceWidth), "y,z"},
		{at(2 * sliceWidth), zero, "x\x01,z,zz"},
		{zero, at(0), ""},
		{at(time.Hour), zero, ""},
	}
	for _, tc := range cases {
		var got []string
		seen := map[string]bool{}
		err := b.Counters(context.Background(), ns, tc.from, tc.to, func(c string) error {
			if seen[c] {
				t.Errorf("Counters%s reported %q twice", fmtRange(abacus.Range{From: tc.from, To: tc.to}), c)
			}
			seen[c] = true
			got = append(got, c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if g := sortedStrings(got); g != tc.want {
			t.Errorf("Counters%s = %q, want %q", fmtRange(abacus.Range{From: tc.from, To: tc.to}), g, tc.want)
		}
	}
}

// testDeleteSlices checks that exactly the whole slices ending at or before t
// are deleted, in one namespace only, and that checkpoints survive.
func testDeleteSlices(t *testing.T, b Backend) {
	ctx := context.Background()
	ns := newNamespace(t, b, "retention")
	other := newNamespace(t, b, "retention-other")
	var evs []abacus.Event
	for _, off := range []time.Duration{
		-sliceWidth + time.Second, // slice -1
		0, 59 * time.Second,       // slice 0
		sliceWidth, 2*sliceWidth - time.Nanosecond, // slice 1
		// slice 2 is empty
		3 * sliceWidth, 3*sliceWidth + 30*time.Second, // slice 3
		4 * sliceWidth, // slice 4
	} {
		evs = append(evs, add("c", off, "t", 1), add("d", off, "t", 1))
	}
	mustAppend(t, b, ns, evs...)
	mustAppend(t, b, other, evs...)
	advance(t, b, ns, "c", checkpointAt(2*sliceWidth, 10))

	remaining := func(counter string) []abacus.Event {
		return scanAll(t, b, ns, counter, abacus.Range{})
	}
	from := func(off time.Duration) []abacus.Event {
		var out []abacus.Event
		for _, e := range evs {
			if e.Counter == "c" && !e.Time.Before(at(off)) {
				out = append(out, e)
			}
		}
		return out
	}
	steps := []struct {
		t         time.Time
		wantCount int
		keepFrom  time.Duration
	}{
		{at(-time.Hour), 0, -sliceWidth},
		{at(-time.Nanosecond), 0, -sliceWidth}, // slice -1 ends at 0
		{at(0), 1, 0},
		{at(sliceWidth + 59*time.Second), 1, sliceWidth}, // slice 1 ends at 2m: kept
		{at(3 * sliceWidth), 1, 3 * sliceWidth},          // slices 1 and 2; 2 is empty
		{at(3 * sliceWidth), 0, 3 * sliceWidth},          // again: nothing left to delete
	}
	for i, s := range steps {
		n, err := b.DeleteSlices(ctx, ns, s.t)
		if err != nil {
			t.Fatalf("step %d: DeleteSlices: %v", i, err)
		}
		if n != s.wantCount {
			t.Fatalf("step %d: DeleteSlices(%v) = %d, want %d", i, s.t.Sub(t0), n, s.wantCount)
		}
		checkEvents(t, fmt.Sprintf("step %d", i), remaining("c"), from(s.keepFrom))
	}
	if got := remaining("d"); len(got) != 3 {
		t.Fatalf("counter d: %d events left, want 3", len(got))
	}
	if got := scanAll(t, b, other, "c", abacus.Range{}); len(got) != len(evs)/2 {
		t.Fatalf("other namespace lost events: %d left, want %d", len(got), len(evs)/2)
	}
	st, err := b.RollupState(ctx, ns, "c")
	if err != nil || !sameCheckpoint(st.Checkpoint, checkpointAt(2*sliceWidth, 10)) {
		t.Fatalf("checkpoint after DeleteSlices = %+v, %v", st, err)
	}
	if !st.LastWrite.Equal(at(4 * sliceWidth)) {
		t.Fatalf("last write after DeleteSlices = %v", st.LastWrite)
	}
}

// testDropNamespace checks that dropping a namespace deletes its events,
// checkpoints and last writes, and nothing of another namespace with the same
// counter names.
func testDropNamespace(t *testing.T, b Backend) {
	testDrop(t, b, func(ns *abacus.Namespace) error { return b.DropNamespace(context.Background(), ns) })
}

// testDeleteNamespaceDrops checks that deleting a namespace deletes its data
// too, in the same step (a crash after a separate first step would leave the
// data unreachable), and that the DropNamespace the service still calls
// afterwards (for writes in flight) succeeds.
func testDeleteNamespaceDrops(t *testing.T, b Backend) {
	testDrop(t, b, func(ns *abacus.Namespace) error {
		_, err := b.DeleteNamespace(context.Background(), ns.Name)
		return err
	})
}

func testDrop(t *testing.T, b Backend, drop func(*abacus.Namespace) error) {
	ctx := context.Background()
	ns1 := newNamespace(t, b, "drop1")
	ns2 := newNamespace(t, b, "drop2")
	mustAppend(t, b, ns1, add("c", 0, "a", 1), add("c", 2*time.Minute, "b", 2))
	mustAppend(t, b, ns2, add("c", 0, "a", 10), add("c", 70*time.Second, "z", 20))
	advance(t, b, ns1, "c", checkpointAt(time.Second, 1))
	advance(t, b, ns2, "c", checkpointAt(time.Second, 10))

	// Before the drop the namespaces do not mix.
	checkEvents(t, "ns1", scanAll(t, b, ns1, "c", abacus.Range{}), []abacus.Event{add("c", 0, "a", 1), add("c", 2*time.Minute, "b", 2)})
	checkEvents(t, "ns2", scanAll(t, b, ns2, "c", abacus.Range{}), []abacus.Event{add("c", 0, "a", 10), add("c", 70*time.Second, "z", 20)})

	if err := drop(ns1); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, "ns1 after drop", scanAll(t, b, ns1, "c", abacus.Range{}), nil)
	if st, err := b.RollupState(ctx, ns1, "c"); err != nil || st != (abacus.RollupState{}) {
		t.Fatalf("ns1 rollup state after drop = %+v, %v", st, err)
	}
	if err := b.Counters(ctx, ns1, time.Time{}, time.Time{}, func(c string) error {
		return fmt.Errorf("counter %q listed after drop", c)
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.BehindCounters(ctx, func(nsID uint64, c string) error {
		if nsID == ns1.ID {
			return fmt.Errorf("counter %q of a dropped namespace is behind", c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, "ns2 after drop of ns1", scanAll(t, b, ns2, "c", abacus.Range{}),
		[]abacus.Event{add("c", 0, "a", 10), add("c", 70*time.Second, "z", 20)})
	st, err := b.RollupState(ctx, ns2, "c")
	if err != nil || !sameCheckpoint(st.Checkpoint, checkpointAt(time.Second, 10)) || !st.LastWrite.Equal(at(70*time.Second)) {
		t.Fatalf("ns2 rollup state after drop of ns1 = %+v, %v", st, err)
	}
	// Dropping again, as the service does after a deletion, finds nothing.
	if err := b.DropNamespace(ctx, ns1); err != nil {
		t.Fatalf("DropNamespace after the drop: %v", err)
	}
}
