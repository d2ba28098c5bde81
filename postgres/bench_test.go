package postgres

import (
	"testing"

	"github.com/abacus-dev/abacus/storetest"
)

// BenchmarkAppendParallel: single-event appends from many goroutines; it also
// reports how many appends shared each group commit (appends/commit).
func BenchmarkAppendParallel(b *testing.B) {
	storetest.BenchAppendParallel(b, func(b *testing.B) storetest.Backend {
		return openStore(b, Options{})
	}, func(b *testing.B, be storetest.Backend) func() {
		s := be.(*Store)
		before := s.Stats()
		return func() {
			st := s.Stats()
			if commits := st.Commits - before.Commits; commits > 0 {
				b.ReportMetric(float64(st.Appends-before.Appends)/float64(commits), "appends/commit")
			}
		}
	})
}

// BenchmarkScan scans one counter of 10,000 events both ways.
func BenchmarkScan(b *testing.B) {
	storetest.BenchScan(b, openStore(b, Options{}))
}
