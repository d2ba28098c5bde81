package postgres

import (
	"context"
	"errors"

	"github.com/abacus-dev/abacus"
	"github.com/jackc/pgx/v5"
)

// rollupStatesSQL is rollupStateSQL for many counters: one row per element
// of the array, in its order (WITH ORDINALITY), duplicates included.
const rollupStatesSQL = `
SELECT u.i, c.count_hi, c.count_lo, c.through, w.last_write
FROM unnest($2::text[]) WITH ORDINALITY AS u(counter, i)
LEFT JOIN {{S}}.checkpoints c ON c.ns_id = $1 AND c.counter = u.counter
LEFT JOIN {{S}}.counters w ON w.ns_id = $1 AND w.counter = u.counter`

// RollupStates implements abacus.BatchRollupStore: one query for every
// counter, where RollupState would make one round trip each.
func (s *Store) RollupStates(ctx context.Context, ns *abacus.Namespace, counters []string) ([]abacus.RollupState, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	for _, c := range counters {
		if err := checkNamespaceCounter(ns, c); err != nil {
			return nil, err
		}
	}
	out := make([]abacus.RollupState, len(counters))
	if len(counters) == 0 {
		return out, nil
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	rows, err := s.pool.Query(octx, s.sql(rollupStatesSQL), int64(ns.ID), counters)
	if err != nil {
		return nil, classify(ctx, err, "read rollup states")
	}
	defer rows.Close()
	for rows.Next() {
		var i int64
		var hi, lo, through, lastWrite *int64
		if err := rows.Scan(&i, &hi, &lo, &through, &lastWrite); err != nil {
			return nil, classify(ctx, err, "read rollup states")
		}
		st := &out[i-1]
		if through != nil {
			st.Checkpoint = checkpointOf(*hi, *lo, *through)
		}
		if lastWrite != nil {
			st.LastWrite = nanosTime(*lastWrite)
		}
	}
	return out, classify(ctx, rows.Err(), "read rollup states")
}

// AdvanceCheckpoints implements abacus.BatchRollupStore: the conditional
// upserts of AdvanceCheckpoint, one per counter, go to the server in one
// round trip (a pipelined batch); each is atomic on its own, as one
// AdvanceCheckpoint is. A checkpoint that a concurrent rollup moved past the
// statement's snapshot is read again, as AdvanceCheckpoint does.
func (s *Store) AdvanceCheckpoints(ctx context.Context, ns *abacus.Namespace, counters []string, cps []abacus.Checkpoint) ([]abacus.Checkpoint, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if len(cps) != len(counters) {
		return nil, abacus.Errorf(abacus.InvalidArgument, "%d checkpoints for %d counters", len(cps), len(counters))
	}
	throughs := make([]int64, len(counters))
	for i, c := range counters {
		if err := checkNamespaceCounter(ns, c); err != nil {
			return nil, err
		}
		if cps[i].Through.IsZero() {
			continue
		}
		n, err := abacus.EventNanos(cps[i].Through, "checkpoint time")
		if err != nil {
			return nil, err
		}
		throughs[i] = n
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	var b pgx.Batch
	for i, c := range counters {
		if cps[i].Through.IsZero() {
			b.Queue(s.sql(checkpointSQL), int64(ns.ID), c) // never newer: only read
		} else {
			b.Queue(s.sql(advanceSQL), int64(ns.ID), c, cps[i].Count.Hi, int64(cps[i].Count.Lo), throughs[i])
		}
	}
	out := make([]abacus.Checkpoint, len(counters))
	var again []int
	br := s.pool.SendBatch(octx, &b)
	for i := range counters {
		var hi, lo, th int64
		err := br.QueryRow().Scan(&hi, &lo, &th)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if !cps[i].Through.IsZero() {
				again = append(again, i)
			}
		case err != nil:
			_ = br.Close()
			return nil, classify(ctx, err, "advance checkpoints")
		case !cps[i].Through.IsZero() && th < throughs[i]:
			again = append(again, i)
		default:
			out[i] = checkpointOf(hi, lo, th)
		}
	}
	if err := br.Close(); err != nil {
		return nil, classify(ctx, err, "advance checkpoints")
	}
	for _, i := range again {
		cp, err := s.readCheckpoint(octx, int64(ns.ID), counters[i])
		if err != nil {
			return nil, classify(ctx, err, "read checkpoint")
		}
		out[i] = cp
	}
	return out, nil
}
