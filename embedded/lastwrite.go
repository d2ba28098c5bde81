package embedded

import (
	"sync"

	"github.com/abacus-dev/abacus"

	"github.com/cespare/xxhash/v2"
)

// lastWriteGrid is the resolution of stored last-write times
// (abacus.LastWriteResolution): a counter's 'w' key holds its latest event
// time rounded up to it, so that a counter written many times within one
// grid step needs one merge, not one per write (the merge was a memtable
// insert for every event, as costly as the event's own).
const lastWriteGrid = int64(abacus.LastWriteResolution)

// lastWriteSlots is the size of lastWrites' table: the counters written in
// the last grid step that it can remember at once (16 bytes each).
const lastWriteSlots = 1 << 16

// lastWrites remembers, for recently written counters, the last-write time
// that an applied batch carries for them, so that Append can leave out a
// merge that would not raise the stored value. It is a direct-mapped table
// keyed by a 64-bit hash of the 'w' key: a counter whose slot another one
// took merges again, which is only a lost saving; two counters with the
// same 64-bit hash would make one skip a merge it needs (delaying, not
// losing, its EVENTUAL count), at odds of about 2^-64 per lookup.
type lastWrites struct {
	mu    sync.Mutex
	slots [lastWriteSlots]struct {
		hash  uint64
		nanos int64
	}
}

// lastWriteUpdate is one merge a batch carries.
type lastWriteUpdate struct {
	hash  uint64
	nanos int64
}

// ceilGrid rounds nanos up to the grid.
func ceilGrid(nanos int64) int64 {
	r := nanos % lastWriteGrid
	switch {
	case r == 0:
		return nanos
	case r < 0:
		return nanos - r
	case nanos > (1<<63-1)-lastWriteGrid:
		return 1<<63 - 1
	default:
		return nanos - r + lastWriteGrid
	}
}

// plan returns, for each 'w' key with the latest event time of a batch,
// the stored value it needs and whether the batch must carry it.
func (lw *lastWrites) plan(keys []string, nanos []int64) (ups []lastWriteUpdate, need []bool) {
	ups = make([]lastWriteUpdate, len(keys))
	need = make([]bool, len(keys))
	for i, k := range keys {
		ups[i] = lastWriteUpdate{hash: xxhash.Sum64String(k), nanos: ceilGrid(nanos[i])}
	}
	lw.mu.Lock()
	for i, u := range ups {
		sl := &lw.slots[u.hash%lastWriteSlots]
		need[i] = sl.hash != u.hash || sl.nanos < nanos[i]
	}
	lw.mu.Unlock()
	return ups, need
}

// applied records the merges of a batch that has been applied: in Pebble's
// commit order every later batch follows it in the WAL, so a later batch
// that leaves the merge out is durable only if this one is.
func (lw *lastWrites) applied(ups []lastWriteUpdate, need []bool) {
	lw.mu.Lock()
	for i, u := range ups {
		if !need[i] {
			continue
		}
		sl := &lw.slots[u.hash%lastWriteSlots]
		if sl.hash != u.hash || sl.nanos < u.nanos {
			sl.hash, sl.nanos = u.hash, u.nanos
		}
	}
	lw.mu.Unlock()
}
