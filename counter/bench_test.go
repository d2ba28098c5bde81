package counter_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// BenchmarkRollupAggregation measures how fast the service folds a counter's
// events — the work of a rollup, and of an ACCURATE read, which folds the same
// way: one counter with 200,000 events spread over 50 minutes, 4 event buckets
// and many time buckets, folded from the first event each iteration (no
// checkpoint). It reports events/s.
func BenchmarkRollupAggregation(b *testing.B) {
	for _, card := range []abacus.Cardinality{abacus.Low, abacus.High} {
		b.Run(card.String(), func(b *testing.B) {
			ctx := context.Background()
			ns := testNamespace("bench", abacus.Accurate)
			ns.Cardinality = card
			ns.AcceptLimit = time.Hour
			ns.Partition = abacus.TimePartition{BucketsPerID: 4, BucketWidth: 10 * time.Second, SliceWidth: time.Minute}
			f := newFixture(b, b.TempDir(), ns)
			const events = 200_000
			adds := make([]abacus.AddRequest, 0, 10_000)
			for i := range events {
				adds = append(adds, abacus.AddRequest{Namespace: "bench", Counter: "hot", Delta: 1,
					Token: abacus.Token{ID: fmt.Sprint(i), Time: f.clk.t.Add(-time.Duration(i%3000) * time.Second)}})
				if len(adds) == cap(adds) {
					if _, err := f.svc.AddBatch(ctx, adds); err != nil {
						b.Fatal(err)
					}
					adds = adds[:0]
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n, err := f.svc.Get(ctx, abacus.Ref{Namespace: "bench", Counter: "hot"})
				if err != nil || n != events {
					b.Fatalf("count %d, %v; want %d", n, err, events)
				}
			}
			b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRollupManyCounters measures the rollup of many counters with one
// event each — the shape of a burst of writes over a large key space, where
// the per-rollup cost (reads of the checkpoint and last write time, a scan,
// the checkpoint write) dominates rather than the fold. It reports rollups/s;
// b.N counters are written first and each is rolled up once, on GOMAXPROCS
// goroutines: one at a time (one), or in the pipeline's batches of 32
// (batch, which reads states, scans and writes checkpoints per batch).
func BenchmarkRollupManyCounters(b *testing.B) {
	for _, batch := range []int{1, 32} {
		name := "one"
		if batch > 1 {
			name = "batch"
		}
		b.Run(name, func(b *testing.B) { benchRollupMany(b, batch) })
	}
}

func benchRollupMany(b *testing.B, batch int) {
	ctx := context.Background()
	ns := testNamespace("bench", abacus.Eventual)
	ns.Partition = abacus.TimePartition{BucketsPerID: 4, BucketWidth: 10 * time.Minute, SliceWidth: 24 * time.Hour}
	f := newFixture(b, b.TempDir())
	ns, err := f.svc.CreateNamespace(ctx, ns)
	if err != nil {
		b.Fatal(err)
	}
	adds := make([]abacus.AddRequest, 0, 1000)
	for i := range b.N {
		adds = append(adds, abacus.AddRequest{Namespace: "bench", Counter: fmt.Sprintf("c%08d", i), Delta: 1,
			Token: abacus.Token{ID: fmt.Sprint(i), Time: f.clk.t}})
		if len(adds) == cap(adds) || i == b.N-1 {
			if _, err := f.svc.AddBatch(ctx, adds); err != nil {
				b.Fatal(err)
			}
			adds = adds[:0]
		}
	}
	f.clk.t = f.clk.t.Add(ns.AcceptLimit + abacus.SkewMargin + time.Second)
	b.ResetTimer()
	if batch == 1 {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1) - 1
				caughtUp, err := f.rollup(ctx, ns, fmt.Sprintf("c%08d", i))
				if err != nil || !caughtUp {
					b.Errorf("rollup c%08d: caught up %v, %v", i, caughtUp, err)
					return
				}
			}
		})
	} else {
		names := make([]string, 0, batch)
		for i := 0; i < b.N; i += batch {
			names = names[:0]
			for k := i; k < min(i+batch, b.N); k++ {
				names = append(names, fmt.Sprintf("c%08d", k))
			}
			outs, errs := f.roll.RollupBatch(ctx, ns, names, runtime.GOMAXPROCS(0))
			for k := range names {
				if errs[k] != nil || !outs[k].CaughtUp {
					b.Fatalf("rollup %s: %+v, %v", names[k], outs[k], errs[k])
				}
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rollups/s")
	if n, err := f.svc.Get(ctx, abacus.Ref{Namespace: "bench", Counter: fmt.Sprintf("c%08d", b.N-1)}); err != nil || n != 1 {
		b.Fatalf("count %d, %v after the rollup; want 1", n, err)
	}
}

// nopAppend is an event store whose appends do nothing: it isolates the
// write path's own cost from the storage engine's.
type nopAppend struct{ abacus.EventStore }

func (nopAppend) Append(context.Context, []abacus.Write) error { return nil }

// BenchmarkAddPath measures counter.Service.Add of one EVENTUAL event with
// its idempotency token, as a unary AddCount makes it, with an event store
// whose Append does nothing: what is left is the service's own work
// (validation, the namespace, the accept window, the rate-limit check, the
// overflow check's cached checkpoint, the rollup signal). "warm" adds to
// 1000 counters whose checkpoints are cached, as in a steady run.
func BenchmarkAddPath(b *testing.B) {
	ctx := context.Background()
	ns := testNamespace("bench", abacus.Eventual)
	ns.AcceptLimit = time.Hour
	f := newFixture(b, b.TempDir(), ns)
	f.backends.Events[abacus.StorageEmbedded] = nopAppend{f.store}
	const counters = 1000
	names := make([]string, counters)
	for i := range names {
		names[i] = fmt.Sprint("c", i)
		// Cache each checkpoint, as the first add of a run does.
		if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "bench", Counter: names[i], Delta: 1}); err != nil {
			b.Fatal(err)
		}
	}
	now := f.clk.now()
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			r := abacus.AddRequest{Namespace: "bench", Counter: names[i%counters], Delta: 1,
				Token: abacus.Token{ID: "tok-" + names[i%counters], Time: now}}
			if _, err := f.svc.Add(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
