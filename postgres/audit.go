package postgres

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/abacus-dev/abacus"
	"github.com/jackc/pgx/v5"
)

// The RollupStore methods that audits and retention use: listing counters,
// repairing a checkpoint, and the retained bases.

// listCountersSQL lists a page of the counters of a namespace with a
// checkpoint or a last write: the first $5 of each table, each an index range
// scan of its primary key (ns_id, counter) from the page's lower bounds ($2
// inclusive, the prefix; $3 exclusive, the last name of the previous page),
// joined and cut to $5. {{UPPER}} bounds the prefix ($4), if it has a bound.
// A counters row with a fence but no last write is no record of a write.
const listCountersSQL = `
SELECT counter, c.count_hi, c.count_lo, c.through, w.last_write
FROM (SELECT counter, count_hi, count_lo, through FROM {{S}}.checkpoints
      WHERE ns_id = $1 AND counter >= $2 AND counter > $3 {{UPPER}}
      ORDER BY counter LIMIT $5) AS c
FULL JOIN (SELECT counter, last_write FROM {{S}}.counters
      WHERE ns_id = $1 AND counter >= $2 AND counter > $3 {{UPPER}} AND last_write IS NOT NULL
      ORDER BY counter LIMIT $5) AS w USING (counter)
ORDER BY counter LIMIT $5`

// ListCounters implements abacus.RollupStore. A prefix is a range of the
// primary key, [prefix, prefixEnd(prefix)), so a page reads at most limit
// rows of each table, wherever it starts.
func (s *Store) ListCounters(ctx context.Context, ns *abacus.Namespace, prefix, after string, limit int) ([]abacus.CounterState, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if ns == nil {
		return nil, abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	if limit <= 0 {
		return nil, abacus.Errorf(abacus.InvalidArgument, "limit %d is not positive", limit)
	}
	if err := checkText("counter prefix", prefix); err != nil {
		return nil, err
	}
	if err := checkText("counter name", after); err != nil {
		return nil, err
	}
	q := listCountersSQL
	args := []any{int64(ns.ID), prefix, after, nil, limit}
	if end, ok := prefixEnd(prefix); ok {
		q = strings.ReplaceAll(q, "{{UPPER}}", "AND counter < $4")
		args[3] = end
	} else {
		q = strings.ReplaceAll(q, "{{UPPER}}", "AND $4::text IS NULL")
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	rows, err := s.pool.Query(octx, s.sql(q), args...)
	if err != nil {
		return nil, classify(ctx, err, "list counters")
	}
	defer rows.Close()
	out := make([]abacus.CounterState, 0, min(limit, pageSize))
	for rows.Next() {
		var st abacus.CounterState
		var hi, lo, through, lastWrite *int64
		if err := rows.Scan(&st.Counter, &hi, &lo, &through, &lastWrite); err != nil {
			return nil, classify(ctx, err, "list counters")
		}
		if through != nil {
			st.Checkpoint = checkpointOf(*hi, *lo, *through)
		}
		if lastWrite != nil {
			st.LastWrite = nanosTime(*lastWrite)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, err, "list counters")
	}
	return out, nil
}

// prefixEnd returns the least valid UTF-8 string greater than every string
// that starts with p (which is valid UTF-8), and false if there is none (p is
// empty or all U+10FFFF). UTF-8's byte order is code point order, so p with
// its last code point incremented will do; U+10FFFF, which has no successor,
// is dropped and the one before it incremented instead. The successor of
// U+D7FF is U+E000: surrogates are not valid UTF-8.
func prefixEnd(p string) (string, bool) {
	for p != "" {
		r, n := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-n]
		if r == utf8.MaxRune {
			continue
		}
		r++
		if r == 0xD800 {
			r = 0xE000
		}
		return p + string(r), true
	}
	return "", false
}

// repairSQL replaces a checkpoint's count if the stored checkpoint is still
// the one the caller read. It is one UPDATE of the row that advanceSQL
// upserts: whichever locks the row first commits first, and an UPDATE that
// waited re-evaluates its condition on the row the advance left (READ
// COMMITTED), so it fails if the checkpoint moved meanwhile; an advance that
// waited fails too, since the checkpoint it started from is no longer
// stored, and its rollup starts again from the repaired one.
const repairSQL = `
UPDATE {{S}}.checkpoints SET count_hi = $6, count_lo = $7
WHERE ns_id = $1 AND counter = $2 AND count_hi = $3 AND count_lo = $4 AND through = $5
RETURNING count_hi, count_lo, through`

// RepairCheckpoint implements abacus.RollupStore.
func (s *Store) RepairCheckpoint(ctx context.Context, ns *abacus.Namespace, counter string, old, fixed abacus.Checkpoint) (abacus.Checkpoint, bool, error) {
	if err := s.begin(ctx); err != nil {
		return abacus.Checkpoint{}, false, err
	}
	if err := checkNamespaceCounter(ns, counter); err != nil {
		return abacus.Checkpoint{}, false, err
	}
	through, err := abacus.EventNanos(fixed.Through, "checkpoint time")
	if err != nil {
		return abacus.Checkpoint{}, false, err
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	if fixed.Through.Equal(old.Through) {
		var hi, lo, th int64
		err := s.pool.QueryRow(octx, s.sql(repairSQL), int64(ns.ID), counter,
			old.Count.Hi, int64(old.Count.Lo), through, fixed.Count.Hi, int64(fixed.Count.Lo)).Scan(&hi, &lo, &th)
		if err == nil {
			return checkpointOf(hi, lo, th), true, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return abacus.Checkpoint{}, false, classify(ctx, err, "repair checkpoint")
		}
	}
	// Not replaced: read what is stored, in a statement of its own, whose
	// snapshot sees the checkpoint that made the UPDATE fail.
	stored, err := s.readCheckpoint(octx, int64(ns.ID), counter)
	return stored, false, classify(ctx, err, "read checkpoint")
}

const retainedBaseSQL = `SELECT count_hi, count_lo, through FROM {{S}}.retained_bases WHERE ns_id = $1 AND counter = $2`

// RetainedBase implements abacus.RollupStore.
func (s *Store) RetainedBase(ctx context.Context, ns *abacus.Namespace, counter string) (abacus.Checkpoint, error) {
	if err := s.begin(ctx); err != nil {
		return abacus.Checkpoint{}, err
	}
	if err := checkNamespaceCounter(ns, counter); err != nil {
		return abacus.Checkpoint{}, err
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	var hi, lo, th int64
	err := s.pool.QueryRow(octx, s.sql(retainedBaseSQL), int64(ns.ID), counter).Scan(&hi, &lo, &th)
	if errors.Is(err, pgx.ErrNoRows) {
		return abacus.Checkpoint{}, nil
	}
	if err != nil {
		return abacus.Checkpoint{}, classify(ctx, err, "read retained base")
	}
	return checkpointOf(hi, lo, th), nil
}

// setRetainedBaseSQL stores a retained base unless one as late is stored: a
// conditional upsert, as advanceSQL is for checkpoints.
const setRetainedBaseSQL = `
INSERT INTO {{S}}.retained_bases AS r (ns_id, counter, count_hi, count_lo, through)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (ns_id, counter) DO UPDATE
    SET count_hi = excluded.count_hi, count_lo = excluded.count_lo, through = excluded.through
    WHERE r.through < excluded.through`

// SetRetainedBase implements abacus.RollupStore. It commits synchronously,
// like every write of this store, so it is durable when it returns. A zero
// base is never newer, and writes nothing.
func (s *Store) SetRetainedBase(ctx context.Context, ns *abacus.Namespace, counter string, base abacus.Checkpoint) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	if err := checkNamespaceCounter(ns, counter); err != nil {
		return err
	}
	if base.Through.IsZero() {
		return nil
	}
	through, err := abacus.EventNanos(base.Through, "retained base time")
	if err != nil {
		return err
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	_, err = s.pool.Exec(octx, s.sql(setRetainedBaseSQL), int64(ns.ID), counter, base.Count.Hi, int64(base.Count.Lo), through)
	return classify(ctx, err, "set retained base")
}
