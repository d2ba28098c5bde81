package counter_test

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/backends"
	"github.com/abacus-dev/abacus/cache/memory"
	"github.com/abacus-dev/abacus/counter"
)

// stallingEvents delays every Append: before writing it lets the clock jump
// and a rollup run, as a long GC pause or fsync stall between the accept
// window check and the commit would.
type stallingEvents struct {
	abacus.EventStore
	before func()
}

func (s *stallingEvents) Append(ctx context.Context, ws []abacus.Write) error {
	s.before()
	return s.EventStore.Append(ctx, ws)
}

// stalledService is a second service over f's store whose appends go
// through stall.
func (f *fixture) stalledService(t *testing.T, stall *stallingEvents) *counter.Service {
	t.Helper()
	cache := memory.New(memory.Options{})
	svc := counter.New(counter.Config{Namespaces: f.store, Now: f.clk.now, Backends: &backends.Router{
		Events:       map[string]abacus.EventStore{abacus.StorageEmbedded: stall},
		Rollups:      map[string]abacus.RollupStore{abacus.StorageEmbedded: f.store},
		Caches:       map[string]abacus.Cache{abacus.StorageMemory: cache},
		RollupCaches: map[string]abacus.RollupCache{abacus.StorageMemory: cache},
	}})
	if err := svc.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestStalledWriteIsNeverLost: a write whose commit is delayed past the skew
// margin while a rollup moves the checkpoint must either be refused (not
// acknowledged) or counted — never acknowledged and then missing.
func TestStalledWriteIsNeverLost(t *testing.T) {
	for _, typ := range []abacus.CounterType{abacus.Eventual, abacus.Accurate} {
		t.Run(typ.String(), func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, t.TempDir(), testNamespace("ns", typ))
			ns, _ := f.svc.GetNamespace(ctx, "ns")
			if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "ns", Counter: "c", Delta: 1,
				Token: abacus.Token{ID: "first", Time: f.clk.t.Add(-1900 * time.Millisecond)}}); err != nil {
				t.Fatal(err)
			}
			stall := &stallingEvents{EventStore: f.store, before: func() {
				f.clk.t = f.clk.t.Add(1500 * time.Millisecond)
				if _, err := f.rollup(ctx, ns, "c"); err != nil {
					t.Errorf("rollup: %v", err)
				}
			}}
			svc := f.stalledService(t, stall)
			// 1.9 s old: inside the 2 s window when checked, behind the
			// rollup's end once the stall is over.
			_, err := svc.Add(ctx, abacus.AddRequest{Namespace: "ns", Counter: "c", Delta: 10,
				Token: abacus.Token{ID: "stalled", Time: f.clk.t.Add(-1900 * time.Millisecond)}})
			want := int64(11)
			if err != nil {
				if abacus.ErrorCode(err) != abacus.FailedPrecondition {
					t.Fatalf("stalled add: %v, want success or FailedPrecondition", err)
				}
				want = 1
			}
			f.clk.t = f.clk.t.Add(10 * time.Second)
			if _, err := f.rollup(ctx, ns, "c"); err != nil {
				t.Fatal(err)
			}
			got, err := f.svc.Get(ctx, abacus.Ref{Namespace: "ns", Counter: "c"})
			if err != nil || got != want {
				t.Fatalf("count = %d, %v; want %d (stalled add err: %v)", got, err, want, err)
			}
		})
	}
}
