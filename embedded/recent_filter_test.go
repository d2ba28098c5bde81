package embedded

import (
	"fmt"
	"testing"
	"time"
)

// TestRecentKeysFilter: a key added is never proven absent (no false
// negatives, however many keys a second gets and however many filters it
// takes), keys outside what the index covers are never proven absent, and
// fresh keys are proven absent but for about the filters' false positives.
func TestRecentKeysFilter(t *testing.T) {
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	ev := func(sec int, i int) pendingEvent {
		key := []byte(fmt.Sprintf("key-%d-%d", sec, i))
		return pendingEvent{key: key, hash: keyHash(key), nanos: start.Add(time.Duration(sec)*time.Second + time.Millisecond).UnixNano()}
	}
	tests := []struct {
		name    string
		perSec  int
		seconds int
	}{
		{"a few keys", 10, 1},
		{"one filter's capacity", recentMinCap, 1},
		{"several filters in one second", 5*recentMinCap + 7, 1},
		{"several seconds", 3 * recentMinCap, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecentKeys(start)
			var added []pendingEvent
			for sec := range tt.seconds {
				var batch []*pendingEvent
				for i := range tt.perSec {
					e := ev(sec, i)
					added = append(added, e)
					batch = append(batch, &added[len(added)-1])
				}
				// The index is told the keys in batches, as appends do.
				for len(batch) > 0 {
					n := min(100, len(batch))
					r.addAll(batch[:n], start.Add(time.Duration(sec)*time.Second))
					batch = batch[n:]
				}
			}
			for i, absent := range r.absentAll(added) {
				if absent {
					t.Fatalf("key %s was added but is reported absent", added[i].key)
				}
			}
			var fresh []pendingEvent
			for sec := range tt.seconds {
				for i := range 20_000 {
					fresh = append(fresh, ev(sec, tt.perSec+i))
				}
			}
			held := 0
			for _, absent := range r.absentAll(fresh) {
				if !absent {
					held++
				}
			}
			// 0.1% per filter, at most a few filters per second.
			if rate := float64(held) / float64(len(fresh)); rate > 0.01 {
				t.Errorf("%d of %d fresh keys may be held (%.2f%%), want under 1%%", held, len(fresh), 100*rate)
			}
		})
	}
	t.Run("not covered", func(t *testing.T) {
		r := newRecentKeys(start)
		old := pendingEvent{key: []byte("k"), hash: keyHash([]byte("k")), nanos: start.Add(-time.Second).UnixNano()}
		atStart := pendingEvent{key: []byte("k"), hash: keyHash([]byte("k")), nanos: start.UnixNano()}
		if a := r.absentAll([]pendingEvent{old, atStart}); a[0] || a[1] {
			t.Errorf("events at or before the start proven absent: %v", a)
		}
		// Evicted seconds prove nothing either.
		e := ev(0, 1)
		r.addAll([]*pendingEvent{&e}, start.Add(time.Minute))
		if a := r.absentAll([]pendingEvent{ev(0, 2)}); a[0] {
			t.Error("an event of an evicted second proven absent")
		}
	})
}
