package rollup

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkSignal measures Signal from parallel callers, as a node's write
// and read paths call it. "hot" signals a small set of counters, nearly
// always already held (the coalescing fast path); "distinct" signals a new
// counter every time, so entries are created, rolled up and freed, and some
// signals are dropped for capacity.
func BenchmarkSignal(b *testing.B) {
	for _, bc := range []struct {
		name     string
		counters int
	}{{"hot", 1024}, {"distinct", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := New(func(context.Context, Key) (Outcome, error) { return Outcome{CaughtUp: true}, nil }, quiet())
			if err != nil {
				b.Fatal(err)
			}
			ns := namespace(1, 8, 10*time.Millisecond, 1<<20, 32)
			n := bc.counters
			if n == 0 {
				n = 1 << 16
			}
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprint("counter-", i)
			}
			var goroutines atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				// Each caller walks the names from its own offset.
				i := goroutines.Add(1) * 7919
				for pb.Next() {
					i++
					p.Signal(Key{NS: ns, Counter: names[i%uint64(n)]})
				}
			})
			b.StopTimer()
			s, _ := p.Stats(ns.ID)
			b.ReportMetric(float64(s.Dropped)/float64(b.N), "dropped/op")
			if err := p.Drain(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}
