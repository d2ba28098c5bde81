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
	need  bool  // whether the batch must carry it
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

// plan returns the merges for a batch whose latest event time per 'w' key
// is latest, each marked needed unless an applied batch carries as much.
func (lw *lastWrites) plan(latest map[string]int64) []lastWriteUpdate {
	ups := make([]lastWriteUpdate, 0, len(latest))
	for k, n := range latest {
		ups = append(ups, lastWriteUpdate{slot: maphash.String(lw.seed, k) % lastWriteSlots, key: k, nanos: ceilGrid(n)})
	}
	lw.mu.Lock()
	for i, u := range ups {
		sl := &lw.slots[u.slot]
		ups[i].need = sl.key != u.key || sl.nanos < u.nanos
	}
	lw.mu.Unlock()
	return ups
}

// applied records the merges of a batch that has been applied: in Pebble's
// commit order every later batch follows it in the WAL, so a later batch
// that leaves the merge out is durable only if this one is.
func (lw *lastWrites) applied(ups []lastWriteUpdate) {
	lw.mu.Lock()
	for _, u := range ups {
		if !u.need {
			continue
		}
		sl := &lw.slots[u.slot]
		if sl.key != u.key || sl.nanos < u.nanos {
			sl.key, sl.nanos = u.key, u.nanos
		}
	}
	lw.mu.Unlock()
}
