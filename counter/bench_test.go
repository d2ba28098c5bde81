package counter_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/counter"
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
			adds := make([]counter.AddRequest, 0, 10_000)
			for i := range events {
				adds = append(adds, counter.AddRequest{Namespace: "bench", Counter: "hot", Delta: 1,
					Token: counter.Token{ID: fmt.Sprint(i), Time: f.clk.t.Add(-time.Duration(i%3000) * time.Second)}})
				if len(adds) == cap(adds) {
					if _, err := f.svc.AddBatch(ctx, adds); err != nil {
						b.Fatal(err)
					}
					adds = adds[:0]
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n, err := f.svc.Get(ctx, counter.Ref{Namespace: "bench", Counter: "hot"})
				if err != nil || n != events {
					b.Fatalf("count %d, %v; want %d", n, err, events)
				}
			}
			b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
