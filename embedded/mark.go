package embedded

import (
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

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
// not ready: Open sets key, and stored to the mark it reads or to minNanos.
type highMark struct {
	key []byte
	// stored is the largest mark carried by a batch already applied: in
	// Pebble's commit order every later batch follows it in the WAL, so
	// once a later batch is durable, so is the mark.
	stored atomic.Int64
}

// add adds to b, a batch holding times up to n, the mark it must carry, and
// returns it for applied; minNanos when an applied batch already carries a
// mark at or after n.
func (m *highMark) add(b *pebble.Batch, n int64) int64 {
	if n <= m.stored.Load() {
		return minNanos
	}
	mark := n + markAhead
	_ = b.Merge(m.key, encodeTime(mark), nil)
	return mark
}

// applied records that a batch carrying mark v (from add) has been applied.
func (m *highMark) applied(v int64) {
	for {
		cur := m.stored.Load()
		if v <= cur || m.stored.CompareAndSwap(cur, v) {
			return
		}
	}
}
