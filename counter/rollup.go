package counter

import (
	"context"

	"github.com/abacus-dev/abacus"
)

// Rollup aggregates one counter's immutable window into its checkpoint
// [ROLL-1]: it reads the checkpoint, folds the events in [checkpoint,
// now − accept_limit − skew margin) (a clear resets the count), and writes the
// new checkpoint if it is newer than the stored one (so concurrent rollups
// converge) and caches it. caughtUp is false while the counter has events the
// checkpoint does not cover yet; the pipeline then rolls it up again later. It
// is safe to run more than once and concurrently.
func (s *Service) Rollup(ctx context.Context, ns *abacus.Namespace, counter string) (caughtUp bool, err error) {
	st, err := s.cfg.Backends.RollupStore(ns).RollupState(ctx, ns, counter)
	if err != nil {
		return false, err
	}
	key := cacheKey(ns, counter)
	if !st.Behind() {
		_ = s.cfg.Backends.RollupCache(ns).PutCheckpoint(ctx, key, st.Checkpoint, ns.TTL)
		return true, nil
	}
	end := ns.RollupEnd(s.now())
	if !end.After(st.Through) {
		return false, nil
	}
	// The fence closes the window to writes that passed their accept-window
	// check long ago but have not committed yet; without it such a write
	// could land behind the new checkpoint and never be counted.
	if err := s.cfg.Backends.RollupStore(ns).Fence(ctx, ns, counter, end); err != nil {
		return false, err
	}
	p, err := s.fold(ctx, ns, counter, st.Through, end)
	if err != nil {
		return false, err
	}
	stored, err := s.cfg.Backends.RollupStore(ns).AdvanceCheckpoint(ctx, ns, counter, abacus.Checkpoint{Count: p.On(st.Count), Through: end})
	if err != nil {
		return false, err
	}
	_ = s.cfg.Backends.RollupCache(ns).PutCheckpoint(ctx, key, stored, ns.TTL)
	return st.LastWrite.Before(stored.Through), nil
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
