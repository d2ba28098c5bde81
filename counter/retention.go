package counter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/abacus-dev/abacus"
)

// Retain applies every durable namespace's retention once [TS-5]. Slices that
// ended more than delete_after ago are deleted, but only after every counter
// with events in them has been rolled up past them, so deleting events never
// changes a count. (close_after needs no work here: the accept window, which
// validation keeps shorter than close_after, already refuses writes to closed
// slices.) A namespace whose retention fails (its store is down, say) is
// logged, reported to Config.RetentionFailed and left for the next pass; the
// others go on. It returns the number of slices deleted and the failures,
// each naming its namespace, joined (nil if none).
func (s *Service) Retain(ctx context.Context) (int, error) {
	total := 0
	var errs []error
	for _, ns := range s.reg.all() {
		if !ns.Type.Durable() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := s.retain(ctx, ns)
		total += n
		if err == nil || ctx.Err() != nil {
			continue
		}
		s.log.Warn("retention failed; will retry", "namespace", ns.Name, "err", err)
		if s.cfg.RetentionFailed != nil {
			s.cfg.RetentionFailed(ns.Name, err)
		}
		errs = append(errs, fmt.Errorf("namespace %q: %w", ns.Name, err))
	}
	if err := ctx.Err(); err != nil {
		return total, err
	}
	return total, errors.Join(errs...)
}

func (s *Service) retain(ctx context.Context, ns *abacus.Namespace) (int, error) {
	cutoff := s.now().Add(-ns.Retention.DeleteAfter)
	// Whole slices ending at or before cutoff go: events before boundary.
	boundary := sliceFloor(cutoff, ns.Partition.SliceWidth)
	rs, es := s.cfg.Backends.RollupStore(ns), s.cfg.Backends.EventStore(ns)
	err := es.Counters(ctx, ns, time.Time{}, boundary, func(counter string) error {
		st, err := rs.RollupState(ctx, ns, counter)
		if err != nil {
			return err
		}
		// delete_after exceeds accept_limit + skew, so one rollup reaches
		// past the cutoff; but a rollup can lose its checkpoint write to a
		// concurrent one, or to a recount's repair (both compare-and-swap),
		// so the state is read again until it is past, a few times at most.
		for try := 0; st.Through.Before(cutoff) && st.Behind(); try++ {
			if try == maxRetainRollups {
				return abacus.Errorf(abacus.Unavailable,
					"counter %q could not be rolled up past the retention cutoff %s: its checkpoint kept moving; retention retries it at its next pass",
					counter, cutoff.UTC().Format(time.RFC3339))
			}
			if _, err := s.roll.RollupCounter(ctx, ns, counter); err != nil {
				return err
			}
			if st, err = rs.RollupState(ctx, ns, counter); err != nil {
				return err
			}
		}
		return s.keepBase(ctx, ns, counter, boundary, st)
	})
	if err != nil {
		return 0, err
	}
	return es.DeleteSlices(ctx, ns, cutoff)
}

// maxRetainRollups bounds the rollups retention tries on one counter in a
// pass before it leaves the namespace for the next pass.
const maxRetainRollups = 3

// keepBase records the count of a counter's events before boundary, which
// retention is about to delete, so that a recount can still start from it.
// st is the counter's state, its checkpoint past the boundary.
//
// The base is the previous base plus the events from it to the boundary,
// which a recount can check while they exist; except for a counter whose
// events retention may have deleted before bases were recorded (see
// unverifiable), whose base is derived from its checkpoint.
func (s *Service) keepBase(ctx context.Context, ns *abacus.Namespace, counter string, boundary time.Time, st abacus.RollupState) error {
	rs := s.cfg.Backends.RollupStore(ns)
	base, err := rs.RetainedBase(ctx, ns, counter)
	if err != nil || !boundary.After(base.Through) {
		return err
	}
	if unverifiable(ns, base, s.now()) && !st.Through.Before(boundary) {
		return s.baseFromCheckpoint(ctx, ns, counter, boundary, st.Checkpoint)
	}
	p, err := s.foldEvents(ctx, ns, counter, base.Through, boundary, nil)
	if err != nil {
		return err
	}
	return rs.SetRetainedBase(ctx, ns, counter, abacus.Checkpoint{Count: p.On(base.Count), Through: boundary})
}

// baseFromCheckpoint records as a counter's base at boundary its
// checkpoint's count less the events from the boundary to the checkpoint's
// time: the count of the events before the boundary according to the
// checkpoint, the only record of them once retention has deleted them.
func (s *Service) baseFromCheckpoint(ctx context.Context, ns *abacus.Namespace, counter string, boundary time.Time, cp abacus.Checkpoint) error {
	after, err := s.foldEvents(ctx, ns, counter, boundary, cp.Through, nil)
	if err != nil {
		return err
	}
	count := abacus.Sum{} // a clear after the boundary makes what was before it irrelevant
	if !after.Cleared {
		count = cp.Count.AddSum(after.Sum.Neg())
	}
	return s.cfg.Backends.RollupStore(ns).SetRetainedBase(ctx, ns, counter, abacus.Checkpoint{Count: count, Through: boundary})
}

// foldEvents folds a counter's events in [from, to), counting them in n if
// it is not nil.
func (s *Service) foldEvents(ctx context.Context, ns *abacus.Namespace, counter string, from, to time.Time, n *int64) (abacus.Partial, error) {
	var p abacus.Partial
	err := s.cfg.Backends.EventStore(ns).Scan(ctx, ns, counter, abacus.Range{From: from, To: to}, func(e abacus.Event) error {
		p = p.Apply(e)
		if n != nil {
			*n++
		}
		return nil
	})
	return p, err
}

// unverifiable reports whether a counter with retained base base may have
// lost events to retention without a record of their count: retention ran
// before abacusd recorded bases, so a namespace created before the
// retention boundary, with no base yet, may have had slices deleted with
// nothing kept but the checkpoint. Retention, or a recount, then derives
// such a counter's first base from its checkpoint (baseFromCheckpoint):
// its events before the boundary are not checked, and a difference there is
// never taken for a mismatch to repair.
func unverifiable(ns *abacus.Namespace, base abacus.Checkpoint, now time.Time) bool {
	return base.Through.IsZero() && !ns.Created.IsZero() && ns.Created.Before(retainedFrom(ns, now))
}

// RunRetention calls Retain every interval until ctx ends, logging failures.
func (s *Service) RunRetention(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Failures are logged per namespace by Retain.
			if n, _ := s.Retain(ctx); n > 0 {
				s.log.Info("retention deleted event slices", "slices", n)
			}
		}
	}
}
