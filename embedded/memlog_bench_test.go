package embedded

import (
	"fmt"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// BenchmarkWriteOut measures writing out one table of 100,000 events over
// 1000 counters, as batch ingest fills it: the sort, the sstable and the
// ingestion, per event.
func BenchmarkWriteOut(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l := abacus.Layout{NSID: 3, SliceWidth: int64(10 * time.Minute), BucketWidth: int64(time.Minute), Buckets: 4}
	base := time.Now().Truncate(time.Minute).UnixNano()
	const n = 100_000
	mk := func(round int) *memTable {
		t := newMemTable()
		for i := range n / 100 {
			var pend []*pendingEvent
			for j := range 100 {
				nanos := base + int64(round*n+i*100+j)*1000
				e := abacus.Event{Counter: fmt.Sprintf("c%d", (i*100+j)*7%1000), Time: time.Unix(0, nanos), ID: fmt.Sprintf("tok-%d-%d", round, i*100+j), Delta: 1}
				pend = append(pend, &pendingEvent{ev: e, key: eventKey(l, e, nanos), nanos: nanos})
			}
			rec, mes := appendRecord(pend)
			t.add(mes, uint64(round*n+i+1), len(rec))
		}
		return t
	}
	b.Run("blocks", func(b *testing.B) {
		t := mk(0)
		b.ResetTimer()
		for range b.N {
			_, _ = t.blocks(1)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
	})
	b.Run("all", func(b *testing.B) {
		ts := make([]*memTable, b.N)
		for i := range ts {
			ts[i] = mk(i)
		}
		b.ResetTimer()
		for i := range b.N {
			if err := s.writeOut(b.Context(), ts[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
	})
}
