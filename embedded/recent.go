package embedded

import (
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Limits of the in-memory indexes that spare Append its reads.
const (
	// recentHorizon is how far back in event time recentKeys remembers keys.
	// Accept windows are usually seconds; older events take the read path.
	recentHorizon = 30 * time.Second
	// recentMaxKeys bounds recentKeys' memory (about 40 bytes a key).
	recentMaxKeys = 4 << 20
	// fenceHorizon: a fence or checkpoint older than this is forgotten, and
	// Append reads the stored checkpoint for events older than it.
	fenceHorizon = 2 * time.Hour
)

// recentKeys remembers the hashes of the event keys this process has written
// for recent event times, by event-time second. For an event in a second it
// covers, a hash it does not hold proves the key absent, so the idempotency
// check of a new event, the common case, needs no Pebble read (which, for a
// key that is not there, consults every overlapping table's filter and was the
// largest cost of an append). A hash it holds, or an event it does not cover,
// takes the read.
type recentKeys struct {
	mu      sync.Mutex
	start   int64 // covers only event times after start (see Open)
	floor   int64 // and seconds at or after floor (earlier ones were evicted)
	n       int
	buckets map[int64]*keyBucket
}

type keyBucket struct {
	keys map[uint64]struct{}
	full bool // recentMaxKeys was reached: the bucket proves nothing
}

// newRecentKeys returns an empty index covering event times after start,
// which must be at or after every event time stored before.
func newRecentKeys(start time.Time) *recentKeys {
	return &recentKeys{
		start:   start.UnixNano(),
		floor:   start.Unix(),
		buckets: map[int64]*keyBucket{},
	}
}

func keyHash(key []byte) uint64 { return xxhash.Sum64(key) }

func second(nanos int64) int64 {
	s := nanos / 1e9
	if nanos < 0 && nanos%1e9 != 0 {
		s--
	}
	return s
}

// absent reports whether the key of an event at nanos is certainly not stored.
func (r *recentKeys) absent(h uint64, nanos int64) bool {
	if nanos <= r.start {
		return false
	}
	sec := second(nanos)
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec < r.floor {
		return false
	}
	b := r.buckets[sec]
	if b == nil {
		return true
	}
	if b.full {
		return false
	}
	_, held := b.keys[h]
	return !held
}

// add records a key about to be written. The caller holds the key's stripe
// from before absent until after the commit, so a concurrent append of the
// same key sees it.
func (r *recentKeys) add(h uint64, nanos int64, now time.Time) {
	sec := second(nanos)
	r.mu.Lock()
	defer r.mu.Unlock()
	if cut := now.Add(-recentHorizon).Unix(); cut > r.floor {
		for s, b := range r.buckets {
			if s < cut {
				r.n -= len(b.keys)
				delete(r.buckets, s)
			}
		}
		r.floor = cut
	}
	if sec < r.floor {
		return
	}
	b := r.buckets[sec]
	if b == nil {
		b = &keyBucket{keys: map[uint64]struct{}{}}
		r.buckets[sec] = b
	}
	if b.full {
		return
	}
	if r.n >= recentMaxKeys {
		b.full = true
		return
	}
	if _, ok := b.keys[h]; !ok {
		b.keys[h] = struct{}{}
		r.n++
	}
}
