package embedded

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// TestEventLogModel appends events with current times (which the
// conformance suite's fixed 2024 times never reach, so reads there always
// take Pebble) while tables are written out, retained and dropped at random,
// and checks every read against a model: forwards, backwards, ScanMany and
// Counters, over random ranges, whether the range is read from memory alone
// or merged with Pebble; and FoldMany's answers from the tables' grains
// against the model's fold, wherever it gives one.
func TestEventLogModel(t *testing.T) {
	for _, retain := range []int{-1, 3000, 0} {
		t.Run(fmt.Sprintf("retain=%d", retain), func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(t.TempDir(), Options{EventLogRetainBytes: retain})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ns, err := s.CreateNamespace(ctx, &abacus.Namespace{Name: "m", Type: abacus.Accurate,
				Partition: abacus.TimePartition{BucketsPerID: 4, BucketWidth: 2 * time.Second, SliceWidth: 10 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, uint64(retain+7)))
			base := time.Now().Add(time.Minute).Truncate(time.Second)
			model := map[string][]abacus.Event{}
			counters := []string{"a", "b", "c", "d"}
			n := 0
			folded := 0
			// A bound on a grain, off it, or none.
			bound := func(from time.Time) time.Time {
				switch rng.IntN(6) {
				case 0:
					return time.Time{}
				case 1:
					return from.Add(time.Duration(rng.IntN(20_000)) * time.Millisecond)
				default:
					return from.Add(time.Duration(rng.IntN(200)) * abacus.RollupGrain)
				}
			}
			checkFold := func(step int, c string) {
				t.Helper()
				from := base.Add(time.Duration(rng.IntN(400)) * abacus.RollupGrain)
				if rng.IntN(5) == 0 {
					from = from.Add(time.Duration(1+rng.IntN(99)) * time.Millisecond)
				}
				mid := bound(from)
				to := time.Time{}
				if !mid.IsZero() {
					to = bound(mid)
				}
				res, err := s.FoldMany(ctx, ns, []abacus.FoldRequest{{Counter: c, From: from, Mid: mid, To: to}})
				if err != nil {
					t.Fatal(err)
				}
				if !res[0].OK {
					return
				}
				folded++
				evs := slices.Clone(model[c])
				slices.SortFunc(evs, abacus.CompareEvents)
				var before, after abacus.Partial
				nBefore := 0
				for _, e := range evs {
					switch {
					case e.Time.Before(from):
					case mid.IsZero() || e.Time.Before(mid):
						before, nBefore = before.Apply(e), nBefore+1
					case to.IsZero() || e.Time.Before(to):
						after = after.Apply(e)
					}
				}
				got := res[0]
				if got.Before != before || got.After != after || got.NBefore != nBefore {
					t.Fatalf("step %d: FoldMany(%s, %v, %v, %v) = %+v, want before %+v after %+v, %d events before",
						step, c, from.Sub(base), mid.Sub(base), to.Sub(base), got, before, after, nBefore)
				}
			}
			check := func(step int) {
				t.Helper()
				for _, c := range counters {
					checkFold(step, c)
				}
				for _, c := range counters {
					lo := base.Add(time.Duration(rng.IntN(40_000)) * time.Millisecond)
					hi := lo.Add(time.Duration(rng.IntN(40_000)) * time.Millisecond)
					var want []abacus.Event
					for _, e := range model[c] {
						if !e.Time.Before(lo) && e.Time.Before(hi) {
							want = append(want, e)
						}
					}
					slices.SortFunc(want, abacus.CompareEvents)
					for _, rev := range []bool{false, true} {
						var got []abacus.Event
						if err := s.Scan(ctx, ns, c, abacus.Range{From: lo, To: hi, Reverse: rev}, func(e abacus.Event) error {
							got = append(got, e)
							return nil
						}); err != nil {
							t.Fatal(err)
						}
						w := slices.Clone(want)
						if rev {
							slices.Reverse(w)
						}
						if !slices.EqualFunc(got, w, func(a, b abacus.Event) bool { return a.ID == b.ID && a.Time.Equal(b.Time) && a.Delta == b.Delta }) {
							t.Fatalf("step %d: Scan(%s, [%v, %v), reverse %v) = %d events, want %d", step, c, lo.Sub(base), hi.Sub(base), rev, len(got), len(w))
						}
					}
					var many []abacus.Event
					if err := s.ScanMany(ctx, ns, []abacus.ScanRequest{{Counter: c, Range: abacus.Range{From: lo, To: hi}}}, func(_ int, e abacus.Event) error {
						many = append(many, e)
						return nil
					}); err != nil {
						t.Fatal(err)
					}
					if len(many) != len(want) {
						t.Fatalf("step %d: ScanMany(%s) = %d events, want %d", step, c, len(many), len(want))
					}
				}
				var names []string
				if err := s.Counters(ctx, ns, base, base.Add(time.Minute), func(c string) error {
					names = append(names, c)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				var wantNames []string
				for _, c := range counters {
					if len(model[c]) > 0 {
						wantNames = append(wantNames, c)
					}
				}
				if !slices.Equal(names, wantNames) {
					t.Fatalf("step %d: Counters = %v, want %v", step, names, wantNames)
				}
			}
			for step := range 300 {
				switch r := rng.IntN(10); {
				case r < 7:
					var ws []abacus.Write
					for range 1 + rng.IntN(5) {
						c := counters[rng.IntN(len(counters))]
						e := abacus.Event{Counter: c, Time: base.Add(time.Duration(rng.IntN(40_000)) * time.Millisecond), ID: fmt.Sprintf("e%d", n), Delta: int64(1 + rng.IntN(9))}
						if rng.IntN(40) == 0 {
							e.Delta, e.Clear = 0, true
						}
						n++
						ws = append(ws, abacus.Write{NS: ns, Event: e})
						model[c] = append(model[c], e)
					}
					if err := s.Append(ctx, ws); err != nil {
						t.Fatal(err)
					}
					// A retry of an event written earlier is a no-op.
					if n > 3 && rng.IntN(4) == 0 {
						c := counters[rng.IntN(len(counters))]
						if l := model[c]; len(l) > 0 {
							e := l[rng.IntN(len(l))]
							if err := s.Append(ctx, []abacus.Write{{NS: ns, Event: e}}); err != nil {
								t.Fatalf("step %d: retry: %v", step, err)
							}
							if !e.Clear {
								e.Delta++
								if got := abacus.ErrorCode(s.Append(ctx, []abacus.Write{{NS: ns, Event: e}})); got != abacus.AlreadyExists {
									t.Fatalf("step %d: retry with another delta: %v, want AlreadyExists", step, got)
								}
							}
						}
					}
				case r < 9:
					if err := s.flush(ctx); err != nil {
						t.Fatal(err)
					}
				default:
					s.dropRetained()
				}
				check(step)
			}
			if folded == 0 {
				t.Fatal("FoldMany never folded from memory")
			}
			t.Logf("%d of %d folds from memory", folded, 300*len(counters))
		})
	}
}
