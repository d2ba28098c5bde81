package embedded

import (
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/greatroar/blobloom"
)

// Limits of the in-memory indexes that spare Append its reads.
const (
	// recentHorizon is how far back in event time recentKeys remembers keys.
	// Accept windows are usually seconds; older events take the read path.
	recentHorizon = 30 * time.Second
	// recentMaxKeys bounds recentKeys' memory (about 2 bytes a key). It
	// was 4 Mi keys in exact maps (about 40 bytes a key): batch ingest at
	// 160,000 events/s filled it in 25 s, and every event after that took a
	// Pebble read (a seventh of the node's CPU).
	recentMaxKeys = 64 << 20
	// recentFalsePositives is the Bloom filters' rate of false positives:
	// an event it wrongly holds takes the read. The filters are blocked
	// (each key's bits in one cache line) and take the key's xxhash as it
	// is: a classic filter, hashing again and setting ten bits across the
	// filter, cost 4-6% of the node's CPU under batch ingest.
	recentFalsePositives = 0.001
	// recentMinCap is the least a second's filter is made for.
	recentMinCap = 16 << 10
	// fenceHorizon: a fence or checkpoint older than this is forgotten, and
	// Append reads the stored checkpoint for events older than it.
	fenceHorizon = 2 * time.Hour
)

// recentKeys remembers the hashes of the event keys this process has written
// for recent event times, by event-time second, in Bloom filters. For an
// event in a second it covers, a hash its filters do not hold proves the key
// absent, so the idempotency check of a new event, the common case, needs no
// Pebble read (which, for a key that is not there, consults every
// overlapping table's filter and was the largest cost of an append). A hash
// they may hold (a retry, or one new event in a thousand), or an event it
// does not cover, takes the read.
type recentKeys struct {
	mu      sync.Mutex
	start   int64 // covers only event times after start (see Open)
	floor   int64 // and seconds at or after floor (earlier ones were evicted)
	n       int
	rate    int // the most keys a second has held: the next second's filter is made for more
	buckets map[int64]*keyBucket
}

// keyBucket holds one second's keys: filters made for capacity keys each, a
// new one added when the last is full, so a second's false positive rate
// stays bounded however many keys it gets.
type keyBucket struct {
	filters  []*blobloom.Filter
	capacity int
	inLast   int  // keys added to the last filter
	keys     int  // in all of them
	full     bool // recentMaxKeys was reached: the bucket proves nothing
}

func (b *keyBucket) mayHold(h uint64) bool {
	for _, f := range b.filters {
		if f.Has(h) {
			return true
		}
	}
	return false
}

func (b *keyBucket) add(h uint64) {
	if len(b.filters) == 0 || b.inLast >= b.capacity {
		b.filters = append(b.filters, blobloom.NewOptimized(blobloom.Config{
			Capacity: uint64(b.capacity), FPRate: recentFalsePositives}))
		b.inLast = 0
	}
	b.filters[len(b.filters)-1].Add(h)
	b.inLast++
	b.keys++
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
		out[i] = !b.mayHold(e.hash)
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
				r.n -= b.keys
				r.rate = max(r.rate, b.keys)
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
				b = &keyBucket{capacity: max(recentMinCap, r.rate*5/4)}
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
		// A key added twice (two events of one batch cannot share one,
		// but a retry can follow its lost write) only costs filter room.
		b.add(e.hash)
		r.n++
		r.rate = max(r.rate, b.keys)
	}
}
