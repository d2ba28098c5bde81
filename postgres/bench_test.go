package postgres

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

// BenchmarkAppendParallel appends one event per Append from many goroutines,
// as a node serving concurrent requests does; ns/op is the reciprocal of
// throughput. With more goroutines, more Appends share each group commit
// (appends/commit).
func BenchmarkAppendParallel(b *testing.B) {
	for _, goroutines := range []int{runtime.GOMAXPROCS(0), 16, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			ctx := context.Background()
			s := openStore(b, Options{})
			ns, err := s.CreateNamespace(ctx, nsConfig("bench"))
			if err != nil {
				b.Fatal(err)
			}
			var seq atomic.Int64
			before := s.Stats()
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
					if err := s.Append(ctx, []abacus.Write{{NS: ns, Event: e}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			if commits := st.Commits - before.Commits; commits > 0 {
				b.ReportMetric(float64(st.Appends-before.Appends)/float64(commits), "appends/commit")
			}
		})
	}
}

// BenchmarkScan scans one counter of 10,000 events over 10 slices,
// forwards and backwards.
func BenchmarkScan(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, Options{})
	ns, err := s.CreateNamespace(ctx, nsConfig("bench"))
	if err != nil {
		b.Fatal(err)
	}
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
			if err := s.Append(ctx, batch); err != nil {
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
				if err := s.Scan(ctx, ns, "hot", abacus.Range{Reverse: reverse}, func(abacus.Event) error {
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
