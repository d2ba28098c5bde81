package counter

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-dev/abacus"
)

// RollupOutcome is what one rollup of a counter reports to its scheduler.
type RollupOutcome struct {
	// CaughtUp is true when the checkpoint covers every write of the counter:
	// nothing is left to roll up until the next write.
	CaughtUp bool
	// NotBefore, when the counter is not caught up, is when the immutable
	// window will have passed its last write: a rollup before then cannot
	// finish the checkpoint, so the scheduler may wait until then (unless a
	// new write comes).
	NotBefore time.Time
}

// Rollup aggregates one counter's immutable window into its checkpoint
// [ROLL-1]: it reads the checkpoint, folds the events in [checkpoint,
// now − accept_limit − skew margin) (a clear resets the count), and writes the
// new checkpoint if it is newer than the stored one (so concurrent rollups
// converge) and caches it. caughtUp is false while the counter has events the
// checkpoint does not cover yet; the pipeline then rolls it up again later. It
// is safe to run more than once and concurrently.
func (s *Service) Rollup(ctx context.Context, ns *abacus.Namespace, counter string) (caughtUp bool, err error) {
	o, err := s.RollupCounter(ctx, ns, counter)
	return o.CaughtUp, err
}

// RollupCounter is Rollup, and says when a further rollup can finish a
// counter that is not caught up.
//
// For an EVENTUAL namespace it also caches the provisional count: the new
// checkpoint plus the events after it that the window does not cover yet
// (late events may still join them). EVENTUAL reads answer from the cache,
// so a count is exact as soon as a rollup ran after the last write, instead
// of only once the accept window has passed it; every write signals a
// rollup, so a late event refreshes the provisional count too. The
// checkpoint itself, which ACCURATE reads and retention rely on, only ever
// covers the immutable window.
func (s *Service) RollupCounter(ctx context.Context, ns *abacus.Namespace, counter string) (RollupOutcome, error) {
	st, err := s.cfg.Backends.RollupStore(ns).RollupState(ctx, ns, counter)
	if err != nil {
		return RollupOutcome{}, err
	}
	return s.rollupFrom(ctx, ns, counter, st)
}

// RollupBatch is RollupCounter for many counters of ns, on at most
// parallelism goroutines. When the rollup store reads many states at once
// (abacus.RollupStatesReader) it reads the batch's states together first,
// which spares each rollup two point reads. It returns an outcome and an
// error per counter, in order.
func (s *Service) RollupBatch(ctx context.Context, ns *abacus.Namespace, counters []string, parallelism int) ([]RollupOutcome, []error) {
	out := make([]RollupOutcome, len(counters))
	errs := make([]error, len(counters))
	var states []abacus.RollupState
	if r, ok := s.cfg.Backends.RollupStore(ns).(abacus.RollupStatesReader); ok && len(counters) > 1 {
		var err error
		if states, err = r.RollupStates(ctx, ns, counters); err != nil {
			for i := range errs {
				errs[i] = err
			}
			return out, errs
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(parallelism, len(counters))) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(counters) {
					return
				}
				if states != nil {
					out[i], errs[i] = s.rollupFrom(ctx, ns, counters[i], states[i])
				} else {
					out[i], errs[i] = s.RollupCounter(ctx, ns, counters[i])
				}
			}
		})
	}
	wg.Wait()
	return out, errs
}

// rollupFrom is RollupCounter from a state already read.
func (s *Service) rollupFrom(ctx context.Context, ns *abacus.Namespace, counter string, st abacus.RollupState) (_ RollupOutcome, err error) {
	now := s.now()
	end := ns.RollupEnd(now)
	// The provisional tail of an EVENTUAL count: every event after the
	// window (none is accepted later than the future limit).
	tailTo := now.Add(abacus.FutureLimit + time.Nanosecond)
	provisional := ns.Type == abacus.Eventual && st.Behind()
	stored := st.Checkpoint
	var tail abacus.Partial
	tailDone := false
	if st.Behind() && end.After(st.Through) {
		// The fence closes the window to writes that passed their accept-window
		// check long ago but have not committed yet; without it such a write
		// could land behind the new checkpoint and never be counted.
		if err := s.cfg.Backends.RollupStore(ns).Fence(ctx, ns, counter, end); err != nil {
			return RollupOutcome{}, err
		}
		var p abacus.Partial
		if provisional {
			p, tail, err = s.foldSplit(ctx, ns, counter, st.Through, end, tailTo)
			tailDone = true
		} else {
			p, err = s.fold(ctx, ns, counter, st.Through, end)
		}
		if err != nil {
			return RollupOutcome{}, err
		}
		stored, err = s.cfg.Backends.RollupStore(ns).AdvanceCheckpoint(ctx, ns, counter, abacus.Checkpoint{Count: p.On(st.Count), Through: end})
		if err != nil {
			return RollupOutcome{}, err
		}
		if tailDone && !stored.Through.Equal(end) {
			// Another rollup moved the checkpoint elsewhere: the tail read
			// from end does not start where the stored count ends.
			tailDone = false
		}
	}
	caughtUp := !st.Behind() || st.LastWrite.Before(stored.Through)
	cached := stored
	if ns.Type == abacus.Eventual {
		// The cached value of an EVENTUAL counter is its count as of now:
		// reads compare nothing else, and a later rollup always caches a
		// count at least as complete (events are only ever added).
		cached.Through = now
		if !caughtUp {
			if !tailDone {
				if tail, err = s.fold(ctx, ns, counter, stored.Through, tailTo); err != nil {
					return RollupOutcome{}, err
				}
			}
			cached.Count = tail.On(stored.Count)
		}
	}
	// A failed cache write only costs a later store read.
	_ = s.cfg.Backends.RollupCache(ns).PutCheckpoint(ctx, cacheKey(ns, counter), cached, ns.TTL)
	if caughtUp {
		return RollupOutcome{CaughtUp: true}, nil
	}
	return RollupOutcome{NotBefore: st.LastWrite.Add(ns.AcceptLimit + abacus.SkewMargin + time.Millisecond)}, nil
}

// Recover signals a rollup for every counter whose writes are newer than its
// checkpoint: after a crash the in-memory signals are gone, and without this
// an EVENTUAL counter nobody reads would stay stale.
func (s *Service) Recover(ctx context.Context) (int, error) {
	n := 0
	for _, rs := range s.cfg.Backends.AllRollupStores() {
		err := rs.BehindCounters(ctx, func(nsID uint64, counter string) error {
			if ns, ok := s.reg.byID(nsID); ok && ns.Type.Durable() {
				s.sig(ns, counter)
				n++
			}
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
