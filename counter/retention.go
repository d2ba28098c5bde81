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
		if st.Through.Before(cutoff) && st.Behind() {
			// delete_after exceeds accept_limit + skew, so one rollup
			// reaches past the cutoff.
			if _, err := s.roll.RollupCounter(ctx, ns, counter); err != nil {
				return err
			}
		}
		return s.keepBase(ctx, ns, counter, boundary)
	})
	if err != nil {
		return 0, err
	}
	return es.DeleteSlices(ctx, ns, cutoff)
}

// keepBase records the count of a counter's events before boundary, which
// retention is about to delete, so that a recount can still start from it.
func (s *Service) keepBase(ctx context.Context, ns *abacus.Namespace, counter string, boundary time.Time) error {
	rs := s.cfg.Backends.RollupStore(ns)
	base, err := rs.RetainedBase(ctx, ns, counter)
	if err != nil || !boundary.After(base.Through) {
		return err
	}
	var p abacus.Partial
	err = s.cfg.Backends.EventStore(ns).Scan(ctx, ns, counter, abacus.Range{From: base.Through, To: boundary}, func(e abacus.Event) error {
		p = p.Apply(e)
		return nil
	})
	if err != nil {
		return err
	}
	return rs.SetRetainedBase(ctx, ns, counter, abacus.Checkpoint{Count: p.On(base.Count), Through: boundary})
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
