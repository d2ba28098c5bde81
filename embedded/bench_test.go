package embedded_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/embedded"
	"github.com/abacus-dev/abacus/storetest"
)

// BenchmarkAppendParallel: synced single-event appends from many goroutines;
// concurrent appends share WAL fsyncs.
func BenchmarkAppendParallel(b *testing.B) {
	storetest.BenchAppendParallel(b, func(b *testing.B) storetest.Backend {
		return open(b, b.TempDir(), embedded.Options{Logger: testLogger(b)})
	}, nil)
}

// BenchmarkScan scans one counter of 10,000 events both ways.
func BenchmarkScan(b *testing.B) {
	storetest.BenchScan(b, open(b, b.TempDir(), embedded.Options{Logger: testLogger(b)}))
}

// BenchmarkScanTail scans the last second of a hot counter's ten minutes of
// events in one time bucket, as a rollup from a recent checkpoint does.
func BenchmarkScanTail(b *testing.B) {
	ctx := context.Background()
	s := open(b, b.TempDir(), embedded.Options{Logger: testLogger(b)})
	cfg := nsConfig("tail")
	cfg.Partition = abacus.TimePartition{BucketsPerID: 4, BucketWidth: 600 * time.Second, SliceWidth: 24 * time.Hour}
	ns, err := s.CreateNamespace(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	const perSec, secs = 20, 600
	var ws []abacus.Write
	for i := range perSec * secs {
		off := time.Duration(i) * time.Second / perSec
		ws = append(ws, abacus.Write{NS: ns, Event: ev("c", off, fmt.Sprintf("e%d", i), 1)})
		if len(ws) == 1000 {
			if err := s.Append(ctx, ws); err != nil {
				b.Fatal(err)
			}
			ws = ws[:0]
		}
	}
	r := abacus.Range{From: t0.Add((secs - 2) * time.Second), To: t0.Add((secs - 1) * time.Second)}
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if err := s.ScanMany(ctx, ns, []abacus.ScanRequest{{Counter: "c", Range: r}}, func(int, abacus.Event) error {
			n++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if n != perSec {
			b.Fatalf("%d events, want %d", n, perSec)
		}
	}
}
