package embedded_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/embedded"
)

// BenchmarkAppendBatch appends batches of 100 events over 1000 counters from
// 16 goroutines, as AddCounts of 100 does, and reports the process's CPU
// time per event (user + system, of every goroutine, including the store's
// background work until the events are written out) next to wall time.
func BenchmarkAppendBatch(b *testing.B) {
	ctx := context.Background()
	s := open(b, b.TempDir(), embedded.Options{Logger: testLogger(b)})
	ns, err := s.CreateNamespace(ctx, &abacus.Namespace{Name: "bench", Type: abacus.Eventual,
		Partition: abacus.TimePartition{BucketsPerID: 4, BucketWidth: time.Minute, SliceWidth: 10 * time.Minute}})
	if err != nil {
		b.Fatal(err)
	}
	const perBatch, goroutines = 100, 16
	names := make([]string, 1000)
	for i := range names {
		names[i] = "c" + strconv.Itoa(i)
	}
	base := time.Now()
	var seq atomic.Int64
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range goroutines {
		wg.Go(func() {
			ws := make([]abacus.Write, perBatch)
			for next.Add(1) <= int64(b.N) {
				for j := range ws {
					i := seq.Add(1)
					ws[j] = abacus.Write{NS: ns, Event: abacus.Event{Counter: names[i*7%1000], Time: base.Add(time.Duration(i) * time.Microsecond),
						ID: "tok-" + strconv.FormatInt(i, 10), Delta: 1}}
				}
				if err := s.Append(ctx, ws); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu := cpuTime() - cpu0
	events := float64(b.N * perBatch)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
	b.ReportMetric(float64(cpu.Nanoseconds())/events, "cpu-ns/event")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
