package counter

import (
	"context"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/rollup"
)

// Get returns a counter's count (0 for a counter never written):
//   - BEST_EFFORT: the cached count.
//   - EVENTUAL: the last rolled-up count (a point read, usually from the rollup
//     cache); the read also signals a rollup, so a stale count heals itself.
//   - ACCURATE: the last checkpoint plus every event since it, in real time.
func (s *Service) Get(ctx context.Context, r abacus.Ref) (int64, error) {
	if err := r.Check(); err != nil {
		return 0, err
	}
	ns, err := s.namespace(r.Namespace)
	if err != nil {
		return 0, err
	}
	if err := s.admit(use{ns, 0}); err != nil {
		return 0, err
	}
	return s.get(ctx, ns, r.Counter)
}

func (s *Service) get(ctx context.Context, ns *abacus.Namespace, counter string) (int64, error) {
	sum, stale, err := s.read(ctx, ns, counter)
	if err != nil {
		return 0, err
	}
	if ns.Type.Durable() {
		s.signal(ns, counter, stale)
	}
	return count(ns, counter, sum)
}

// read returns a counter's count as Get does, without signalling a rollup,
// and whether the count may miss a write the node's last rollup of the
// counter was signalled for (stale): a count read from the rollup store
// rather than the rollup cache may be older than that rollup.
func (s *Service) read(ctx context.Context, ns *abacus.Namespace, counter string) (sum abacus.Sum, stale bool, err error) {
	switch ns.Type {
	case abacus.BestEffort:
		n, err := s.cfg.Backends.Cache(ns).Get(ctx, abacus.CacheKey(ns, counter))
		return abacus.Sum{}.Add(n), false, err
	case abacus.Accurate:
		sum, err := s.accurate(ctx, ns, counter)
		return sum, false, err
	default:
		cp, cached, err := s.checkpoint(ctx, ns, counter)
		return cp.Count, !cached, err
	}
}

// GetBatch reads many counters; one bad item fails the call, its index in the
// message.
func (s *Service) GetBatch(ctx context.Context, rs []abacus.Ref) ([]int64, error) {
	if len(rs) == 0 {
		return nil, abacus.Errorf(abacus.InvalidArgument, "counters is empty")
	}
	if len(rs) > abacus.MaxBatch {
		return nil, abacus.Errorf(abacus.InvalidArgument, "counters has %d items; the limit is %d", len(rs), abacus.MaxBatch)
	}
	nss := make([]*abacus.Namespace, len(rs))
	for i, r := range rs {
		err := r.Check()
		if err == nil {
			nss[i], err = s.namespace(r.Namespace)
		}
		if err != nil {
			return nil, indexed("counters", i, err)
		}
	}
	if err := s.admit(batchUses(len(rs), func(i int) *abacus.Namespace { return nss[i] }, 0)...); err != nil {
		return nil, err
	}
	out := make([]int64, len(rs))
	for i, r := range rs {
		n, err := s.get(ctx, nss[i], r.Counter)
		if err != nil {
			return nil, indexed("counters", i, err)
		}
		out[i] = n
	}
	return out, nil
}

// checkpoint returns the counter's last checkpoint, from the rollup cache when
// it has it (cached).
func (s *Service) checkpoint(ctx context.Context, ns *abacus.Namespace, counter string) (cp abacus.Checkpoint, cached bool, err error) {
	if cp, ok, err := s.cfg.Backends.RollupCache(ns).GetCheckpoint(ctx, abacus.CacheKey(ns, counter)); err == nil && ok {
		return cp, true, nil
	}
	cp, err = s.storedCheckpoint(ctx, ns, counter)
	return cp, false, err
}

// storedCheckpoint reads a counter's checkpoint from the rollup store and
// caches it.
func (s *Service) storedCheckpoint(ctx context.Context, ns *abacus.Namespace, counter string) (abacus.Checkpoint, error) {
	st, err := s.cfg.Backends.RollupStore(ns).RollupState(ctx, ns, counter)
	if err != nil {
		return abacus.Checkpoint{}, err
	}
	// A failed cache write only costs a later store read.
	_ = s.cfg.Backends.RollupCache(ns).PutCheckpoint(ctx, abacus.CacheKey(ns, counter), st.Checkpoint, ns.TTL)
	return st.Checkpoint, nil
}

// checkpoints is checkpoint for many counters of ns: the cache misses are
// read from the rollup store together when it can (abacus.BatchRollupStore).
func (s *Service) checkpoints(ctx context.Context, ns *abacus.Namespace, counters []string) ([]abacus.Checkpoint, error) {
	cache := s.cfg.Backends.RollupCache(ns)
	out := make([]abacus.Checkpoint, len(counters))
	var miss []int
	var names []string
	for i, c := range counters {
		if cp, ok, err := cache.GetCheckpoint(ctx, abacus.CacheKey(ns, c)); err == nil && ok {
			out[i] = cp
			continue
		}
		miss = append(miss, i)
		names = append(names, c)
	}
	if len(miss) == 0 {
		return out, nil
	}
	bs, batched := s.cfg.Backends.RollupStore(ns).(abacus.BatchRollupStore)
	if !batched || len(miss) == 1 {
		for _, i := range miss {
			cp, err := s.storedCheckpoint(ctx, ns, counters[i])
			if err != nil {
				return nil, err
			}
			out[i] = cp
		}
		return out, nil
	}
	states, err := bs.RollupStates(ctx, ns, names)
	if err != nil {
		return nil, err
	}
	for k, i := range miss {
		out[i] = states[k].Checkpoint
		// A failed cache write only costs a later store read.
		_ = cache.PutCheckpoint(ctx, abacus.CacheKey(ns, counters[i]), states[k].Checkpoint, ns.TTL)
	}
	return out, nil
}

// accurate returns the checkpoint from the rollup store (never a cache: a stale
// base could predate deleted slices) plus every event since it. If a rollup
// moved the checkpoint while the events were read, it reads again, so the
// answer never depends on events that retention may have just deleted.
func (s *Service) accurate(ctx context.Context, ns *abacus.Namespace, counter string) (abacus.Sum, error) {
	for {
		st, err := s.cfg.Backends.RollupStore(ns).RollupState(ctx, ns, counter)
		if err != nil {
			return abacus.Sum{}, err
		}
		if !st.Behind() {
			return st.Count, nil
		}
		// No accepted event is later than the future limit of the accept
		// window, so this bound reads every event after the checkpoint.
		now := s.now()
		p, err := rollup.Fold(ctx, s.cfg.Backends.EventStore(ns), ns, counter, st.Through, now.Add(abacus.FutureLimit+time.Nanosecond))
		if err != nil {
			return abacus.Sum{}, err
		}
		sum := p.On(st.Count)
		// Retention deletes only slices that end before now − delete_after; events
		// after a checkpoint newer than that cannot have been deleted under us.
		if st.Through.After(now.Add(-ns.Retention.DeleteAfter + ns.Partition.SliceWidth)) {
			return sum, nil
		}
		again, err := s.cfg.Backends.RollupStore(ns).RollupState(ctx, ns, counter)
		if err != nil {
			return abacus.Sum{}, err
		}
		if again.Through.Equal(st.Through) {
			return sum, nil
		}
		if err := ctx.Err(); err != nil {
			return abacus.Sum{}, err
		}
	}
}
