package counter_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/backends"
	"github.com/abacus-dev/abacus/cache/memory"
	"github.com/abacus-dev/abacus/counter"
	"github.com/abacus-dev/abacus/embedded"
	"github.com/abacus-dev/abacus/rollup"
)

// clock is a manual clock for tests.
// clock is a test's clock. Tests set t directly while nothing else runs;
// advance is for tests whose service runs on other goroutines meanwhile.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testNamespace returns a complete namespace with small partitions, so that a
// few seconds of events cross buckets and slices.
func testNamespace(name string, typ abacus.CounterType) *abacus.Namespace {
	return &abacus.Namespace{
		Name: name, Type: typ, Cardinality: abacus.Low,
		TTL: time.Hour, AcceptLimit: 2 * time.Second,
		Partition:        abacus.TimePartition{BucketsPerID: 3, BucketWidth: time.Second, SliceWidth: 4 * time.Second},
		Queue:            abacus.QueueConfig{NumQueues: 2, Coalesce: 10 * time.Millisecond, CapacityBytes: 1 << 20},
		RollupBatchCount: 8,
		Retention:        abacus.Retention{CloseAfter: time.Hour, DeleteAfter: 2 * time.Hour},
		Storage: abacus.Storage{
			Cache:  abacus.PhysicalStorage{Type: abacus.StorageMemory},
			Rollup: abacus.PhysicalStorage{Type: abacus.StorageEmbedded},
			Events: abacus.PhysicalStorage{Type: abacus.StorageEmbedded},
		},
	}
}

type fixture struct {
	svc      *counter.Service
	store    *embedded.Store
	backends *backends.Router
	clk      *clock
	sig      *signals
	roll     *rollup.Roller // rolls up over backends, as the pipeline would
}

// rollup rolls one counter up and reports whether it caught up.
func (f *fixture) rollup(ctx context.Context, ns *abacus.Namespace, counter string) (bool, error) {
	o, err := f.roll.RollupCounter(ctx, ns, counter)
	return o.CaughtUp, err
}

// signals is a counter.Signaler that passes each signal to on, if set,
// with stale true for Signal and false for Touch.
type signals struct {
	on func(k rollup.Key, stale bool)
}

func (s *signals) Signal(k rollup.Key) bool { return s.note(k, true) }
func (s *signals) SignalAll(ks []rollup.Key) {
	for _, k := range ks {
		s.note(k, true)
	}
}
func (s *signals) Touch(k rollup.Key) bool { return s.note(k, false) }
func (s *signals) RemoveNamespace(uint64)  {}

func (s *signals) note(k rollup.Key, stale bool) bool {
	if s.on != nil {
		s.on(k, stale)
	}
	return true
}

func newFixture(t testing.TB, dir string, nss ...*abacus.Namespace) *fixture {
	t.Helper()
	st, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cache := memory.New(memory.Options{})
	router := &backends.Router{
		Events:       map[string]abacus.EventStore{abacus.StorageEmbedded: st},
		Rollups:      map[string]abacus.RollupStore{abacus.StorageEmbedded: st},
		Caches:       map[string]abacus.Cache{abacus.StorageMemory: cache},
		RollupCaches: map[string]abacus.RollupCache{abacus.StorageMemory: cache},
	}
	sig := &signals{}
	svc := counter.New(counter.Config{Namespaces: st, Backends: router, Signaler: sig, Now: clk.now})
	ctx := context.Background()
	if err := svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if _, err := svc.CreateNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{svc: svc, store: st, backends: router, clk: clk, sig: sig,
		roll: &rollup.Roller{Stores: router, Now: clk.now}}
}

// modelCount folds the acknowledged events of one counter with time < before
// (all of them for a zero before), in Event.Before order.
func modelCount(evs []abacus.Event, before time.Time) int64 {
	sorted := append([]abacus.Event(nil), evs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Before(sorted[j]) })
	var n int64
	for _, e := range sorted {
		if !before.IsZero() && !e.Time.Before(before) {
			break
		}
		if e.Clear {
			n = 0
		} else {
			n += e.Delta
		}
	}
	return n
}

// TestModel drives the service with random adds, retries, conflicting token
// reuse, clears, clock steps and rollups at random times, and checks every
// read against an in-memory model: ACCURATE reads are exact at all times, and
// EVENTUAL reads are exact once the clock has passed the accept window and a
// rollup ran.
func TestModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		f := newFixture(t, t.TempDir(),
			testNamespace("acc", abacus.Accurate), testNamespace("ev", abacus.Eventual))
		defer f.store.Close() // each of rapid's runs gets its own store; close it now, not at the test's end
		counters := []string{"a", "b", "c"}
		model := map[string][]abacus.Event{} // "ns/counter" → acknowledged events
		var tokens []struct {
			ns, counter string
			ev          abacus.Event
		}
		seq := 0
		rt.Repeat(map[string]func(*rapid.T){
			"add": func(rt *rapid.T) {
				ns := rapid.SampledFrom([]string{"acc", "ev"}).Draw(rt, "ns")
				c := rapid.SampledFrom(counters).Draw(rt, "counter")
				delta := rapid.Int64Range(-50, 50).Filter(func(d int64) bool { return d != 0 }).Draw(rt, "delta")
				back := time.Duration(rapid.Int64Range(0, 1999).Draw(rt, "back_ms")) * time.Millisecond
				seq++
				tok := abacus.Token{ID: fmt.Sprintf("t%d", seq), Time: f.clk.t.Add(-back)}
				clear := rapid.IntRange(0, 9).Draw(rt, "clear") == 0
				var err error
				if clear {
					_, err = f.svc.Clear(ctx, abacus.Ref{Namespace: ns, Counter: c}, tok)
				} else {
					_, err = f.svc.Add(ctx, abacus.AddRequest{Namespace: ns, Counter: c, Delta: delta, Token: tok})
				}
				if err != nil {
					rt.Fatalf("write: %v", err)
				}
				ev := abacus.Event{Counter: c, Time: tok.Time, ID: tok.ID, Delta: delta, Clear: clear}
				if clear {
					ev.Delta = 0
				}
				model[ns+"/"+c] = append(model[ns+"/"+c], ev)
				tokens = append(tokens, struct {
					ns, counter string
					ev          abacus.Event
				}{ns, c, ev})
			},
			"retry": func(rt *rapid.T) {
				if len(tokens) == 0 {
					rt.Skip("no writes yet")
				}
				w := rapid.SampledFrom(tokens).Draw(rt, "write")
				tok := abacus.Token{ID: w.ev.ID, Time: w.ev.Time}
				conflict := rapid.Bool().Draw(rt, "conflict")
				var err error
				switch {
				case w.ev.Clear && !conflict:
					_, err = f.svc.Clear(ctx, abacus.Ref{Namespace: w.ns, Counter: w.counter}, tok)
				case w.ev.Clear:
					_, err = f.svc.Add(ctx, abacus.AddRequest{Namespace: w.ns, Counter: w.counter, Delta: 1, Token: tok})
				case conflict:
					_, err = f.svc.Add(ctx, abacus.AddRequest{Namespace: w.ns, Counter: w.counter, Delta: w.ev.Delta + 1000, Token: tok})
				default:
					_, err = f.svc.Add(ctx, abacus.AddRequest{Namespace: w.ns, Counter: w.counter, Delta: w.ev.Delta, Token: tok})
				}
				// Inside the accept window or after it (the events are
				// retained for hours), a retry of a stored write is
				// acknowledged and counted once, and a conflicting reuse
				// is refused.
				switch {
				case conflict:
					if abacus.ErrorCode(err) != abacus.AlreadyExists {
						rt.Fatalf("conflicting reuse: err = %v, want AlreadyExists", err)
					}
				case err != nil:
					rt.Fatalf("retry: %v", err)
				}
			},
			"tick": func(rt *rapid.T) {
				f.clk.t = f.clk.t.Add(time.Duration(rapid.Int64Range(1, 1500).Draw(rt, "ms")) * time.Millisecond)
			},
			"rollup": func(rt *rapid.T) {
				ns := rapid.SampledFrom([]string{"acc", "ev"}).Draw(rt, "ns")
				c := rapid.SampledFrom(counters).Draw(rt, "counter")
				nsObj, err := f.svc.GetNamespace(ctx, ns)
				if err != nil {
					rt.Fatal(err)
				}
				if _, err := f.rollup(ctx, nsObj, c); err != nil {
					rt.Fatalf("rollup: %v", err)
				}
				st, err := f.store.RollupState(ctx, nsObj, c)
				if err != nil {
					rt.Fatal(err)
				}
				want := modelCount(model[ns+"/"+c], st.Through)
				if got, _ := st.Count.Int64(); !st.Through.IsZero() && got != want {
					rt.Fatalf("checkpoint of %s/%s through %s = %d, model %d", ns, c, st.Through, got, want)
				}
			},
			"get_accurate": func(rt *rapid.T) {
				c := rapid.SampledFrom(counters).Draw(rt, "counter")
				got, err := f.svc.Get(ctx, abacus.Ref{Namespace: "acc", Counter: c})
				if err != nil {
					rt.Fatal(err)
				}
				if want := modelCount(model["acc/"+c], time.Time{}); got != want {
					rt.Fatalf("accurate %s = %d, model %d", c, got, want)
				}
			},
			"settle_eventual": func(rt *rapid.T) {
				c := rapid.SampledFrom(counters).Draw(rt, "counter")
				f.clk.t = f.clk.t.Add(2*time.Second + abacus.SkewMargin + abacus.FutureLimit + time.Millisecond)
				nsObj, _ := f.svc.GetNamespace(ctx, "ev")
				caught, err := f.rollup(ctx, nsObj, c)
				if err != nil {
					rt.Fatal(err)
				}
				if !caught {
					rt.Fatalf("rollup of a settled counter not caught up")
				}
				got, err := f.svc.Get(ctx, abacus.Ref{Namespace: "ev", Counter: c})
				if err != nil {
					rt.Fatal(err)
				}
				if want := modelCount(model["ev/"+c], time.Time{}); got != want {
					rt.Fatalf("eventual %s after settling = %d, model %d", c, got, want)
				}
			},
		})
	})
}
