package embedded

import (
	"context"
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
type fences struct {
	mu   [numStripes]paddedRWMutex
	ends [numStripes]map[string]int64 // counter key → fence or checkpoint, Unix ns; guarded by mu
	// evictAt is the size of a stripe's map at which evict next sweeps it:
	// twice what the last sweep left, so that sweeps stay amortised O(1)
	// per raise even when most fences are too young to go.
	evictAt [numStripes]int
	// start: ends holds every fence and checkpoint this process set, so for an
	// event after start (at or after every checkpoint stored before Open) and
	// within fenceHorizon of now it is complete.
	start int64
}

type paddedRWMutex struct {
	sync.RWMutex
	_ [64 - 24]byte
}

// rlock locks the stripes of counter keys shared, in ascending order (Fence
// locks one stripe only, so sorted shared locks cannot deadlock with it).
func (f *fences) rlock(keys []string) (idx []uint32) {
	idx = make([]uint32, len(keys))
	for i, k := range keys {
		idx[i] = stripeOf([]byte(k))
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

// end returns the fence of a counter key; the caller holds its stripe.
func (f *fences) end(key string) (int64, bool) {
	n, ok := f.ends[stripeOf([]byte(key))][key]
	return n, ok
}

// raise raises a counter's fence to end and returns once every append that
// held the counter's stripe has committed.
func (f *fences) raise(key string, end int64) {
	i := stripeOf([]byte(key))
	f.mu[i].Lock()
	defer f.mu[i].Unlock()
	if f.ends[i] == nil {
		f.ends[i] = map[string]int64{}
	}
	if cur, ok := f.ends[i][key]; !ok || end > cur {
		f.ends[i][key] = end
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
	s.fences.raise(string(counterKey(prefixCheckpoint, ns.ID, counter)), n)
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
		key := string(counterKey(prefixCheckpoint, e.nsID, e.ev.Counter))
		lim := int64(minNanos)
		if f, ok := s.fences.end(key); ok {
			lim = f
		}
		if e.nanos <= s.fences.start || e.nanos < cut {
			cp, err := s.checkpoint([]byte(key))
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
