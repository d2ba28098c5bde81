package embedded

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// openFoldStore opens a store, closed with the test, with an EVENTUAL
// namespace of one-minute slices.
func openFoldStore(t *testing.T) (*Store, *abacus.Namespace) {
	t.Helper()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ns, err := s.CreateNamespace(context.Background(), &abacus.Namespace{Name: "f", Type: abacus.Eventual,
		Partition: abacus.TimePartition{BucketsPerID: 4, BucketWidth: 10 * time.Second, SliceWidth: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	return s, ns
}

// scanFold folds the events of r's range that a scan reads, on both sides
// of r.Mid: what FoldMany must answer.
func scanFold(t *testing.T, s *Store, ns *abacus.Namespace, r abacus.FoldRequest) (before, after abacus.Partial) {
	t.Helper()
	if err := s.Scan(context.Background(), ns, r.Counter, abacus.Range{From: r.From, To: r.To}, func(e abacus.Event) error {
		if e.Time.Before(r.Mid) {
			before = before.Apply(e)
		} else {
			after = after.Apply(e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return before, after
}

// TestFoldMany folds recent events from the in-memory grains, in the active
// table, in a frozen one and in summaries of written-out ones, and leaves to
// a scan what the grains cannot answer exactly.
func TestFoldMany(t *testing.T) {
	ctx := context.Background()
	s, ns := openFoldStore(t)
	g := abacus.RollupGrain
	base := time.Now().Add(time.Minute).Truncate(time.Second)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	n := 0
	write := func(c string, d time.Duration, delta int64, clear bool) {
		t.Helper()
		n++
		e := abacus.Event{Counter: c, Time: at(d), ID: string(rune('a' + n%26)), Delta: delta, Clear: clear}
		e.ID += time.Duration(n).String()
		if err := s.Append(ctx, []abacus.Write{{NS: ns, Event: e}}); err != nil {
			t.Fatal(err)
		}
	}
	// "a": written out (a summary), then late and on-time events in the
	// active table; "k": a clear in grain 30; "z": never written.
	write("a", 0, 1, false)
	write("a", 3*g+5*time.Millisecond, 2, false)
	write("a", 10*g, 4, false)
	write("k", 29*g, 100, false)
	if err := s.flush(ctx); err != nil {
		t.Fatal(err)
	}
	write("a", 10*g+time.Millisecond, 8, false) // the same grain, another table
	write("a", 2*g, 16, false)                  // late
	write("a", 40*g, 32, false)
	write("k", 30*g, 0, true)
	write("k", 31*g, 7, false)

	sum := func(v int64) abacus.Partial { return abacus.Partial{Sum: abacus.SumOf(v)} }
	tests := []struct {
		name          string
		c             string
		from, mid, to time.Time
		ok            bool
		before, after abacus.Partial
		nBefore       int
	}{
		{"all of a", "a", at(0), at(100 * g), time.Time{}, true, sum(63), sum(0), 6},
		{"split on a grain", "a", at(0), at(10 * g), at(41 * g), true, sum(19), sum(44), 3},
		{"window from a late grain", "a", at(2 * g), at(3 * g), at(4 * g), true, sum(16), sum(2), 1},
		{"tail unbounded", "a", at(5 * g), at(10 * g), time.Time{}, true, sum(0), sum(44), 0},
		{"mid beyond every event", "a", at(0), at(41*g + time.Millisecond), time.Time{}, true, sum(63), sum(0), 6},
		{"no events", "z", at(0), at(10 * g), time.Time{}, true, sum(0), sum(0), 0},
		{"before the clear", "k", at(0), at(30 * g), at(30 * g), true, sum(100), sum(0), 1},
		{"after the clear", "k", at(31 * g), at(40 * g), time.Time{}, true, sum(7), sum(0), 1},
		{"over the clear", "k", at(0), at(40 * g), time.Time{}, false, sum(0), sum(0), 0},
		{"from off a grain", "a", at(time.Millisecond), at(10 * g), time.Time{}, false, sum(0), sum(0), 0},
		{"mid off a grain", "a", at(0), at(10*g + time.Millisecond), time.Time{}, false, sum(0), sum(0), 0},
		{"from the first event", "a", time.Time{}, at(10 * g), time.Time{}, false, sum(0), sum(0), 0},
		{"from before the store opened", "a", time.Now().Add(-time.Hour).Truncate(g), at(10 * g), time.Time{}, false, sum(0), sum(0), 0},
	}
	reqs := make([]abacus.FoldRequest, len(tests))
	for i, tt := range tests {
		reqs[i] = abacus.FoldRequest{Counter: tt.c, From: tt.from, Mid: tt.mid, To: tt.to}
	}
	check := func(when string) {
		t.Helper()
		res, err := s.FoldMany(ctx, ns, reqs)
		if err != nil {
			t.Fatal(err)
		}
		for i, tt := range tests {
			got := res[i]
			if got.OK != tt.ok {
				t.Errorf("%s: %s: OK = %v, want %v", when, tt.name, got.OK, tt.ok)
				continue
			}
			if tt.ok && (got.Before != tt.before || got.After != tt.after || got.NBefore != tt.nBefore) {
				t.Errorf("%s: %s = %+v, want %+v / %+v, %d before", when, tt.name, got, tt.before, tt.after, tt.nBefore)
			}
			// Every answer is what a scan folds to.
			if got.OK {
				b, a := scanFold(t, s, ns, reqs[i])
				if b != got.Before || a != got.After {
					t.Errorf("%s: %s = %+v, a scan folds to %+v / %+v", when, tt.name, got, b, a)
				}
			}
		}
	}
	check("active and summary")
	if err := s.flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("summaries only")
	// Tables dropped from memory: their grains are gone, and so are the
	// answers whose ranges they overlapped.
	s.dropRetained()
	res, err := s.FoldMany(ctx, ns, reqs[:1])
	if err != nil || res[0].OK {
		t.Errorf("FoldMany after the tables were dropped = %+v, %v; want not OK", res, err)
	}
	if _, err := s.FoldMany(ctx, ns, []abacus.FoldRequest{{Counter: "", From: at(0)}}); abacus.ErrorCode(err) != abacus.InvalidArgument {
		t.Errorf("FoldMany of an empty counter name: %v, want InvalidArgument", err)
	}
}

// TestFoldManyNewCounters folds, from memory, the ranges from the first
// event of counters never written out, however early they start, and leaves
// to a scan those of counters with events in Pebble.
func TestFoldManyNewCounters(t *testing.T) {
	ctx := context.Background()
	s, ns := openFoldStore(t)
	g := abacus.RollupGrain
	base := time.Now().Truncate(time.Second)
	n := 0
	write := func(c string, d time.Duration, delta int64) {
		t.Helper()
		n++
		e := abacus.Event{Counter: c, Time: base.Add(d), ID: "e" + time.Duration(n).String(), Delta: delta}
		if err := s.Append(ctx, []abacus.Write{{NS: ns, Event: e}}); err != nil {
			t.Fatal(err)
		}
	}
	// fold asks for every counter's window [from, base+10g) and tail, and
	// checks each answer against a scan; it returns which were answered.
	fold := func(from time.Time, counters ...string) map[string]bool {
		t.Helper()
		reqs := make([]abacus.FoldRequest, len(counters))
		for i, c := range counters {
			reqs[i] = abacus.FoldRequest{Counter: c, From: from, Mid: base.Add(10 * g)}
		}
		res, err := s.FoldMany(ctx, ns, reqs)
		if err != nil {
			t.Fatal(err)
		}
		ok := map[string]bool{}
		for i, c := range counters {
			if !res[i].OK {
				continue
			}
			ok[c] = true
			if b, a := scanFold(t, s, ns, reqs[i]); b != res[i].Before || a != res[i].After {
				t.Errorf("FoldMany(%q from %v) = %+v, a scan folds to %+v / %+v", c, from, res[i], b, a)
			}
		}
		return ok
	}
	early := base.Add(-time.Hour).Truncate(g) // before the store opened
	same := func(got map[string]bool, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("answered %v, want %v", got, want)
		}
		for _, c := range want {
			if !got[c] {
				t.Errorf("answered %v, want %v", got, want)
			}
		}
	}

	write("old", 0, 1)
	write("old", 12*g, 2)
	if err := s.flush(ctx); err != nil {
		t.Fatal(err)
	}
	write("new", g, 4)
	write("new", 11*g, 8)
	write("old", 2*g, 16)
	// "old" has a last write time in Pebble; "new" and "none" do not.
	same(fold(time.Time{}, "old", "new", "none"), "new", "none")
	same(fold(early, "old", "new", "none"), "new", "none")

	// Written out: "new" is in Pebble too now, and answered only from
	// where memory holds every event.
	if err := s.flush(ctx); err != nil {
		t.Fatal(err)
	}
	same(fold(time.Time{}, "old", "new", "none"), "none")
	s.dropRetained()
	write("newer", 3*g, 32)
	same(fold(time.Time{}, "old", "new", "newer", "none"), "newer", "none")
	same(fold(base, "old", "new", "newer"), "newer")
}
