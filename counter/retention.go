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
	err := s.cfg.Backends.EventStore(ns).Counters(ctx, ns, time.Time{}, cutoff, func(counter string) error {
		st, err := s.cfg.Backends.RollupStore(ns).RollupState(ctx, ns, counter)
		if err != nil {
			return err
		}
		if !st.Through.Before(cutoff) || !st.Behind() {
			return nil
		}
		// delete_after exceeds accept_limit + skew, so one rollup reaches past
		// the cutoff.
		_, err = s.roll.RollupCounter(ctx, ns, counter)
		return err
	})
	if err != nil {
		return 0, err
	}
	return s.cfg.Backends.EventStore(ns).DeleteSlices(ctx, ns, cutoff)
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
