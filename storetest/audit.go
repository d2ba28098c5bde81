package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// listAll pages through ListCounters with the given page size, checking
// that each page is at most limit long, in strictly ascending order after the
// last page, and that only a short page ends the listing.
func listAll(t tb, b Backend, ns *abacus.Namespace, prefix, after string, limit int) []abacus.CounterState {
	t.Helper()
	var all []abacus.CounterState
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("ListCounters(%q, after %q, %d): no end after %d pages", prefix, after, limit, pages)
		}
		page, err := b.ListCounters(context.Background(), ns, prefix, after, limit)
		if err != nil {
			t.Fatalf("ListCounters(%q, after %q, %d): %v", prefix, after, limit, err)
		}
		if len(page) > limit {
			t.Fatalf("ListCounters(%q, after %q, %d) returned %d counters", prefix, after, limit, len(page))
		}
		for _, c := range page {
			if c.Counter <= after {
				t.Fatalf("ListCounters(%q, after %q, %d) returned %q out of order", prefix, after, limit, c.Counter)
			}
			after = c.Counter
		}
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
	}
}

func counterNames(cs []abacus.CounterState) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Counter
	}
	return out
}

func sameState(a, b abacus.RollupState) bool {
	return sameCheckpoint(a.Checkpoint, b.Checkpoint) && a.LastWrite.Equal(b.LastWrite)
}

// testListCounters checks ListCounters: every counter of the namespace with
// a checkpoint or a write (and no other), in name order, by prefix and after
// a name, paged with several page sizes, each with the state RollupState
// gives it.
func testListCounters(t *testing.T, b Backend) {
	ctx := context.Background()
	ns := newNamespace(t, b, "list")
	// Created next, so its ID follows ns's: its keys are the nearest.
	next := newNamespace(t, b, "list-next")

	written := []string{"apple", "apricot", "b", "banana", "cherry", "épée", "a\U0010FFFF", "a\U0010FFFFz", "x\x01"}
	for i, c := range written {
		mustAppend(t, b, ns, add(c, time.Duration(i)*time.Second, "e", int64(i+1)))
	}
	checkpointed := []string{"apple", "avocado", "blueberry", "a\U0010FFFF"}
	for i, c := range checkpointed {
		advance(t, b, ns, c, checkpointAt(time.Duration(20+i)*time.Second, int64(100+i)))
	}
	// A fence is no record of a write.
	if err := b.Fence(ctx, ns, "fenced", at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Other namespaces' counters are never listed.
	mustAppend(t, b, next, add("a0", 0, "e", 1), add("apple", 0, "e", 1), add("zzz", 0, "e", 1))
	advance(t, b, next, "aa", checkpointAt(time.Second, 1))
	third := newNamespace(t, b, "list-third")
	mustAppend(t, b, third, add("0", 0, "e", 1), add("b1", 0, "e", 1))

	all := slices.Concat(written, checkpointed)
	slices.Sort(all)
	all = slices.Compact(all)
	want := func(prefix, after string) []string {
		var out []string
		for _, c := range all {
			if strings.HasPrefix(c, prefix) && c > after {
				out = append(out, c)
			}
		}
		return out
	}

	cases := []struct{ prefix, after string }{
		{"", ""},
		{"a", ""},
		{"ap", ""},
		{"apple", ""}, // a whole name is its own prefix
		{"b", ""},
		{"bl", ""},
		{"c", ""},
		{"é", ""},
		{"a\U0010FFFF", ""}, // no successor for the last code point
		{"x", ""},
		{"z", ""},
		{"fenced", ""},
		{"", "b"},
		{"", "apple"},
		{"", "zzz"},
		{"a", "apricot"},
		{"a", "0"},          // after before the prefix: every match
		{"a", "b"},          // after past the prefix: none
		{"b", "b"},          // after the prefix itself
		{"", "a\U0010FFFF"}, // after a name with the last code point
		{"ap", "apr"},       // after no stored name
		{"", "épée"},        // after the last name
	}
	for _, tc := range cases {
		w := want(tc.prefix, tc.after)
		for _, limit := range []int{1, 2, 3, 100} {
			got := listAll(t, b, ns, tc.prefix, tc.after, limit)
			if g := counterNames(got); !slices.Equal(g, w) {
				t.Errorf("ListCounters(%q, after %q) by %d = %q, want %q", tc.prefix, tc.after, limit, g, w)
			}
		}
	}

	// Each state is what RollupState says, and the counters of the other
	// namespaces are theirs only.
	for _, c := range listAll(t, b, ns, "", "", 100) {
		st, err := b.RollupState(ctx, ns, c.Counter)
		if err != nil {
			t.Fatal(err)
		}
		if !sameState(c.RollupState, st) {
			t.Errorf("ListCounters state of %q = %+v, RollupState = %+v", c.Counter, c.RollupState, st)
		}
		if st == (abacus.RollupState{}) {
			t.Errorf("ListCounters listed %q, which has no state", c.Counter)
		}
	}
	if got := counterNames(listAll(t, b, next, "", "", 2)); !slices.Equal(got, []string{"a0", "aa", "apple", "zzz"}) {
		t.Errorf("ListCounters of the next namespace = %q", got)
	}
	if got := counterNames(listAll(t, b, third, "", "", 100)); !slices.Equal(got, []string{"0", "b1"}) {
		t.Errorf("ListCounters of a third namespace = %q", got)
	}
	empty := newNamespace(t, b, "list-empty")
	if got := listAll(t, b, empty, "", "", 1); len(got) != 0 {
		t.Errorf("ListCounters of an empty namespace = %v", got)
	}
	for _, limit := range []int{0, -1} {
		_, err := b.ListCounters(ctx, ns, "", "", limit)
		checkCode(t, fmt.Sprintf("ListCounters with limit %d", limit), err, abacus.InvalidArgument)
	}
}

// testRepairCheckpoint checks that RepairCheckpoint replaces the count only
// of the checkpoint the caller names, at the same time, and returns what is
// stored afterwards; and that a repair leaves the checkpoint's fencing of
// appends as it was.
func testRepairCheckpoint(t *testing.T, b Backend) {
	ctx := context.Background()
	ns := newNamespace(t, b, "repair")
	advance(t, b, ns, "c", checkpointAt(10*time.Second, 5))
	big := abacus.Checkpoint{Count: abacus.Sum{Hi: 1, Lo: 3}, Through: at(10 * time.Second)}
	steps := []struct {
		name       string
		counter    string
		old, fixed abacus.Checkpoint
		ok         bool
		want       abacus.Checkpoint // stored afterwards
	}{
		{"stale count", "c", checkpointAt(10*time.Second, 4), checkpointAt(10*time.Second, 7), false, checkpointAt(10*time.Second, 5)},
		{"stale time", "c", checkpointAt(5*time.Second, 5), checkpointAt(5*time.Second, 7), false, checkpointAt(10*time.Second, 5)},
		{"time moved", "c", checkpointAt(10*time.Second, 5), checkpointAt(20*time.Second, 7), false, checkpointAt(10*time.Second, 5)},
		{"time moved back", "c", checkpointAt(10*time.Second, 5), checkpointAt(5*time.Second, 7), false, checkpointAt(10*time.Second, 5)},
		{"repaired", "c", checkpointAt(10*time.Second, 5), checkpointAt(10*time.Second, 7), true, checkpointAt(10*time.Second, 7)},
		{"repeated", "c", checkpointAt(10*time.Second, 5), checkpointAt(10*time.Second, 7), false, checkpointAt(10*time.Second, 7)},
		{"beyond int64", "c", checkpointAt(10*time.Second, 7), big, true, big},
		{"negative", "c", big, checkpointAt(10*time.Second, -2), true, checkpointAt(10*time.Second, -2)},
		{"no checkpoint", "none", abacus.Checkpoint{}, checkpointAt(10*time.Second, 1), false, abacus.Checkpoint{}},
		{"another counter's", "none", checkpointAt(10*time.Second, -2), checkpointAt(10*time.Second, 1), false, abacus.Checkpoint{}},
	}
	for _, s := range steps {
		got, ok, err := b.RepairCheckpoint(ctx, ns, s.counter, s.old, s.fixed)
		if err != nil {
			t.Fatalf("%s: RepairCheckpoint: %v", s.name, err)
		}
		if ok != s.ok || !sameCheckpoint(got, s.want) {
			t.Fatalf("%s: RepairCheckpoint(%+v, %+v) = %+v, %v; want %+v, %v", s.name, s.old, s.fixed, got, ok, s.want, s.ok)
		}
		st, err := b.RollupState(ctx, ns, s.counter)
		if err != nil {
			t.Fatal(err)
		}
		if !sameCheckpoint(st.Checkpoint, s.want) {
			t.Fatalf("%s: RollupState = %+v, want %+v", s.name, st.Checkpoint, s.want)
		}
	}
	_, _, err := b.RepairCheckpoint(ctx, ns, "none", abacus.Checkpoint{}, abacus.Checkpoint{Count: abacus.SumOf(1)})
	checkCode(t, "RepairCheckpoint to a checkpoint without a time", err, abacus.InvalidArgument)
	_, _, err = b.RepairCheckpoint(ctx, nil, "c", checkpointAt(10*time.Second, -2), checkpointAt(10*time.Second, 0))
	checkCode(t, "RepairCheckpoint without a namespace", err, abacus.InvalidArgument)

	// The repaired checkpoint still fences appends before it, and advances.
	err = b.Append(ctx, writes(ns, add("c", 5*time.Second, "late", 1)))
	checkCode(t, "Append behind a repaired checkpoint", err, abacus.FailedPrecondition)
	mustAppend(t, b, ns, add("c", 15*time.Second, "ok", 1))
	advance(t, b, ns, "c", checkpointAt(20*time.Second, -1))
	// A repair in one namespace leaves another's counter of that name alone.
	other := newNamespace(t, b, "repair-other")
	advance(t, b, other, "c", checkpointAt(20*time.Second, -1))
	if _, ok, err := b.RepairCheckpoint(ctx, ns, "c", checkpointAt(20*time.Second, -1), checkpointAt(20*time.Second, 3)); err != nil || !ok {
		t.Fatalf("RepairCheckpoint = %v, %v", ok, err)
	}
	if st, err := b.RollupState(ctx, other, "c"); err != nil || !sameCheckpoint(st.Checkpoint, checkpointAt(20*time.Second, -1)) {
		t.Fatalf("other namespace's checkpoint after a repair = %+v, %v", st.Checkpoint, err)
	}
}

// repairMark is added to a checkpoint's count by each repair in
// testRepairConcurrent: a count is its time in seconds plus a multiple of it.
const repairMark = 1_000_000

// testRepairConcurrent races repairs with advances from many goroutines,
// batched ones too where the backend has them: a repair either replaces the
// checkpoint it read or fails because an advance moved it; no advance is
// lost, the checkpoint never moves back, and each count belongs to its time
// (an advance's own, or one repaired at the same time).
func testRepairConcurrent(t *testing.T, b Backend) {
	ctx := context.Background()
	ns := newNamespace(t, b, "repairrace")
	batch, _ := b.(abacus.BatchRollupStore)
	const advancers, perG, repairers = 8, 25, 3
	var (
		wg       sync.WaitGroup
		done     atomic.Bool
		maxSecs  atomic.Int64
		repaired atomic.Int64
		refused  atomic.Int64
	)
	valid := func(cp abacus.Checkpoint) error {
		if cp.Through.IsZero() {
			return nil
		}
		secs := int64(cp.Through.Sub(t0) / time.Second)
		n, ok := cp.Count.Int64()
		if !ok || n < secs || (n-secs)%repairMark != 0 {
			return fmt.Errorf("checkpoint %+v: count does not belong to its time", cp)
		}
		return nil
	}
	for range repairers {
		wg.Go(func() {
			var last time.Time
			for !done.Load() {
				st, err := b.RollupState(ctx, ns, "c")
				if err != nil {
					t.Errorf("RollupState: %v", err)
					return
				}
				if err := valid(st.Checkpoint); err != nil {
					t.Error(err)
					return
				}
				if st.Through.Before(last) {
					t.Errorf("checkpoint moved back from %v to %v", last, st.Through)
					return
				}
				last = st.Through
				if st.Through.IsZero() {
					continue
				}
				fixed := abacus.Checkpoint{Count: st.Count.Add(repairMark), Through: st.Through}
				got, ok, err := b.RepairCheckpoint(ctx, ns, "c", st.Checkpoint, fixed)
				switch {
				case err != nil:
					t.Errorf("RepairCheckpoint: %v", err)
					return
				case ok && !sameCheckpoint(got, fixed):
					t.Errorf("RepairCheckpoint(%+v, %+v) = %+v, true", st.Checkpoint, fixed, got)
					return
				case !ok && sameCheckpoint(got, st.Checkpoint):
					t.Errorf("RepairCheckpoint(%+v) refused, but returned it as stored", st.Checkpoint)
					return
				case !ok && got.Through.Before(st.Through):
					t.Errorf("RepairCheckpoint(%+v) refused, returning an older %+v", st.Checkpoint, got)
					return
				case ok:
					repaired.Add(1)
				default:
					refused.Add(1)
				}
			}
		})
	}
	var advWG sync.WaitGroup
	for g := range advancers {
		advWG.Go(func() {
			for range perG {
				// Mostly rising, so most advances write: the window
				// for a repair to race is there at every one.
				secs := maxSecs.Add(1)
				cp := checkpointAt(time.Duration(secs)*time.Second, secs)
				var got abacus.Checkpoint
				var err error
				if batch != nil && g%2 == 1 {
					var cps []abacus.Checkpoint
					cps, err = batch.AdvanceCheckpoints(ctx, ns, []string{"b", "c"}, []abacus.Checkpoint{cp, cp})
					if err == nil {
						got = cps[1]
					}
				} else {
					got, err = b.AdvanceCheckpoint(ctx, ns, "c", cp)
				}
				if err != nil {
					t.Errorf("AdvanceCheckpoint: %v", err)
					return
				}
				if got.Through.Before(cp.Through) {
					t.Errorf("AdvanceCheckpoint(%v) returned an older checkpoint %v", cp.Through, got.Through)
				}
				if err := valid(got); err != nil {
					t.Error(err)
				}
			}
		})
	}
	advWG.Wait()
	done.Store(true)
	wg.Wait()
	st, err := b.RollupState(ctx, ns, "c")
	if err != nil {
		t.Fatal(err)
	}
	if want := at(time.Duration(maxSecs.Load()) * time.Second); !st.Through.Equal(want) {
		t.Fatalf("final checkpoint %+v; want the newest time %v", st.Checkpoint, want)
	}
	if err := valid(st.Checkpoint); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d repairs, %d refused", repaired.Load(), refused.Load())
	if repaired.Load() == 0 {
		t.Fatalf("no repair succeeded")
	}
}

// testRetainedBase checks the retained bases: zero until set, forward only,
// per counter and namespace, apart from the checkpoint, and dropped with the
// namespace.
func testRetainedBase(t *testing.T, b Backend) {
	ctx := context.Background()
	ns := newNamespace(t, b, "retained")
	other := newNamespace(t, b, "retained-other")
	base := func(n *abacus.Namespace, counter string) abacus.Checkpoint {
		t.Helper()
		got, err := b.RetainedBase(ctx, n, counter)
		if err != nil {
			t.Fatalf("RetainedBase(%s, %q): %v", n.Name, counter, err)
		}
		return got
	}
	if got := base(ns, "c"); got != (abacus.Checkpoint{}) {
		t.Fatalf("RetainedBase of a new counter = %+v, want zero", got)
	}
	big := abacus.Checkpoint{Count: abacus.Sum{Hi: 1, Lo: 2}, Through: at(time.Hour)}
	steps := []struct {
		name      string
		set, want abacus.Checkpoint
	}{
		{"first", checkpointAt(time.Minute, 5), checkpointAt(time.Minute, 5)},
		{"earlier: ignored", checkpointAt(30*time.Second, 99), checkpointAt(time.Minute, 5)},
		{"later", checkpointAt(2*time.Minute, -3), checkpointAt(2*time.Minute, -3)},
		{"zero: ignored", abacus.Checkpoint{}, checkpointAt(2*time.Minute, -3)},
		{"beyond int64", big, big},
	}
	for _, s := range steps {
		if err := b.SetRetainedBase(ctx, ns, "c", s.set); err != nil {
			t.Fatalf("%s: SetRetainedBase(%+v): %v", s.name, s.set, err)
		}
		if got := base(ns, "c"); !sameCheckpoint(got, s.want) {
			t.Fatalf("%s: RetainedBase = %+v, want %+v", s.name, got, s.want)
		}
	}
	checkCode(t, "SetRetainedBase without a namespace", b.SetRetainedBase(ctx, nil, "c", big), abacus.InvalidArgument)
	checkCode(t, "SetRetainedBase of no counter", b.SetRetainedBase(ctx, ns, "", big), abacus.InvalidArgument)

	// Per counter and namespace, and no checkpoint.
	if got := base(ns, "d"); got != (abacus.Checkpoint{}) {
		t.Fatalf("RetainedBase of another counter = %+v", got)
	}
	if got := base(other, "c"); got != (abacus.Checkpoint{}) {
		t.Fatalf("RetainedBase in another namespace = %+v", got)
	}
	if st, err := b.RollupState(ctx, ns, "c"); err != nil || st != (abacus.RollupState{}) {
		t.Fatalf("RollupState of a counter with only a retained base = %+v, %v", st, err)
	}

	// Concurrent setters leave the latest.
	var wg sync.WaitGroup
	var maxSecs atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for range 20 {
				secs := rng.Int64N(1000) + 1
				for {
					m := maxSecs.Load()
					if secs <= m || maxSecs.CompareAndSwap(m, secs) {
						break
					}
				}
				if err := b.SetRetainedBase(ctx, other, "c", checkpointAt(time.Duration(secs)*time.Second, secs)); err != nil {
					t.Errorf("SetRetainedBase: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, want := base(other, "c"), checkpointAt(time.Duration(maxSecs.Load())*time.Second, maxSecs.Load()); !sameCheckpoint(got, want) {
		t.Fatalf("RetainedBase after concurrent sets = %+v, want %+v", got, want)
	}

	// Dropped with the namespace, by DropNamespace or DeleteNamespace.
	if err := b.DropNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if got := base(ns, "c"); got != (abacus.Checkpoint{}) {
		t.Fatalf("RetainedBase after DropNamespace = %+v, want zero", got)
	}
	if got := base(other, "c"); got.Through.IsZero() {
		t.Fatalf("DropNamespace of another namespace dropped a retained base")
	}
	if _, err := b.DeleteNamespace(ctx, other.Name); err != nil {
		t.Fatal(err)
	}
	if got := base(other, "c"); got != (abacus.Checkpoint{}) {
		t.Fatalf("RetainedBase after DeleteNamespace = %+v, want zero", got)
	}
}
