package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// testAppendScanOrder checks that Scan returns Event.Before order in both
// directions, whatever the order of the appends: by time, deltas before clears
// at equal times, then by ID.
func testAppendScanOrder(t *testing.T, b Backend) {
	ns := newNamespace(t, b, "order")
	evs := []abacus.Event{
		add("c", 5*time.Second, "e", 1),
		clr("c", 5*time.Second, "a"), // a clear sorts after the deltas at its time, whatever its ID
		add("c", 5*time.Second, "z", 2),
		add("c", 5*time.Second, "b", 3),
		add("c", 0, "x", 4),
		add("c", 5*time.Second+time.Nanosecond, "a", 5),
		clr("c", 5*time.Second, "b2"),
		add("c", 65*time.Second, "m", 6), // next slice
		add("c", 15*time.Second, "m", 7), // next time bucket
		add("c", -time.Nanosecond, "y", 8),
	}
	// Append in an order unrelated to the expected one, in several batches.
	mustAppend(t, b, ns, evs[6], evs[0])
	mustAppend(t, b, ns, evs[3], evs[9], evs[1])
	mustAppend(t, b, ns, evs[2])
	mustAppend(t, b, ns, evs[8], evs[5], evs[7], evs[4])

	for _, reverse := range []bool{false, true} {
		got := scanAll(t, b, ns, "c", abacus.Range{Reverse: reverse})
		checkEvents(t, fmt.Sprintf("Scan(reverse=%v)", reverse), got, sorted(evs, reverse))
	}
	// The fold of the scan honours the clears: after the clears at 5s only the
	// events after 5s count.
	got := scanAll(t, b, ns, "c", abacus.Range{})
	if n, _ := (abacus.Sum{}).Fold(got).Int64(); n != 5+7+6 {
		t.Fatalf("fold = %d, want %d", n, 5+7+6)
	}
	if got := scanAll(t, b, ns, "other", abacus.Range{}); len(got) != 0 {
		t.Fatalf("Scan of another counter returned %v", recs(got))
	}
}

// testScanRangeBoundaries checks the half-open [From, To) range at bucket and
// slice boundaries, and zero (unbounded) ends.
func testScanRangeBoundaries(t *testing.T, b Backend) {
	ns := newNamespace(t, b, "bounds")
	ns1 := time.Nanosecond
	offsets := []time.Duration{
		-sliceWidth, -ns1, 0, ns1, bucketWidth - ns1, bucketWidth, 30 * time.Second,
		sliceWidth - ns1, sliceWidth, sliceWidth + bucketWidth, 3*sliceWidth + 5*time.Second,
	}
	var all []abacus.Event
	for i, off := range offsets {
		all = append(all, add("k", off, fmt.Sprintf("id%02d", i), int64(i+1)))
	}
	mustAppend(t, b, ns, all...)

	inRange := func(from, to time.Time) []abacus.Event {
		var out []abacus.Event
		for _, e := range all {
			if (from.IsZero() || !e.Time.Before(from)) && (to.IsZero() || e.Time.Before(to)) {
				out = append(out, e)
			}
		}
		return out
	}
	var zero time.Time
	cases := []struct {
		name     string
		from, to time.Time
		wantN    int // -1: don't check the count, only the model
	}{
		{"unbounded", zero, zero, len(offsets)},
		{"from only", at(0), zero, 9},
		{"to only", zero, at(0), 2},
		{"first bucket", at(0), at(bucketWidth), 3},
		{"exact event is excluded at To", at(0), at(ns1), 1},
		{"one nanosecond", at(ns1), at(2 * ns1), 1},
		{"first slice", at(0), at(sliceWidth), 6},
		{"slice boundary", at(sliceWidth - ns1), at(sliceWidth + ns1), 2},
		{"mid bucket to mid slice", at(5 * time.Second), at(sliceWidth + 5*time.Second), 5},
		{"empty: From == To", at(bucketWidth), at(bucketWidth), 0},
		{"empty: To before From", at(sliceWidth), at(0), 0},
		{"empty: gap", at(sliceWidth + bucketWidth + ns1), at(3 * sliceWidth), 0},
		{"before everything", at(-time.Hour), at(-sliceWidth), 0},
		{"after everything", at(time.Hour), zero, 0},
		{"spans empty slices", at(sliceWidth + ns1), at(time.Hour), 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, reverse := range []bool{false, true} {
				r := abacus.Range{From: tc.from, To: tc.to, Reverse: reverse}
				got := scanAll(t, b, ns, "k", r)
				checkEvents(t, "Scan"+fmtRange(r), got, sorted(inRange(tc.from, tc.to), reverse))
				if len(got) != tc.wantN {
					t.Fatalf("Scan%s returned %d events, want %d", fmtRange(r), len(got), tc.wantN)
				}
			}
		})
	}
}

// testScanAcrossPartitions writes a counter's events over several slices, many
// time buckets and every event bucket, and checks scans of many ranges.
func testScanAcrossPartitions(t *testing.T, b Backend) {
	ns := newNamespace(t, b, "partitions")
	var all []abacus.Event
	for i := range 240 {
		// 1.3 s apart: 5+ slices, ~30 time buckets; IDs hash over all 4 event buckets.
		off := time.Duration(i) * 1300 * time.Millisecond
		all = append(all, add("hot", off, fmt.Sprintf("tok-%d", i%37), int64(i%7-3)|1))
	}
	for i := 0; i < len(all); i += 16 {
		mustAppend(t, b, ns, all[i:min(i+16, len(all))]...)
	}
	mustAppend(t, b, ns, add("cold", 90*time.Second, "x", 1)) // another counter in the same slices
	for _, r := range []abacus.Range{
		{},
		{From: at(17 * time.Second), To: at(250 * time.Second)},
		{From: at(59 * time.Second), To: at(61 * time.Second)},
		{From: at(100 * time.Second)},
		{To: at(200 * time.Second)},
	} {
		var want []abacus.Event
		for _, e := range all {
			if (r.From.IsZero() || !e.Time.Before(r.From)) && (r.To.IsZero() || e.Time.Before(r.To)) {
				want = append(want, e)
			}
		}
		for _, reverse := range []bool{false, true} {
			r.Reverse = reverse
			checkEvents(t, "Scan"+fmtRange(r), scanAll(t, b, ns, "hot", r), sorted(want, reverse))
		}
	}
}

// testScanCallbackError checks that fn's error stops the scan and is returned.
func testScanCallbackError(t *testing.T, b Backend) {
	ns := newNamespace(t, b, "stop")
	for i := range 10 {
		mustAppend(t, b, ns, add("c", time.Duration(i)*25*time.Second, "t", 1))
	}
	stop := errors.New("stop here")
	calls := 0
	err := b.Scan(context.Background(), ns, "c", abacus.Range{}, func(abacus.Event) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Scan returned %v, want the callback's error", err)
	}
	if calls != 3 {
		t.Fatalf("callback called %d times after returning an error at call 3", calls)
	}
}

// testExtremeDeltas checks negative deltas and the int64 extremes round-trip.
func testExtremeDeltas(t *testing.T, b Backend) {
	ns := newNamespace(t, b, "deltas")
	evs := []abacus.Event{
		add("c", 0, "a", -5),
		add("c", time.Second, "b", 3),
		add("c", 2*time.Second, "c", math.MaxInt64),
		add("c", 3*time.Second, "d", math.MinInt64),
		add("c", 4*time.Second, "e", -1),
	}
	mustAppend(t, b, ns, evs...)
	got := scanAll(t, b, ns, "c", abacus.Range{})
	checkEvents(t, "Scan", got, evs)
	want := abacus.SumOf(-5).Add(3).Add(math.MaxInt64).Add(math.MinInt64).Add(-1)
	if s := (abacus.Sum{}).Fold(got); s != want {
		t.Fatalf("fold = %+v, want %+v", s, want)
	}
}

// testIdempotentReappend checks that a re-append with the same payload is a
// no-op, and one with another payload is AlreadyExists and writes nothing of
// its batch.
func testIdempotentReappend(t *testing.T, b Backend) {
	ctx := context.Background()
	ns := newNamespace(t, b, "idem")
	first := add("c", time.Second, "tok", 2)
	mustAppend(t, b, ns, first)
	mustAppend(t, b, ns, first) // retry
	mustAppend(t, b, ns, first, add("c", 2*time.Second, "tok2", 1))
	want := []abacus.Event{first, add("c", 2*time.Second, "tok2", 1)}
	checkEvents(t, "after retries", scanAll(t, b, ns, "c", abacus.Range{}), want)

	for _, conflict := range []abacus.Event{
		add("c", time.Second, "tok", 3), // another delta
		clr("c", time.Second, "tok"),    // a clear instead of a delta
	} {
		err := b.Append(ctx, writes(ns,
			add("c", 3*time.Second, "new", 5), // would be new: must not be written
			conflict,
			add("d", 3*time.Second, "new", 5), // another counter: must not be written
		))
		checkCode(t, "Append with a reused token", err, abacus.AlreadyExists)
		if !strings.Contains(abacus.ErrorMessage(err), "tok") {
			t.Fatalf("AlreadyExists message %q does not name the token", abacus.ErrorMessage(err))
		}
		checkEvents(t, "after a refused batch", scanAll(t, b, ns, "c", abacus.Range{}), want)
		checkEvents(t, "after a refused batch", scanAll(t, b, ns, "d", abacus.Range{}), nil)
		st, err := b.RollupState(ctx, ns, "d")
		if err != nil || !st.LastWrite.IsZero() {
			t.Fatalf("refused batch recorded a last write: %+v, %v", st, err)
		}
	}
	// The same token at another time, or for another counter, is another key.
	mustAppend(t, b, ns, add("c", time.Second+1, "tok", 9), add("e", time.Second, "tok", 9))
	if got := scanAll(t, b, ns, "c", abacus.Range{}); len(got) != 3 {
		t.Fatalf("same token at another time: got %v", recs(got))
	}
}

// testDuplicatesWithinBatch checks duplicates inside one Append.
func testDuplicatesWithinBatch(t *testing.T, b Backend) {
	ns := newNamespace(t, b, "dups")
	e := add("c", 0, "tok", 4)
	mustAppend(t, b, ns, e, e, add("c", 0, "other", 1), e)
	checkEvents(t, "same payload twice", scanAll(t, b, ns, "c", abacus.Range{}),
		sorted([]abacus.Event{e, add("c", 0, "other", 1)}, false))

	err := b.Append(context.Background(), writes(ns,
		add("d", 0, "x", 1), add("d", 0, "tok", 1), add("d", 0, "tok", 2)))
	checkCode(t, "Append with a conflict inside the batch", err, abacus.AlreadyExists)
	checkEvents(t, "after a refused batch", scanAll(t, b, ns, "d", abacus.Range{}), nil)
}

// testConcurrentSameKey races appends of one key with different payloads:
// exactly one wins, every other gets AlreadyExists, and the winner is stored.
func testConcurrentSameKey(t *testing.T, b Backend) {
	ns := newNamespace(t, b, "race")
	const goroutines = 24
	for round := range 4 {
		key := fmt.Sprintf("tok-%d", round)
		off := time.Duration(round) * 7 * time.Second
		errs := make([]error, goroutines)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range goroutines {
			wg.Go(func() {
				<-start
				// Half the goroutines also write an event of their own in the
				// same batch, which must not survive if they lose.
				evs := []abacus.Event{add("hot", off, key, int64(g+1))}
				if g%2 == 1 {
					evs = append(evs, add("hot", off, fmt.Sprintf("own-%d-%d", round, g), 1000))
				}
				errs[g] = b.Append(context.Background(), writes(ns, evs...))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for g, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: goroutines %d and %d both succeeded", round, winner, g)
			case err == nil:
				winner = g
			default:
				checkCode(t, fmt.Sprintf("round %d goroutine %d", round, g), err, abacus.AlreadyExists)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no append succeeded", round)
		}
		got := scanAll(t, b, ns, "hot", abacus.Range{From: at(off), To: at(off + 1)})
		want := []abacus.Event{add("hot", off, key, int64(winner+1))}
		if winner%2 == 1 {
			want = append(want, add("hot", off, fmt.Sprintf("own-%d-%d", round, winner), 1000))
		}
		checkEvents(t, fmt.Sprintf("round %d", round), got, sorted(want, false))

		// Retries of the winning payload all succeed and change nothing.
		for g := range goroutines {
			wg.Go(func() {
				if err := b.Append(context.Background(), writes(ns, want[0])); err != nil {
					t.Errorf("retry %d of the winning payload: %v", g, err)
				}
			})
		}
		wg.Wait()
		checkEvents(t, fmt.Sprintf("round %d after retries", round),
			scanAll(t, b, ns, "hot", abacus.Range{From: at(off), To: at(off + 1)}), sorted(want, false))
	}
}

// testConcurrentAppendsAllKept checks that no acknowledged write is lost when
// many goroutines append to one counter and to several at once.
func testConcurrentAppendsAllKept(t *testing.T, b Backend) {
	ns := newNamespace(t, b, "many")
	const goroutines, perG = 16, 25
	var (
		mu    sync.Mutex
		acked []abacus.Event
		wg    sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				e := add("c", time.Duration(i*goroutines+g)*150*time.Millisecond, fmt.Sprintf("g%d-%d", g, i), int64(g+1))
				evs := []abacus.Event{e, add(fmt.Sprintf("c%d", g%4), e.Time.Sub(t0), e.ID, 1)}
				if err := b.Append(context.Background(), writes(ns, evs...)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, evs...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	byCounter := map[string][]abacus.Event{}
	for _, e := range acked {
		byCounter[e.Counter] = append(byCounter[e.Counter], e)
	}
	for c, want := range byCounter {
		checkEvents(t, "Scan("+c+")", scanAll(t, b, ns, c, abacus.Range{}), sorted(want, false))
	}
}

// lastWriteOK reports whether a reported last write fits the latest event
// time want: zero for zero, else at or after it by less than
// abacus.LastWriteResolution.
func lastWriteOK(got, want time.Time) bool {
	if want.IsZero() || got.IsZero() {
		return got.IsZero() == want.IsZero()
	}
	return !got.Before(want) && got.Before(want.Add(abacus.LastWriteResolution))
}

// testLastWrite checks that the last write time is the max event time, even
// when events arrive out of order, in one batch or in several.
func testLastWrite(t *testing.T, b Backend) {
	ctx := context.Background()
	ns := newNamespace(t, b, "lastwrite")
	st, err := b.RollupState(ctx, ns, "c")
	if err != nil || st != (abacus.RollupState{}) {
		t.Fatalf("RollupState of an unwritten counter = %+v, %v; want the zero state", st, err)
	}
	check := func(counter string, want time.Time) {
		t.Helper()
		st, err := b.RollupState(ctx, ns, counter)
		if err != nil {
			t.Fatal(err)
		}
		if !lastWriteOK(st.LastWrite, want) {
			t.Fatalf("LastWrite(%s) = %v, want %v", counter, st.LastWrite, want)
		}
	}
	mustAppend(t, b, ns, add("c", 30*time.Second, "a", 1))
	check("c", at(30*time.Second))
	mustAppend(t, b, ns, add("c", 10*time.Second, "b", 1)) // older: no change
	check("c", at(30*time.Second))
	mustAppend(t, b, ns, add("c", 50*time.Second, "c", 1), add("c", 45*time.Second, "d", 1), clr("c", 20*time.Second, "e"))
	check("c", at(50*time.Second))
	mustAppend(t, b, ns, clr("c", 2*time.Minute, "f"))
	check("c", at(2*time.Minute))
	mustAppend(t, b, ns, add("c", 2*time.Minute, "a", 1)) // retry-free re-append at the same max
	check("c", at(2*time.Minute))

	// Concurrent appends out of order.
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 5 {
				off := time.Duration((g*7+i*13)%80) * time.Second
				if err := b.Append(ctx, writes(ns, add("d", off, fmt.Sprintf("%d-%d", g, i), 1))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var maxOff time.Duration
	for g := range 16 {
		for i := range 5 {
			maxOff = max(maxOff, time.Duration((g*7+i*13)%80)*time.Second)
		}
	}
	check("d", at(maxOff))
}

// testCanceledContext checks that a canceled context is reported as Canceled
// and writes nothing.
func testCanceledContext(t *testing.T, b Backend) {
	ns := newNamespace(t, b, "canceled")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Append(ctx, writes(ns, add("c", 0, "a", 1)))
	checkCode(t, "Append with a canceled context", err, abacus.Canceled)
	checkEvents(t, "after a canceled Append", scanAll(t, b, ns, "c", abacus.Range{}), nil)
	err = b.Scan(ctx, ns, "c", abacus.Range{}, func(abacus.Event) error { return nil })
	checkCode(t, "Scan with a canceled context", err, abacus.Canceled)
}
