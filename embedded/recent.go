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

// absentAll reports, for each event, whether its key is certainly not
// stored, under one lock for the batch.
func (r *recentKeys) absentAll(evs []pendingEvent) []bool {
	out := make([]bool, len(evs))
	r.mu.Lock()
	defer r.mu.Unlock()
	var (
		lastSec = int64(-1 << 63)
		b       *keyBucket
	)
	for i := range evs {
		e := &evs[i]
		if e.nanos <= r.start {
			continue
		}
		sec := second(e.nanos)
		if sec < r.floor {
			continue
		}
		if sec != lastSec {
			b, lastSec = r.buckets[sec], sec
		}
		if b == nil {
			out[i] = true
			continue
		}
		if b.full {
			continue
		}
		_, held := b.keys[e.hash]
		out[i] = !held
	}
	return out
}

// addAll records the keys of events about to be written. The caller holds
// their stripes from before absentAll until after the commit, so a
// concurrent append of the same key sees them.
func (r *recentKeys) addAll(evs []*pendingEvent, now time.Time) {
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
	var (
		lastSec = int64(-1 << 63)
		b       *keyBucket
	)
	for _, e := range evs {
		sec := second(e.nanos)
		if sec < r.floor {
			continue
		}
		if sec != lastSec {
			b, lastSec = r.buckets[sec], sec
			if b == nil {
				b = &keyBucket{keys: make(map[uint64]struct{}, 1024)}
				r.buckets[sec] = b
			}
		}
		if b.full {
			continue
		}
		if r.n >= recentMaxKeys {
			b.full = true
			continue
		}
		if _, ok := b.keys[e.hash]; !ok {
			b.keys[e.hash] = struct{}{}
			r.n++
		}
	}
}
