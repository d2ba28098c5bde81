package counter_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/backends"
	"github.com/abacus-dev/abacus/cache/memory"
	"github.com/abacus-dev/abacus/counter"
	"github.com/abacus-dev/abacus/embedded"
	"github.com/abacus-dev/abacus/rollup"
)

// RollupCounter folds only the immutable window into the checkpoint, caches
// the provisional count of an EVENTUAL counter (so reads are exact before the
// window passes), and says when a further rollup can finish the counter.
func TestRollupCounterProvisional(t *testing.T) {
	tests := []struct {
		typ       abacus.CounterType
		hotRead   int64 // after a rollup right after the writes
		hotQuiet  bool  // that rollup's NotBefore is when the counter is quiet
		wantRead  int64 // after a rollup once the counter is quiet
		readAfter int64 // once the window passed and a rollup ran
	}{
		{typ: abacus.Eventual, hotRead: 0, hotQuiet: true, wantRead: 111, readAfter: 111},
		{typ: abacus.Accurate, hotRead: 111, hotQuiet: false, wantRead: 111, readAfter: 111},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String(), func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, t.TempDir())
			// The default coalesce window: "quiet" (half of it) must be
			// longer than the store's last-write resolution to be told
			// from "just written".
			cfg := testNamespace("ns", tt.typ)
			cfg.Queue.Coalesce = time.Second
			ns, err := f.svc.CreateNamespace(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t0 := f.clk.t
			for i, d := range []int64{1, 10, 100} {
				tok := abacus.Token{ID: string(rune('a' + i)), Time: t0.Add(-time.Duration(i) * time.Second)}
				if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "ns", Counter: "c", Delta: d, Token: tok}); err != nil {
					t.Fatal(err)
				}
			}
			// Right after the last write the counter is not quiet: no
			// provisional count (its events would be read again at every
			// rollup), the read sees the checkpoint (ACCURATE reads fold).
			o, err := f.roll.RollupCounter(ctx, ns, "c")
			if err != nil || o.CaughtUp {
				t.Fatalf("outcome %+v, %v; want not caught up", o, err)
			}
			// EVENTUAL reads lack the window's events: back once quiet (half
			// a coalesce window after the earliest the rounded last write can
			// have been), not once the window has passed it.
			hotNB := ns.RollupCovers(t0)
			if tt.hotQuiet {
				hotNB = t0.Add(-abacus.LastWriteResolution + ns.Queue.Coalesce/2 + time.Millisecond)
			}
			if !o.NotBefore.Equal(hotNB) {
				t.Fatalf("NotBefore %v right after the writes, want %v", o.NotBefore, hotNB)
			}
			if n, err := f.svc.Get(ctx, abacus.Ref{Namespace: "ns", Counter: "c"}); err != nil || n != tt.hotRead {
				t.Fatalf("read %d, %v right after the writes; want %d", n, err, tt.hotRead)
			}
			// Quiet for a coalesce window; the window ends at t0 - 3s
			// (accept 2s + skew 1s): no event is in it.
			f.clk.t = t0.Add(ns.Queue.Coalesce)
			o, err = f.roll.RollupCounter(ctx, ns, "c")
			if err != nil {
				t.Fatal(err)
			}
			wantNB := ns.RollupCovers(t0)
			if o.CaughtUp || !o.NotBefore.Equal(wantNB) {
				t.Fatalf("outcome %+v, want not caught up, NotBefore %v", o, wantNB)
			}
			if n, err := f.svc.Get(ctx, abacus.Ref{Namespace: "ns", Counter: "c"}); err != nil || n != tt.wantRead {
				t.Fatalf("read %d, %v before the window passed; want %d", n, err, tt.wantRead)
			}
			st, err := f.store.RollupState(ctx, ns, "c")
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := st.Count.Int64(); n != 0 {
				t.Fatalf("checkpoint %d before the window passed, want 0", n)
			}
			f.clk.t = o.NotBefore
			if o, err = f.roll.RollupCounter(ctx, ns, "c"); err != nil || !o.CaughtUp {
				t.Fatalf("outcome %+v, %v at NotBefore; want caught up", o, err)
			}
			if n, err := f.svc.Get(ctx, abacus.Ref{Namespace: "ns", Counter: "c"}); err != nil || n != tt.readAfter {
				t.Fatalf("read %d, %v after the window; want %d", n, err, tt.readAfter)
			}
		})
	}
}

// RollupBatch, which reads the batch's states together, agrees with
// RollupCounter counter by counter: outcomes, checkpoints and the counts
// reads return.
func TestRollupBatchAgrees(t *testing.T) {
	ctx := context.Background()
	counters := []string{"z", "a", "never", "m", "a2"}
	run := func(batch bool) (outs []rollup.Outcome, counts, checkpoints []int64) {
		f := newFixture(t, t.TempDir())
		ns, err := f.svc.CreateNamespace(ctx, testNamespace("ns", abacus.Eventual))
		if err != nil {
			t.Fatal(err)
		}
		t0 := f.clk.t
		for i, c := range counters {
			if c == "never" {
				continue
			}
			for k := range i + 1 {
				tok := abacus.Token{ID: c + string(rune('0'+k)), Time: t0.Add(-time.Duration(k) * 500 * time.Millisecond)}
				if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "ns", Counter: c, Delta: int64(k + 1), Token: tok}); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The window now ends at t0 − 1s: the older events of m and a2 are in it.
		f.clk.t = t0.Add(2 * time.Second)
		if batch {
			var errs []error
			outs, errs = f.roll.RollupBatch(ctx, ns, counters, 2)
			for i, err := range errs {
				if err != nil {
					t.Fatalf("%s: %v", counters[i], err)
				}
			}
		} else {
			for _, c := range counters {
				o, err := f.roll.RollupCounter(ctx, ns, c)
				if err != nil {
					t.Fatalf("%s: %v", c, err)
				}
				outs = append(outs, o)
			}
		}
		for _, c := range counters {
			n, err := f.svc.Get(ctx, abacus.Ref{Namespace: "ns", Counter: c})
			if err != nil {
				t.Fatal(err)
			}
			st, err := f.store.RollupState(ctx, ns, c)
			if err != nil {
				t.Fatal(err)
			}
			cp, _ := st.Count.Int64()
			counts, checkpoints = append(counts, n), append(checkpoints, cp)
		}
		return outs, counts, checkpoints
	}
	o1, n1, c1 := run(false)
	o2, n2, c2 := run(true)
	for i, c := range counters {
		if o1[i] != o2[i] || n1[i] != n2[i] || c1[i] != c2[i] {
			t.Errorf("%s: one by one %+v count %d checkpoint %d; batch %+v count %d checkpoint %d",
				c, o1[i], n1[i], c1[i], o2[i], n2[i], c2[i])
		}
	}
	if n1[4] != 15 || c1[4] != 9 || n1[3] != 10 || c1[3] != 4 {
		t.Errorf("a2: count %d, checkpoint %d (want 15, 9); m: count %d, checkpoint %d (want 10, 4)", n1[4], c1[4], n1[3], c1[3])
	}
}

// A window whose events sum to nothing still moves the checkpoint past them:
// retention deletes what the checkpoint covers, and a skipped checkpoint
// write once left a count off by the deleted events (found in review).
func TestRollupZeroSumWindowBeforeRetention(t *testing.T) {
	ctx := context.Background()
	for _, typ := range []abacus.CounterType{abacus.Eventual, abacus.Accurate} {
		t.Run(typ.String(), func(t *testing.T) {
			ns := testNamespace("n", typ)
			ns.Retention = abacus.Retention{CloseAfter: 5 * time.Second, DeleteAfter: 10 * time.Second}
			f := newFixture(t, t.TempDir(), ns)
			t0 := f.clk.t
			for _, a := range []struct {
				at    time.Duration
				id    string
				delta int64
			}{{0, "a", 5}, {35 * time.Second, "b", -5}, {40 * time.Second, "c", 1}} {
				f.clk.t = t0.Add(a.at)
				if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "n", Counter: "c", Delta: a.delta,
					Token: abacus.Token{ID: a.id, Time: f.clk.t}}); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := f.svc.Retain(ctx); err != nil || n == 0 {
				t.Fatalf("retention deleted %d slices, %v; want the first one", n, err)
			}
			f.clk.t = t0.Add(60 * time.Second)
			nsObj, err := f.svc.GetNamespace(ctx, "n")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.roll.RollupCounter(ctx, nsObj, "c"); err != nil {
				t.Fatal(err)
			}
			if n, err := f.svc.Get(ctx, abacus.Ref{Namespace: "n", Counter: "c"}); err != nil || n != 1 {
				t.Fatalf("count %d, %v after retention; want 1", n, err)
			}
		})
	}
}

// panicky is the embedded store with a Fence that panics for one counter.
type panicky struct{ *embedded.Store }

func (p panicky) Fence(ctx context.Context, ns *abacus.Namespace, counter string, end time.Time) error {
	if counter == "boom" {
		panic("bad counter")
	}
	return p.Store.Fence(ctx, ns, counter, end)
}

// A panic in one counter's rollup, on one of RollupBatch's goroutines, fails
// that counter's rollup instead of the process; the others complete.
func TestRollupBatchRecoversPanics(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, t.TempDir())
	cache := memory.New(memory.Options{})
	router := &backends.Router{
		Events:       map[string]abacus.EventStore{abacus.StorageEmbedded: f.store},
		Rollups:      map[string]abacus.RollupStore{abacus.StorageEmbedded: panicky{f.store}},
		Caches:       map[string]abacus.Cache{abacus.StorageMemory: cache},
		RollupCaches: map[string]abacus.RollupCache{abacus.StorageMemory: cache},
	}
	svc := counter.New(counter.Config{Namespaces: f.store, Backends: router, Now: f.clk.now})
	if err := svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	ns, err := svc.CreateNamespace(ctx, testNamespace("ns", abacus.Eventual))
	if err != nil {
		t.Fatal(err)
	}
	counters := []string{"a", "boom", "c"}
	for i, c := range counters {
		if _, err := svc.Add(ctx, abacus.AddRequest{Namespace: "ns", Counter: c, Delta: 1,
			Token: abacus.Token{ID: fmt.Sprint(i), Time: f.clk.t}}); err != nil {
			t.Fatal(err)
		}
	}
	f.clk.t = f.clk.t.Add(time.Minute)
	outs, errs := (&rollup.Roller{Stores: router, Now: f.clk.now}).RollupBatch(ctx, ns, counters, 2)
	for i, c := range counters {
		switch {
		case c == "boom" && (errs[i] == nil || !strings.Contains(errs[i].Error(), "panic: bad counter")):
			t.Errorf("boom: %v, want the panic as its error", errs[i])
		case c != "boom" && (errs[i] != nil || !outs[i].CaughtUp):
			t.Errorf("%s: %+v, %v; want caught up", c, outs[i], errs[i])
		}
	}
}

// A signal says whether this node's count may miss a write: after a write,
// and after a read that found no cached count, it does (the pipeline then
// rolls up even a parked counter); a read served from the rollup cache does
// not (a parked counter stays parked).
func TestSignalsSayWhetherStale(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, t.TempDir(), testNamespace("ev", abacus.Eventual), testNamespace("acc", abacus.Accurate))
	var got []string
	f.sig.on = func(k rollup.Key, stale bool) {
		got = append(got, fmt.Sprintf("%s/%s %v", k.NS.Name, k.Counter, stale))
	}
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"add", func() error {
			_, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "ev", Counter: "c", Delta: 1, Token: abacus.Token{ID: "a", Time: f.clk.t}})
			return err
		}, "ev/c true"},
		{"add and get", func() error {
			_, _, err := f.svc.AddAndGet(ctx, abacus.AddRequest{Namespace: "ev", Counter: "c", Delta: 1, Token: abacus.Token{ID: "g", Time: f.clk.t}})
			return err
		}, "ev/c true"},
		{"add and get, accurate", func() error {
			_, _, err := f.svc.AddAndGet(ctx, abacus.AddRequest{Namespace: "acc", Counter: "c", Delta: 1, Token: abacus.Token{ID: "g", Time: f.clk.t}})
			return err
		}, "acc/c true"},
		{"read, nothing cached", func() error {
			_, err := f.svc.Get(ctx, abacus.Ref{Namespace: "ev", Counter: "d"})
			return err
		}, "ev/d true"},
		{"read from the cache", func() error {
			_, err := f.svc.Get(ctx, abacus.Ref{Namespace: "ev", Counter: "d"})
			return err
		}, "ev/d false"},
		{"accurate read", func() error {
			_, err := f.svc.Get(ctx, abacus.Ref{Namespace: "acc", Counter: "c"})
			return err
		}, "acc/c false"},
		{"clear", func() error {
			_, err := f.svc.Clear(ctx, abacus.Ref{Namespace: "ev", Counter: "c"}, abacus.Token{ID: "b", Time: f.clk.t})
			return err
		}, "ev/c true"},
	}
	for _, s := range steps {
		got = got[:0]
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if len(got) != 1 || got[0] != s.want {
			t.Errorf("%s: signals %q, want [%q]", s.name, got, s.want)
		}
	}
}
