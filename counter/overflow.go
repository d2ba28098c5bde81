package counter

import (
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// overflowMemo remembers, until the end of the current second, the counters
// whose checkpoint the overflow check found within ±safeCount. Such a count
// cannot leave int64 through adds within ±safeDelta in that time (it would
// take 2^30 of them), so their adds skip the cached checkpoint read, which
// cost 6-7% of a node's CPU under batch ingest (an otter lookup and a key
// string per counter per batch).
//
// It is a direct-mapped table of atomic words, each a counter's hash (the
// bits the slot index does not give) and the second it was checked in: a
// lookup is one hash and one atomic load, a collision only a miss, and two
// counters are confused only if their 64-bit hashes are equal.
type overflowMemo struct {
	slots [memoSlots]atomic.Uint64
}

const (
	memoSlotBits = 16
	memoSlots    = 1 << memoSlotBits
	memoSecMask  = memoSlots - 1 // the word's low bits hold the second
)

func memoHash(nsID uint64, counter string) uint64 {
	return xxhash.Sum64String(counter) ^ bits.RotateLeft64(nsID*0x9e3779b97f4a7c15, 31)
}

func memoWord(h uint64, now time.Time) uint64 {
	return h&^memoSecMask | uint64(now.Unix())&memoSecMask
}

// safe reports whether the counter was found safe in the current second.
func (m *overflowMemo) safe(nsID uint64, counter string, now time.Time) bool {
	h := memoHash(nsID, counter)
	return m.slots[h&memoSecMask].Load() == memoWord(h, now)
}

// mark records that the counter was found safe now.
func (m *overflowMemo) mark(nsID uint64, counter string, now time.Time) {
	h := memoHash(nsID, counter)
	m.slots[h&memoSecMask].Store(memoWord(h, now))
}

// forget drops the counter's verdict: a large add may take its count near
// the limit within the second.
func (m *overflowMemo) forget(nsID uint64, counter string) {
	h := memoHash(nsID, counter)
	slot := &m.slots[h&memoSecMask]
	if w := slot.Load(); w&^memoSecMask == h&^memoSecMask {
		slot.CompareAndSwap(w, 0)
	}
}
