package postgres

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/jackc/pgx/v5"
)

// rollupStateSQL reads a counter's checkpoint and last write in one round
// trip: a one-row relation left-joined to both tables, so either may be
// missing (NULL).
const rollupStateSQL = `
SELECT c.count_hi, c.count_lo, c.through, w.last_write
FROM (SELECT) AS one
LEFT JOIN {{S}}.checkpoints c ON c.ns_id = $1 AND c.counter = $2
LEFT JOIN {{S}}.counters w ON w.ns_id = $1 AND w.counter = $2`

// RollupState implements abacus.RollupStore.
func (s *Store) RollupState(ctx context.Context, ns *abacus.Namespace, counter string) (abacus.RollupState, error) {
	var st abacus.RollupState
	if err := s.begin(ctx); err != nil {
		return st, err
	}
	if err := checkNamespaceCounter(ns, counter); err != nil {
		return st, err
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	var hi, lo, through, lastWrite *int64
	err := s.pool.QueryRow(octx, s.sql(rollupStateSQL), int64(ns.ID), counter).Scan(&hi, &lo, &through, &lastWrite)
	if err != nil {
		return st, classify(ctx, err, "read rollup state")
	}
	if through != nil {
		st.Checkpoint = checkpointOf(*hi, *lo, *through)
	}
	if lastWrite != nil {
		st.LastWrite = nanosTime(*lastWrite)
	}
	return st, nil
}

// checkpointOf decodes a stored checkpoint: the 128-bit count is two bigints,
// the low half holding the bits of a uint64.
func checkpointOf(hi, lo, through int64) abacus.Checkpoint {
	return abacus.Checkpoint{Count: abacus.Sum{Hi: hi, Lo: uint64(lo)}, Through: nanosTime(through)}
}

// Fence implements abacus.RollupStore. The fence lives in the counter's row
// of the counters table, next to its last write, so it holds for every node:
// a group transaction raises the last write of each of its counters first
// thing and reads the fence from the same row, locked until it commits. A
// group in flight when Fence runs has locked the row, and Fence waits for it
// to commit; a group after Fence reads the raised fence and refuses the fresh
// events before it (FailedPrecondition). A fence never moves back.
//
// Fences queued together are raised by one statement and one commit (see
// fencer and fencesSQL): Fence returns once the transaction that raised its
// fence has committed.
func (s *Store) Fence(ctx context.Context, ns *abacus.Namespace, counter string, end time.Time) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	if err := checkNamespaceCounter(ns, counter); err != nil {
		return err
	}
	n, err := abacus.EventNanos(end, "fence time")
	if err != nil {
		return err
	}
	return s.fencer.submit(ctx, fence{fenceKey{int64(ns.ID), counter}, n})
}

// advanceSQL replaces a checkpoint if it is still the one the caller
// started from ($6, $7, $8: the count's two halves and the time), and
// createSQL stores the first checkpoint of a counter that has none; both
// return the checkpoint stored afterwards: the new one from RETURNING, or
// else the stored one. Each is a single statement on the row's primary key,
// so of two nodes rolling up one counter from the same checkpoint only the
// first writes, and a RepairCheckpoint (an UPDATE of the same row) and an
// advance are ordered by the row lock: the one that waited re-evaluates its
// condition on the row the other left (READ COMMITTED), and fails. The
// stored checkpoint is read with the statement's snapshot, which may predate
// the row that made the statement fail (the UPDATE and ON CONFLICT see the
// latest row, a plain read does not): AdvanceCheckpoint reads again if what
// it got is still the checkpoint it started from.
const advanceSQL = `
WITH up AS (
    UPDATE {{S}}.checkpoints SET count_hi = $3, count_lo = $4, through = $5
    WHERE ns_id = $1 AND counter = $2 AND count_hi = $6 AND count_lo = $7 AND through = $8
    RETURNING count_hi, count_lo, through
)
SELECT count_hi, count_lo, through FROM up
UNION ALL
SELECT count_hi, count_lo, through FROM {{S}}.checkpoints
WHERE ns_id = $1 AND counter = $2 AND NOT EXISTS (SELECT FROM up)`

const createSQL = `
WITH up AS (
    INSERT INTO {{S}}.checkpoints (ns_id, counter, count_hi, count_lo, through)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (ns_id, counter) DO NOTHING
    RETURNING count_hi, count_lo, through
)
SELECT count_hi, count_lo, through FROM up
UNION ALL
SELECT count_hi, count_lo, through FROM {{S}}.checkpoints
WHERE ns_id = $1 AND counter = $2 AND NOT EXISTS (SELECT FROM up)`

const checkpointSQL = `SELECT count_hi, count_lo, through FROM {{S}}.checkpoints WHERE ns_id = $1 AND counter = $2`

// advanceStatement returns the statement that advances counter's checkpoint
// from from to to, and its arguments; the read of the stored checkpoint if
// to is not after from, or from is no checkpoint a store can hold (so the
// compare-and-swap cannot succeed). The count's 128 bits are two bigints,
// the low half holding the bits of a uint64, as checkpointOf decodes them.
func (s *Store) advanceStatement(ns int64, counter string, from, to abacus.Checkpoint) (string, []any, error) {
	if !to.Newer(from) {
		return s.sql(checkpointSQL), []any{ns, counter}, nil
	}
	through, err := abacus.EventNanos(to.Through, "checkpoint time")
	if err != nil {
		return "", nil, err
	}
	if from.Through.IsZero() {
		if from.Count != (abacus.Sum{}) {
			return s.sql(checkpointSQL), []any{ns, counter}, nil
		}
		return s.sql(createSQL), []any{ns, counter, to.Count.Hi, int64(to.Count.Lo), through}, nil
	}
	fromThrough, err := abacus.EventNanos(from.Through, "checkpoint time")
	if err != nil {
		return s.sql(checkpointSQL), []any{ns, counter}, nil
	}
	return s.sql(advanceSQL), []any{ns, counter, to.Count.Hi, int64(to.Count.Lo), through,
		from.Count.Hi, int64(from.Count.Lo), fromThrough}, nil
}

// mayBeStale reports whether got, what an advance from from to to returned,
// may be an older snapshot than the row that made it fail: the advance did
// not store to, yet got is from (see advanceSQL).
func mayBeStale(from, to, got abacus.Checkpoint) bool {
	return to.Newer(from) && !got.Equal(to) && got.Equal(from)
}

// AdvanceCheckpoint implements abacus.RollupStore. Checkpoints are committed
// synchronously, like every write of this store, so DeleteSlices need not
// flush them before dropping events.
func (s *Store) AdvanceCheckpoint(ctx context.Context, ns *abacus.Namespace, counter string, from, to abacus.Checkpoint) (abacus.Checkpoint, error) {
	if err := s.begin(ctx); err != nil {
		return abacus.Checkpoint{}, err
	}
	if err := checkNamespaceCounter(ns, counter); err != nil {
		return abacus.Checkpoint{}, err
	}
	q, args, err := s.advanceStatement(int64(ns.ID), counter, from, to)
	if err != nil {
		return abacus.Checkpoint{}, err
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	var got abacus.Checkpoint
	var hi, lo, th int64
	switch err := s.pool.QueryRow(octx, q, args...).Scan(&hi, &lo, &th); {
	case err == nil:
		got = checkpointOf(hi, lo, th)
	case !errors.Is(err, pgx.ErrNoRows):
		return abacus.Checkpoint{}, classify(ctx, err, "advance checkpoint")
	}
	if !mayBeStale(from, to, got) {
		return got, nil
	}
	// A concurrent advance or repair committed after this statement's
	// snapshot was taken: read what it stored.
	stored, err := s.readCheckpoint(octx, int64(ns.ID), counter)
	return stored, classify(ctx, err, "read checkpoint")
}

// readCheckpoint returns the stored checkpoint, the zero one if none.
func (s *Store) readCheckpoint(ctx context.Context, ns int64, counter string) (abacus.Checkpoint, error) {
	var hi, lo, th int64
	err := s.pool.QueryRow(ctx, s.sql(checkpointSQL), ns, counter).Scan(&hi, &lo, &th)
	if errors.Is(err, pgx.ErrNoRows) {
		return abacus.Checkpoint{}, nil
	}
	if err != nil {
		return abacus.Checkpoint{}, err
	}
	return checkpointOf(hi, lo, th), nil
}

// behindSQL lists the counters written whose last write is at or after their
// checkpoint, or that have none, a page at a time in key order (a merge of
// the two primary keys).
const behindSQL = `
SELECT w.ns_id, w.counter FROM {{S}}.counters w
LEFT JOIN {{S}}.checkpoints c ON c.ns_id = w.ns_id AND c.counter = w.counter
WHERE (w.ns_id, w.counter) > ($1, $2) AND w.last_write IS NOT NULL
  AND (c.through IS NULL OR w.last_write >= c.through)
ORDER BY w.ns_id, w.counter LIMIT $3`

// BehindCounters implements abacus.RollupStore.
func (s *Store) BehindCounters(ctx context.Context, fn func(nsID uint64, counter string) error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	type behind struct {
		ns      int64
		counter string
	}
	page := make([]behind, 0, pageSize)
	// Before every key: counter names are never empty.
	after := behind{ns: math.MinInt64}
	for {
		var err error
		page, err = readPage(ctx, s, s.sql(behindSQL), []any{after.ns, after.counter, pageSize}, page[:0],
			func(row pgx.Rows) (behind, error) {
				var b behind
				err := row.Scan(&b.ns, &b.counter)
				return b, err
			})
		if err != nil {
			return classify(ctx, err, "list counters behind")
		}
		for _, b := range page {
			if err := fn(uint64(b.ns), b.counter); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		after = page[len(page)-1]
	}
}
