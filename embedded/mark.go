package embedded

import "sync/atomic"

// markAhead is how far past the time that needs it a high-water mark is
// written, so that a mark is written about once per markAhead of event (or
// checkpoint) time instead of in every batch: writing it in every batch was
// one more memtable insert per unary AddCount. The cost of the slack is that
// a restarted store's in-memory indexes start up to markAhead later, so
// writes in that short span take the read path.
const markAhead = int64(1e9)

// highMark is a persisted upper bound of the times in a key space (the
// latest event time, or checkpoint time, ever written), kept in a merged
// meta key. Open starts the in-memory indexes after it. Its zero value is
// not ready: Open sets stored to the mark it reads, or to minNanos.
type highMark struct {
	// stored is the largest mark carried by a batch already applied: in
	// Pebble's commit order every later batch follows it in the WAL, so
	// once a later batch is durable, so is the mark.
	stored atomic.Int64
}

// need returns the mark a batch holding times up to n must carry, and false
// when an applied batch already carries a mark at or after n.
func (m *highMark) need(n int64) (int64, bool) {
	if n <= m.stored.Load() {
		return 0, false
	}
	return n + markAhead, true
}

// applied records that a batch carrying mark v has been applied.
func (m *highMark) applied(v int64) {
	for {
		cur := m.stored.Load()
		if v <= cur || m.stored.CompareAndSwap(cur, v) {
			return
		}
	}
}
