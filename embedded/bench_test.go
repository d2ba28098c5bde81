package embedded_test

import (
	"testing"

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
