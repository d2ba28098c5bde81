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

// testAdvanceAfterRepair checks the race a recount has with a rollup: the
// rollup reads a wrong checkpoint, a repair corrects it at the same time,
// and the rollup's advance from what it read, which would carry the error
// forward, fails and returns the repaired checkpoint; an advance from the
// repaired one then succeeds. Single and batched.
func testAdvanceAfterRepair(t *testing.T, b Backend) {
	ctx := context.Background()
	ns := newNamespace(t, b, "advance-after-repair")
	wrong, right := checkpointAt(10*time.Second, 15), checkpointAt(10*time.Second, 5)
	repair := func(counter string) {
		t.Helper()
		if got, ok, err := b.RepairCheckpoint(ctx, ns, counter, wrong, right); err != nil || !ok || !sameCheckpoint(got, right) {
			t.Fatalf("RepairCheckpoint(%s) = %+v, %v, %v", counter, got, ok, err)
		}
	}
	stored := func(counter string) abacus.Checkpoint {
		t.Helper()
		st, err := b.RollupState(ctx, ns, counter)
		if err != nil {
			t.Fatal(err)
		}
		return st.Checkpoint
	}
	// The rollup folds 2 events in [10s, 20s) onto the count it read.
	folded := func(cp abacus.Checkpoint) abacus.Checkpoint {
		return abacus.Checkpoint{Count: cp.Count.Add(2), Through: at(20 * time.Second)}
	}

	advance(t, b, ns, "c", wrong)
	read := stored("c")
	repair("c")
	got, err := b.AdvanceCheckpoint(ctx, ns, "c", read, folded(read))
	if err != nil {
		t.Fatal(err)
	}
	if !sameCheckpoint(got, right) || !sameCheckpoint(stored("c"), right) {
		t.Fatalf("AdvanceCheckpoint from the checkpoint a repair replaced = %+v, stored %+v; want the repaired %+v kept", got, stored("c"), right)
	}
	if got, err := b.AdvanceCheckpoint(ctx, ns, "c", got, folded(got)); err != nil || !sameCheckpoint(got, checkpointAt(20*time.Second, 7)) {
		t.Fatalf("AdvanceCheckpoint from the repaired checkpoint = %+v, %v; want %+v", got, err, checkpointAt(20*time.Second, 7))
	}

	bs, ok := b.(abacus.BatchRollupStore)
	if !ok {
		return
	}
	// Two counters read in one batch, one of them repaired before the
	// batch's advance: only the other advances.
	names := []string{"x", "y"}
	advance(t, b, ns, "x", wrong)
	advance(t, b, ns, "y", wrong)
	states, err := bs.RollupStates(ctx, ns, names)
	if err != nil {
		t.Fatal(err)
	}
	repair("y")
	froms := []abacus.Checkpoint{states[0].Checkpoint, states[1].Checkpoint}
	tos := []abacus.Checkpoint{folded(froms[0]), folded(froms[1])}
	cps, err := bs.AdvanceCheckpoints(ctx, ns, names, froms, tos)
	if err != nil {
		t.Fatal(err)
	}
	want := []abacus.Checkpoint{checkpointAt(20*time.Second, 17), right}
	for i, c := range names {
		if !sameCheckpoint(cps[i], want[i]) || !sameCheckpoint(stored(c), want[i]) {
			t.Errorf("%s: AdvanceCheckpoints = %+v, stored %+v; want %+v", c, cps[i], stored(c), want[i])
		}
	}
}

// repairError is the error of the wrong checkpoint testRepairConcurrent
// starts from: a checkpoint's count is its time in seconds, plus repairError
// until a repair corrects it.
const repairError = 1_000_000

// testRepairConcurrent races rollups, each advancing the checkpoint from the
// one it read (single or batched where the backend has it) and starting
// again from the one returned when that fails, with recounts that repair a
// wrong count: once a repair has corrected the count, no advance from a
// checkpoint read before it brings the error back, the checkpoint never
// moves back, and the final checkpoint is the newest time with the exact
// count.
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
		failed   atomic.Int64
		fixed    atomic.Bool // a repair succeeded: no error may be seen after
	)
	errorOf := func(cp abacus.Checkpoint) (int64, error) {
		secs := int64(cp.Through.Sub(t0) / time.Second)
		n, ok := cp.Count.Int64()
		if !ok || (n != secs && n != secs+repairError) {
			return 0, fmt.Errorf("checkpoint %+v: count does not belong to its time", cp)
		}
		return n - secs, nil
	}
	check := func(cp abacus.Checkpoint, fixedBefore bool) error {
		e, err := errorOf(cp)
		if err == nil && e != 0 && fixedBefore {
			err = fmt.Errorf("checkpoint %+v: the error came back after a repair", cp)
		}
		return err
	}
	maxSecs.Store(1)
	advance(t, b, ns, "c", checkpointAt(time.Second, 1+repairError))
	for range repairers {
		wg.Go(func() {
			var last time.Time
			for !done.Load() {
				wasFixed := fixed.Load()
				st, err := b.RollupState(ctx, ns, "c")
				if err != nil {
					t.Errorf("RollupState: %v", err)
					return
				}
				if err := check(st.Checkpoint, wasFixed); err != nil {
					t.Error(err)
					return
				}
				if st.Through.Before(last) {
					t.Errorf("checkpoint moved back from %v to %v", last, st.Through)
					return
				}
				last = st.Through
				if e, _ := errorOf(st.Checkpoint); e == 0 {
					continue
				}
				right := abacus.Checkpoint{Count: st.Count.Add(-repairError), Through: st.Through}
				got, ok, err := b.RepairCheckpoint(ctx, ns, "c", st.Checkpoint, right)
				switch {
				case err != nil:
					t.Errorf("RepairCheckpoint: %v", err)
					return
				case ok && !sameCheckpoint(got, right):
					t.Errorf("RepairCheckpoint(%+v, %+v) = %+v, true", st.Checkpoint, right, got)
					return
				case !ok && sameCheckpoint(got, st.Checkpoint):
					t.Errorf("RepairCheckpoint(%+v) refused, but returned it as stored", st.Checkpoint)
					return
				case ok:
					fixed.Store(true)
					repaired.Add(1)
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
				to := func(from abacus.Checkpoint) abacus.Checkpoint {
					// The fold of one event a second after from.
					return abacus.Checkpoint{Count: from.Count.Add(secs - int64(from.Through.Sub(t0)/time.Second)), Through: at(time.Duration(secs) * time.Second)}
				}
				st, err := b.RollupState(ctx, ns, "c")
				if err != nil {
					t.Errorf("RollupState: %v", err)
					return
				}
				from := st.Checkpoint
				for to(from).Newer(from) {
					wasFixed := fixed.Load()
					var got abacus.Checkpoint
					if batch != nil && g%2 == 1 {
						// With a counter of its own, which always advances.
						own := fmt.Sprintf("own%d", g)
						states, err := batch.RollupStates(ctx, ns, []string{own})
						if err != nil {
							t.Errorf("RollupStates: %v", err)
							return
						}
						ownTo := checkpointAt(time.Duration(secs)*time.Second, 0)
						var cps []abacus.Checkpoint
						cps, err = batch.AdvanceCheckpoints(ctx, ns, []string{own, "c"}, []abacus.Checkpoint{states[0].Checkpoint, from}, []abacus.Checkpoint{ownTo, to(from)})
						if err == nil && !sameCheckpoint(cps[0], ownTo) {
							err = fmt.Errorf("AdvanceCheckpoints of %s from what it read = %+v, want %+v", own, cps[0], ownTo)
						}
						if err == nil {
							got = cps[1]
						}
					} else {
						got, err = b.AdvanceCheckpoint(ctx, ns, "c", from, to(from))
					}
					if err != nil {
						t.Errorf("AdvanceCheckpoint: %v", err)
						return
					}
					if got.Through.Before(from.Through) {
						t.Errorf("AdvanceCheckpoint(%+v, %+v) returned an older checkpoint %+v", from, to(from), got)
					}
					if err := check(got, wasFixed); err != nil {
						t.Error(err)
						return
					}
					if sameCheckpoint(got, to(from)) {
						break
					}
					if sameCheckpoint(got, from) {
						t.Errorf("AdvanceCheckpoint(%+v, %+v) stored nothing, but returned from as stored", from, to(from))
						return
					}
					failed.Add(1)
					from = got
				}
			}
		})
	}
	advWG.Wait()
	// Let a repairer correct the count if none has yet, then stop them.
	for deadline := time.Now().Add(10 * time.Second); !fixed.Load() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	done.Store(true)
	wg.Wait()
	st, err := b.RollupState(ctx, ns, "c")
	if err != nil {
		t.Fatal(err)
	}
	if want := checkpointAt(time.Duration(maxSecs.Load())*time.Second, maxSecs.Load()); !sameCheckpoint(st.Checkpoint, want) {
		t.Fatalf("final checkpoint %+v; want the newest time with the exact count, %+v", st.Checkpoint, want)
	}
	t.Logf("%d repairs, %d advances from a stale checkpoint failed", repaired.Load(), failed.Load())
	if repaired.Load() != 1 {
		t.Fatalf("%d repairs succeeded, want 1: the error came back", repaired.Load())
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
