package counter_test

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/counter"
)

// RollupCounter folds only the immutable window into the checkpoint, caches
// the provisional count of an EVENTUAL counter (so reads are exact before the
// window passes), and says when a further rollup can finish the counter.
func TestRollupCounterProvisional(t *testing.T) {
	tests := []struct {
		typ       abacus.CounterType
		wantRead  int64 // right after the first rollup
		readAfter int64 // once the window passed and a rollup ran
	}{
		{typ: abacus.Eventual, wantRead: 111, readAfter: 111},
		{typ: abacus.Accurate, wantRead: 111, readAfter: 111},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String(), func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, t.TempDir())
			ns, err := f.svc.CreateNamespace(ctx, testNamespace("ns", tt.typ))
			if err != nil {
				t.Fatal(err)
			}
			t0 := f.clk.t
			for i, d := range []int64{1, 10, 100} {
				tok := counter.Token{ID: string(rune('a' + i)), Time: t0.Add(-time.Duration(i) * time.Second)}
				if _, err := f.svc.Add(ctx, counter.AddRequest{Namespace: "ns", Counter: "c", Delta: d, Token: tok}); err != nil {
					t.Fatal(err)
				}
			}
			// The window ends at t0 - 3s (accept 2s + skew 1s): no event is in it.
			o, err := f.svc.RollupCounter(ctx, ns, "c")
			if err != nil {
				t.Fatal(err)
			}
			wantNB := t0.Add(ns.AcceptLimit + abacus.SkewMargin + time.Millisecond)
			if o.CaughtUp || !o.NotBefore.Equal(wantNB) {
				t.Fatalf("outcome %+v, want not caught up, NotBefore %v", o, wantNB)
			}
			if n, err := f.svc.Get(ctx, counter.Ref{Namespace: "ns", Counter: "c"}); err != nil || n != tt.wantRead {
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
			if o, err = f.svc.RollupCounter(ctx, ns, "c"); err != nil || !o.CaughtUp {
				t.Fatalf("outcome %+v, %v at NotBefore; want caught up", o, err)
			}
			if n, err := f.svc.Get(ctx, counter.Ref{Namespace: "ns", Counter: "c"}); err != nil || n != tt.readAfter {
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
	run := func(batch bool) (outs []counter.RollupOutcome, counts, checkpoints []int64) {
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
				tok := counter.Token{ID: c + string(rune('0'+k)), Time: t0.Add(-time.Duration(k) * 500 * time.Millisecond)}
				if _, err := f.svc.Add(ctx, counter.AddRequest{Namespace: "ns", Counter: c, Delta: int64(k + 1), Token: tok}); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The window now ends at t0 − 1s: the older events of m and a2 are in it.
		f.clk.t = t0.Add(2 * time.Second)
		if batch {
			var errs []error
			outs, errs = f.svc.RollupBatch(ctx, ns, counters, 2)
			for i, err := range errs {
				if err != nil {
					t.Fatalf("%s: %v", counters[i], err)
				}
			}
		} else {
			for _, c := range counters {
				o, err := f.svc.RollupCounter(ctx, ns, c)
				if err != nil {
					t.Fatalf("%s: %v", c, err)
				}
				outs = append(outs, o)
			}
		}
		for _, c := range counters {
			n, err := f.svc.Get(ctx, counter.Ref{Namespace: "ns", Counter: c})
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
