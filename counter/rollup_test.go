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
