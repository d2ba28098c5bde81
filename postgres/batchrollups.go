package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"

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

// AdvanceCheckpoints implements abacus.BatchRollupStore: the
// compare-and-swaps of AdvanceCheckpoint, one statement per counter, go to
// the server in one round trip (a pipelined batch); each is atomic on its
// own, as one AdvanceCheckpoint is. A failed one whose snapshot may predate
// the row that made it fail is read again, as AdvanceCheckpoint does.
//
// The pipeline is one implicit transaction, which holds each row it updates
// until it commits, so the statements go in counter order: nodes rolling up
// the same counters (every node rolls up the counters it is written to)
// then lock their rows in one order and wait for each other instead of
// deadlocking, which would fail both batches' rollups until their retry.
func (s *Store) AdvanceCheckpoints(ctx context.Context, ns *abacus.Namespace, counters []string, froms, tos []abacus.Checkpoint) ([]abacus.Checkpoint, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if len(froms) != len(counters) || len(tos) != len(counters) {
		return nil, abacus.Errorf(abacus.InvalidArgument, "%d and %d checkpoints for %d counters", len(froms), len(tos), len(counters))
	}
	for _, c := range counters {
		if err := checkNamespaceCounter(ns, c); err != nil {
			return nil, err
		}
	}
	order := lockOrder(counters)
	var b pgx.Batch
	for _, i := range order {
		q, args, err := s.advanceStatement(int64(ns.ID), counters[i], froms[i], tos[i])
		if err != nil {
			return nil, err
		}
		b.Queue(q, args...)
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	out := make([]abacus.Checkpoint, len(counters))
	var again []int
	br := s.pool.SendBatch(octx, &b)
	for _, i := range order {
		var hi, lo, th int64
		switch err := br.QueryRow().Scan(&hi, &lo, &th); {
		case err == nil:
			out[i] = checkpointOf(hi, lo, th)
		case !errors.Is(err, pgx.ErrNoRows):
			_ = br.Close()
			return nil, classify(ctx, err, "advance checkpoints")
		}
		if mayBeStale(froms[i], tos[i], out[i]) {
			again = append(again, i)
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

// lockOrder returns the indexes of counters in the order of their names
// (byte order, the order of the COLLATE "C" keys): the order in which a
// transaction that writes their rows must take them.
func lockOrder(counters []string) []int {
	order := make([]int, len(counters))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(counters[a], counters[b]) })
	return order
}
