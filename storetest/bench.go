package storetest

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// BenchAppendParallel appends one event per Append from many goroutines, as a
// node serving concurrent requests does, and reports appends/s; more
// goroutines let more appends share each fsync or commit (group commit).
// newBackend returns an empty backend per sub-benchmark; measure, if not nil,
// is called just before the timed loop and returns a function called just
// after it, for backend-specific metrics.
func BenchAppendParallel(b *testing.B, newBackend func(b *testing.B) Backend, measure func(b *testing.B, be Backend) func()) {
	for _, goroutines := range []int{runtime.GOMAXPROCS(0), 16, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			ctx := context.Background()
			be := newBackend(b)
			ns := newNamespace(b, be, "bench")
			var seq atomic.Int64
			done := func() {}
			if measure != nil {
				done = measure(b, be)
			}
			b.SetParallelism(max(1, goroutines/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1)
					e := abacus.Event{
						Counter: "counter-" + strconv.FormatInt(i%100, 10),
						Time:    t0.Add(time.Duration(i) * time.Microsecond),
						ID:      "tok-" + strconv.FormatInt(i, 10),
						Delta:   1,
					}
					if err := be.Append(ctx, []abacus.Write{{NS: ns, Event: e}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			done()
		})
	}
}

// BenchScan scans one counter of 10,000 events over 10 slices, forwards and
// backwards, and reports events/s.
func BenchScan(b *testing.B, be Backend) {
	ctx := context.Background()
	ns := newNamespace(b, be, "bench")
	const events = 10_000
	batch := make([]abacus.Write, 0, 500)
	for i := range events {
		batch = append(batch, abacus.Write{NS: ns, Event: abacus.Event{
			Counter: "hot",
			Time:    t0.Add(time.Duration(i) * 60 * time.Millisecond),
			ID:      "tok-" + strconv.Itoa(i),
			Delta:   1,
		}})
		if len(batch) == cap(batch) {
			if err := be.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for _, reverse := range []bool{false, true} {
		b.Run(fmt.Sprintf("reverse=%v", reverse), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				if err := be.Scan(ctx, ns, "hot", abacus.Range{Reverse: reverse}, func(abacus.Event) error {
					n++
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				if n != events {
					b.Fatalf("scanned %d events, want %d", n, events)
				}
			}
			b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
