package embedded

import (
	"hash/maphash"
	"sync"

	"github.com/abacus-dev/abacus"
)

// lastWriteGrid is the resolution of stored last-write times
// (abacus.LastWriteResolution): a counter's 'w' key holds its latest event
// time rounded up to it, so that a counter written many times within one
// grid step needs one merge, not one per write (the merge was a memtable
// insert for every event, as costly as the event's own).
const lastWriteGrid = int64(abacus.LastWriteResolution)

// lastWriteSlots is the size of lastWrites' table: the counters written in
// the last grid step that it can remember at once.
const lastWriteSlots = 1 << 16

// lastWrites remembers, for recently written counters, the last-write time
// that an applied batch carries for them, so that Append can leave out a
// merge that would not raise the stored value. It is a direct-mapped table
// indexed by a seeded hash of the 'w' key and holding the key itself, so a
// hit is exact: a counter whose slot another one took merges again, which
// is only a lost saving. It relies on 'w' keys never being deleted while
// the table may hold them: only a namespace's deletion deletes them
// (DeleteNamespace, DropNamespace, the orphan sweep at Open), and namespace
// IDs, part of the key, are never reused.
type lastWrites struct {
	seed  maphash.Seed
	mu    sync.Mutex
	slots [lastWriteSlots]struct {
		key   string
		nanos int64
	}
}

func newLastWrites() *lastWrites { return &lastWrites{seed: maphash.MakeSeed()} }

// lastWriteUpdate is one merge a batch may carry.
type lastWriteUpdate struct {
	slot  uint64
	key   string
	nanos int64 // the value to store, rounded up to the grid
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
		ups[i] = lastWriteUpdate{slot: maphash.String(lw.seed, k) % lastWriteSlots, key: k, nanos: ceilGrid(nanos[i])}
	}
	lw.mu.Lock()
	for i, u := range ups {
		sl := &lw.slots[u.slot]
		need[i] = sl.key != u.key || sl.nanos < nanos[i]
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
		sl := &lw.slots[u.slot]
		if sl.key != u.key || sl.nanos < u.nanos {
			sl.key, sl.nanos = u.key, u.nanos
		}
	}
	lw.mu.Unlock()
}
