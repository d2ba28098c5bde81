package embedded

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/abacus-dev/abacus"
)

// fences implements the rollup fence of abacus.RollupStore.Fence in memory:
// a single process owns the database, so a fence needs to outlive neither the
// process (after a restart no append is in flight) nor the checkpoint that
// follows it (Append checks the stored checkpoint too).
//
// Appends hold their counters' stripes shared through the synced commit, and
// Fence takes the stripe exclusively: it waits for the appends in flight, and
// appends that start after it see the fence. Shared holders run concurrently,
// so group commit is not affected.
//
// A counter is known by its fence id, a seeded 64-bit hash of its checkpoint
// key, not by the key: the maps then hold no pointers for the garbage
// collector to mark and no strings to hash and compare (with a million
// counters the string-keyed maps were 9% of the node's CPU). Two counters
// with the same id (odds 2^-64 a pair; the per-process seed keeps anyone from
// choosing such names) would share a fence, the later of the two: that can
// only refuse an event as behind a rollup, never let one in behind it.
type fences struct {
	mu   [numStripes]paddedRWMutex
	ends [numStripes]map[uint64]int64 // fence id → fence or checkpoint, Unix ns; guarded by mu
	// evictAt is the size of a stripe's map at which evict next sweeps it:
	// twice what the last sweep left, so that sweeps stay amortised O(1)
	// per raise even when most fences are too young to go.
	evictAt [numStripes]int
	// start: ends holds every fence and checkpoint this process set, so for an
	// event after start (at or after every checkpoint stored before Open) and
	// within fenceHorizon of now it is complete.
	start int64
	// seed is read by every Append and Fence: after the arrays, so that it
	// shares no cache line with a stripe's lock.
	seed maphash.Seed // set by newFences
}

func newFences(start int64) *fences { return &fences{seed: maphash.MakeSeed(), start: start} }

// id returns the fence id of a counter's checkpoint key.
func (f *fences) id(key []byte) uint64 { return maphash.Bytes(f.seed, key) }

// idOf is id(counterKey(prefixCheckpoint, nsID, counter)) without the
// allocation, for Append's every event.
func (f *fences) idOf(nsID uint64, counter string) uint64 {
	var buf [128]byte
	k := append(appendUint64(append(buf[:0], prefixCheckpoint), nsID), counter...)
	return maphash.Bytes(f.seed, k)
}

func fenceStripe(id uint64) uint32 { return uint32(id % numStripes) }

type paddedRWMutex struct {
	sync.RWMutex
	_ [64 - 24]byte
}

// rlock locks the stripes of fence ids shared, in ascending order (Fence
// locks one stripe only, so sorted shared locks cannot deadlock with it).
func (f *fences) rlock(ids []uint64) (idx []uint32) {
	idx = make([]uint32, len(ids))
	for i, id := range ids {
		idx[i] = fenceStripe(id)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		f.mu[i].RLock()
	}
	return idx
}

func (f *fences) runlock(idx []uint32) {
	for _, i := range idx {
		f.mu[i].RUnlock()
	}
}

// end returns the fence of a counter; the caller holds its stripe.
func (f *fences) end(id uint64) (int64, bool) {
	n, ok := f.ends[fenceStripe(id)][id]
	return n, ok
}

// raise raises a counter's fence to end and returns once every append that
// held the counter's stripe has committed.
func (f *fences) raise(id uint64, end int64) {
	i := fenceStripe(id)
	f.mu[i].Lock()
	defer f.mu[i].Unlock()
	if f.ends[i] == nil {
		f.ends[i] = map[uint64]int64{}
	}
	if cur, ok := f.ends[i][id]; !ok || end > cur {
		f.ends[i][id] = end
	}
	f.evict(i, time.Now())
}

// evict drops, from a stripe whose map has grown (to twice its size after
// the last sweep), the fences older than fenceHorizon: events that old take
// the read path in checkFences. The caller holds the stripe exclusively.
func (f *fences) evict(i uint32, now time.Time) {
	if len(f.ends[i]) < max(1024, f.evictAt[i]) {
		return
	}
	cut := now.Add(-fenceHorizon).UnixNano()
	for k, v := range f.ends[i] {
		if v < cut {
			delete(f.ends[i], k)
		}
	}
	f.evictAt[i] = 2 * len(f.ends[i])
}

// Fence implements abacus.RollupStore.
func (s *Store) Fence(ctx context.Context, ns *abacus.Namespace, counter string, end time.Time) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	if err := checkNamespaceCounter(ns, counter); err != nil {
		return err
	}
	n, err := abacus.EventNanos(end, "fence time")
	if err != nil {
		return err
	}
	s.fences.raise(s.fences.id(counterKey(prefixCheckpoint, ns.ID, counter)), n)
	return nil
}

// checkFences refuses fresh events older than their counter's fence or stored
// checkpoint: such an event would land behind a window a rollup has read, and
// never be counted. The caller holds the counters' stripes shared.
//
// The in-memory fences answer alone for events after the process started and
// within fenceHorizon (see fences.start); others also read the stored
// checkpoint.
func (s *Store) checkFences(fresh []*pendingEvent) error {
	cut := time.Now().Add(-fenceHorizon).UnixNano()
	for _, e := range fresh {
		lim := int64(minNanos)
		if f, ok := s.fences.end(e.fence); ok {
			lim = f
		}
		if e.nanos <= s.fences.start || e.nanos < cut {
			cp, err := s.checkpoint(counterKey(prefixCheckpoint, e.nsID, e.ev.Counter))
			if err != nil {
				return err
			}
			if !cp.Through.IsZero() && cp.Through.UnixNano() > lim {
				lim = cp.Through.UnixNano()
			}
		}
		if e.nanos < lim {
			return behindRollup(e.ev, lim)
		}
	}
	return nil
}

const minNanos = -1 << 63

func behindRollup(e abacus.Event, lim int64) error {
	return abacus.Errorf(abacus.FailedPrecondition,
		"event time %s of counter %q is before its last rollup (%s): the write arrived after its window was aggregated and cannot be counted",
		e.Time.UTC().Format(time.RFC3339Nano), e.Counter, time.Unix(0, lim).UTC().Format(time.RFC3339Nano))
}
