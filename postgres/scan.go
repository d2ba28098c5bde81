package postgres

import (
	"context"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/jackc/pgx/v5"
)

// pageSize is how many rows a streaming read fetches per statement. Each page
// is read into memory and the connection released before the callback sees
// it, so memory is bounded by a page whatever the range, a slow callback holds
// no connection or snapshot, and a callback may call the store again.
const pageSize = 1000

// pageTimeout bounds one page of a streaming read: pages are small, so a
// server that does not answer fails the read instead of hanging it.
func (s *Store) pageTimeout() time.Duration { return 5 * s.opts.Timeout }

// Scan statements. The slice bounds prune the namespace's partitions to those
// that can hold the range; within each, the primary key's (counter,
// event_time) prefix finds the counter's events in the range, and the few
// that share a time are put in (clear, event_id) order: Event.Before order.
// A later page resumes after the last event seen (keyset pagination), its
// time bound narrowed to that event's time, so pages cost the same wherever
// they are in the range.
const (
	scanWhere = `SELECT event_time, event_id, delta, clear FROM {{S}}.events
WHERE ns_id = $1 AND slice BETWEEN $2 AND $3 AND counter = $4 AND event_time BETWEEN $5 AND $6`
	scanFirst       = scanWhere + ` ORDER BY event_time, clear, event_id LIMIT $7`
	scanNext        = scanWhere + ` AND (event_time, clear, event_id) > ($8, $9, $10) ORDER BY event_time, clear, event_id LIMIT $7`
	scanFirstRev    = scanWhere + ` ORDER BY event_time DESC, clear DESC, event_id DESC LIMIT $7`
	scanNextReverse = scanWhere + ` AND (event_time, clear, event_id) < ($8, $9, $10) ORDER BY event_time DESC, clear DESC, event_id DESC LIMIT $7`
)

// Scan implements abacus.EventStore. Pages are separate statements, so a
// scan sees each page as committed when that page is read: like the embedded
// store's, it may include events appended while it runs.
func (s *Store) Scan(ctx context.Context, ns *abacus.Namespace, counter string, r abacus.Range, fn func(abacus.Event) error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	l, err := abacus.LayoutOf(ns)
	if err != nil {
		return err
	}
	if err := checkCounter(counter); err != nil {
		return err
	}
	lo, hi, ok := abacus.NanoBounds(r.From, r.To)
	if !ok {
		return nil
	}
	first, next := scanFirst, scanNext
	if r.Reverse {
		first, next = scanFirstRev, scanNextReverse
	}
	page := make([]abacus.Event, 0, pageSize)
	var last abacus.Event
	for resume := false; ; resume = true {
		q, args := s.sql(first), []any{int64(l.NSID), l.Slice(lo), l.Slice(hi), counter, lo, hi, pageSize}
		if resume {
			// Resume at the last event's time: the narrower bound keeps the
			// index scan from reading again what earlier pages returned.
			n := last.Time.UnixNano()
			if r.Reverse {
				args[5], args[2] = n, l.Slice(n)
			} else {
				args[4], args[1] = n, l.Slice(n)
			}
			q, args = s.sql(next), append(args, n, last.Clear, last.ID)
		}
		page, err = readPage(ctx, s, q, args, page[:0], func(row pgx.Rows) (abacus.Event, error) {
			e := abacus.Event{Counter: counter}
			var n int64
			err := row.Scan(&n, &e.ID, &e.Delta, &e.Clear)
			e.Time = nanosTime(n)
			return e, err
		})
		if err != nil {
			return classify(ctx, err, "scan")
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		last = page[len(page)-1]
	}
}

// readPage runs one page's query and appends its rows to buf.
func readPage[T any](ctx context.Context, s *Store, q string, args []any, buf []T, scan func(pgx.Rows) (T, error)) ([]T, error) {
	pctx, cancel := context.WithTimeout(ctx, s.pageTimeout())
	defer cancel()
	rows, err := s.pool.Query(pctx, q, args...)
	if err != nil {
		return buf, err
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return buf, err
		}
		buf = append(buf, v)
	}
	return buf, rows.Err()
}

// Counters statements: the distinct counters of the slices in a range, in
// name order, a page at a time after the last name seen ("" before the
// first: counter names are never empty). The primary key leads with the
// counter, so this is an index scan of each slice, merged.
const countersSQL = `SELECT DISTINCT counter FROM {{S}}.events
WHERE ns_id = $1 AND slice BETWEEN $2 AND $3 AND counter > $4
ORDER BY counter LIMIT $5`

// Counters implements abacus.EventStore.
func (s *Store) Counters(ctx context.Context, ns *abacus.Namespace, from, to time.Time, fn func(counter string) error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	l, err := abacus.LayoutOf(ns)
	if err != nil {
		return err
	}
	lo, hi, ok := abacus.NanoBounds(from, to)
	if !ok {
		return nil
	}
	page := make([]string, 0, pageSize)
	after := ""
	for {
		page, err = readPage(ctx, s, s.sql(countersSQL), []any{int64(l.NSID), l.Slice(lo), l.Slice(hi), after, pageSize}, page[:0],
			func(row pgx.Rows) (string, error) {
				var c string
				err := row.Scan(&c)
				return c, err
			})
		if err != nil {
			return classify(ctx, err, "list counters")
		}
		for _, c := range page {
			if err := fn(c); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		after = page[len(page)-1]
	}
}
