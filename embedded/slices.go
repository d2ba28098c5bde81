package embedded

import (
	"encoding/binary"
	"math"
	"slices"
	"sync"
)

// sliceIndex remembers which slices of each namespace hold events, so that a
// scan or a retention pass visits them without first seeking through the
// namespace's event keys (one Pebble iterator per scan, which was a sizeable
// part of a small rollup). It is built from the keys at Open; an append adds
// its slices before it applies its batch (so a scan that could see the
// events also sees the slice), and a deletion removes slices after it
// commits. A listed slice may be empty; a slice with events is always listed.
type sliceIndex struct {
	mu sync.RWMutex
	ns map[uint64][]int64 // sorted ascending
}

func newSliceIndex() *sliceIndex { return &sliceIndex{ns: make(map[uint64][]int64)} }

// has reports whether slice x of namespace nsID is listed.
func (si *sliceIndex) has(nsID uint64, x int64) bool {
	si.mu.RLock()
	defer si.mu.RUnlock()
	_, ok := slices.BinarySearch(si.ns[nsID], x)
	return ok
}

// add lists slice x of namespace nsID.
func (si *sliceIndex) add(nsID uint64, x int64) {
	if si.has(nsID, x) {
		return
	}
	si.mu.Lock()
	defer si.mu.Unlock()
	xs := si.ns[nsID]
	if i, ok := slices.BinarySearch(xs, x); !ok {
		si.ns[nsID] = slices.Insert(xs, i, x)
	}
}

// between returns the listed slices of nsID in [first, last], ascending.
func (si *sliceIndex) between(nsID uint64, first, last int64) []int64 {
	si.mu.RLock()
	defer si.mu.RUnlock()
	xs := si.ns[nsID]
	lo, _ := slices.BinarySearch(xs, first)
	hi, _ := slices.BinarySearch(xs, last+1)
	if lo >= hi {
		return nil
	}
	return slices.Clone(xs[lo:hi])
}

// deleteBelow forgets the slices of nsID below end.
func (si *sliceIndex) deleteBelow(nsID uint64, end int64) {
	si.mu.Lock()
	defer si.mu.Unlock()
	xs := si.ns[nsID]
	i, _ := slices.BinarySearch(xs, end)
	if i == len(xs) {
		delete(si.ns, nsID)
		return
	}
	si.ns[nsID] = slices.Clone(xs[i:])
}

// drop forgets namespace nsID.
func (si *sliceIndex) drop(nsID uint64) {
	si.mu.Lock()
	defer si.mu.Unlock()
	delete(si.ns, nsID)
}

// loadSlices lists every (namespace, slice) that holds events: one seek per
// slice, past its keys to the next one.
func (s *Store) loadSlices() (err error) {
	it, err := s.iter([]byte{prefixEvent}, []byte{prefixEvent + 1})
	if err != nil {
		return err
	}
	defer closeIter(it, &err)
	for valid := it.First(); valid; {
		key := it.Key()
		if len(key) < sliceKeyLen {
			return corrupt("event key", key)
		}
		nsID := binary.BigEndian.Uint64(key[1:])
		x, _ := parseSlice(key)
		s.slices.add(nsID, x)
		next := sliceKey(nsID, x+1)
		if x == math.MaxInt64 {
			if next = prefixEnd(spaceKey(prefixEvent, nsID)); next == nil {
				break
			}
		}
		valid = it.SeekGE(next)
	}
	if err := it.Error(); err != nil {
		return unavailable(err, "event store")
	}
	return nil
}
