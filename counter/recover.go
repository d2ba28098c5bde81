package counter

import (
	"context"

	"github.com/abacus-dev/abacus/rollup"
)

// Recover signals a rollup for every counter whose writes are newer than its
// checkpoint: after a crash the in-memory signals are gone, and without this
// an EVENTUAL counter nobody reads would stay stale.
func (s *Service) Recover(ctx context.Context) (int, error) {
	n := 0
	for _, rs := range s.cfg.Backends.AllRollupStores() {
		err := rs.BehindCounters(ctx, func(nsID uint64, counter string) error {
			if ns, ok := s.reg.byID(nsID); ok && ns.Type.Durable() {
				s.cfg.Signaler.Touch(rollup.Key{NS: ns, Counter: counter})
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
