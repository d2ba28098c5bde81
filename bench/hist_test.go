package bench

import (
	"math"
	"sync"
	"testing"
	"time"
)

// within reports whether got is within rel (relative) of want.
func within(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)
}

func TestHistogramPercentilesOfKnownData(t *testing.T) {
	h := NewHistogram(4)
	// 1µs, 2µs, ..., 10000µs, once each, spread over the shards.
	for i := 1; i <= 10000; i++ {
		h.Record(i, time.Duration(i)*time.Microsecond)
	}
	l := h.Snapshot()
	if l.Count != 10000 {
		t.Fatalf("count = %d, want 10000", l.Count)
	}
	// HDR with 3 significant digits: each value within 0.1%.
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"p50", l.P50US, 5000},
		{"p90", l.P90US, 9000},
		{"p99", l.P99US, 9900},
		{"p99.9", l.P999US, 9990},
		{"max", l.MaxUS, 10000},
		{"mean", l.MeanUS, 5000.5},
	} {
		if !within(c.got, c.want, 0.001) {
			t.Errorf("%s = %vµs, want %vµs ± 0.1%%", c.name, c.got, c.want)
		}
	}
	if l.MaxUS != 10000 {
		t.Errorf("max = %v, want exactly 10000 (the exact maximum is kept)", l.MaxUS)
	}
}

func TestHistogramSmallValuesAreExact(t *testing.T) {
	h := NewHistogram(1)
	for _, ns := range []int64{100, 200, 300, 400, 500} {
		h.Record(0, time.Duration(ns))
	}
	l := h.Snapshot()
	if l.P50US != 0.3 || l.MaxUS != 0.5 {
		t.Errorf("p50 = %vµs, max = %vµs; want 0.3 and 0.5 (values under 2048ns are exact)", l.P50US, l.MaxUS)
	}
}

func TestHistogramSkewed(t *testing.T) {
	// 990 fast ops and 10 slow ones: p99 must be fast, p99.9 slow.
	h := NewHistogram(2)
	for i := range 990 {
		h.Record(i, 100*time.Microsecond)
	}
	for i := range 10 {
		h.Record(i, 50*time.Millisecond)
	}
	l := h.Snapshot()
	if !within(l.P99US, 100, 0.001) {
		t.Errorf("p99 = %vµs, want 100µs", l.P99US)
	}
	if !within(l.P999US, 50000, 0.001) {
		t.Errorf("p99.9 = %vµs, want 50000µs", l.P999US)
	}
}

func TestHistogramEmptyAndClamped(t *testing.T) {
	h := NewHistogram(2)
	if l := h.Snapshot(); l != (Latency{}) {
		t.Errorf("empty histogram = %+v, want zero", l)
	}
	h.Record(0, 2*maxTrackable)
	h.Record(1, -time.Second) // a clock step backwards: recorded as 0
	l := h.Snapshot()
	if l.Count != 2 || l.Clamped != 1 || l.MaxUS != float64(maxTrackable.Microseconds()) {
		t.Errorf("got %+v, want count 2, clamped 1, max = maxTrackable", l)
	}
}

func TestHistogramConcurrentRecords(t *testing.T) {
	h := NewHistogram(4)
	const goroutines, each = 16, 5000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				h.Record(g, time.Duration(i+1)*time.Microsecond)
				if i%1000 == 0 {
					h.Snapshot() // readers may run while writers do
				}
			}
		})
	}
	wg.Wait()
	l := h.Snapshot()
	if l.Count != goroutines*each {
		t.Fatalf("count = %d, want %d", l.Count, goroutines*each)
	}
	if !within(l.P50US, each/2, 0.002) || l.MaxUS != each {
		t.Errorf("p50 = %v, max = %v; want %v and %v", l.P50US, l.MaxUS, each/2, each)
	}
}
