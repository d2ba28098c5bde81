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

// Compile-time check that Store scans many counters at once.
var _ abacus.MultiScanner = (*Store)(nil)

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
	return s.scanPages(ctx, l, counter, lo, hi, r.Reverse, nil, fn)
}

// scanPages calls fn for the events of counter in [lo, hi], a page at a
// time; after the event last if it is not nil (a page already delivered).
func (s *Store) scanPages(ctx context.Context, l abacus.Layout, counter string, lo, hi int64, reverse bool, last *abacus.Event, fn func(abacus.Event) error) error {
	first, next := scanFirst, scanNext
	if reverse {
		first, next = scanFirstRev, scanNextReverse
	}
	// Most scans (a rollup's window, an idempotency check) return a few
	// events: the page grows as needed instead of starting at pageSize,
	// which would allocate and clear a page's worth of memory per scan.
	var page []abacus.Event
	for {
		q, args := s.sql(first), []any{int64(l.NSID), l.Slice(lo), l.Slice(hi), counter, lo, hi, pageSize}
		if last != nil {
			// Resume at the last event's time: the narrower bound keeps the
			// index scan from reading again what earlier pages returned.
			n := last.Time.UnixNano()
			if reverse {
				args[5], args[2] = n, l.Slice(n)
			} else {
				args[4], args[1] = n, l.Slice(n)
			}
			q, args = s.sql(next), append(args, n, last.Clear, last.ID)
		}
		var err error
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
		e := page[len(page)-1]
		last = &e
	}
}

// scanManySQL reads the first events of many counters' ranges in one
// statement: for each request (counter, time bounds and their slices, in
// array order), the lateral subquery is Scan's first page, limited to $7
// events, with its partitions pruned at run time to the request's slices.
// The outer ORDER BY keeps each request's events in Event.Before order
// whatever plan the server picks; the lateral scans produce that order
// already, so it costs a merge, not a sort of the events.
const scanManySQL = `
SELECT r.i, e.event_time, e.event_id, e.delta, e.clear
FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
     WITH ORDINALITY AS r(counter, lo, hi, slo, shi, i)
CROSS JOIN LATERAL (
    SELECT event_time, event_id, delta, clear FROM {{S}}.events
    WHERE ns_id = $1 AND slice BETWEEN r.slo AND r.shi AND counter = r.counter COLLATE "C"
      AND event_time BETWEEN r.lo AND r.hi
    ORDER BY event_time, clear, event_id LIMIT $7
) e
ORDER BY r.i, e.event_time, e.clear, e.event_id`

// ScanMany statements: at most scanManyChunk requests each, and at most
// scanManyPage events of each request, so that a statement's result, read
// into memory before fn sees it, stays under about 8000 events. A request
// with more events goes on with Scan's pages after its first ones.
const (
	scanManyChunk = 64
	scanManyPage  = 128
)

// ScanMany implements abacus.MultiScanner: one statement reads the first
// events of up to scanManyChunk requests, where Scan would take one round
// trip per counter (a rollup batch scans every counter's window). Like
// Scan's pages, each statement's events are read into memory and the
// connection released before fn sees them.
func (s *Store) ScanMany(ctx context.Context, ns *abacus.Namespace, reqs []abacus.ScanRequest, fn func(i int, e abacus.Event) error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	l, err := abacus.LayoutOf(ns)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		if r.Range.Reverse {
			return abacus.Errorf(abacus.InvalidArgument, "ScanMany scans forwards only (counter %q)", r.Counter)
		}
		if err := checkCounter(r.Counter); err != nil {
			return err
		}
	}
	for start := 0; start < len(reqs); start += scanManyChunk {
		if err := s.scanChunk(ctx, l, reqs[start:min(start+scanManyChunk, len(reqs))], start, fn); err != nil {
			return err
		}
	}
	return nil
}

// manyRow is a row of scanManySQL: an event and the index of its request.
type manyRow struct {
	i int
	e abacus.Event
}

// scanChunk is ScanMany for reqs, which are the requests from base on.
func (s *Store) scanChunk(ctx context.Context, l abacus.Layout, reqs []abacus.ScanRequest, base int, fn func(i int, e abacus.Event) error) error {
	var (
		idx                []int // index in reqs of each element of the arrays
		counters           []string
		los, his, slo, shi []int64
	)
	for k, r := range reqs {
		lo, hi, ok := abacus.NanoBounds(r.Range.From, r.Range.To)
		if !ok {
			continue
		}
		idx, counters = append(idx, k), append(counters, r.Counter)
		los, his, slo, shi = append(los, lo), append(his, hi), append(slo, l.Slice(lo)), append(shi, l.Slice(hi))
	}
	if len(idx) == 0 {
		return nil
	}
	rows, err := readPage(ctx, s, s.sql(scanManySQL), []any{int64(l.NSID), counters, los, his, slo, shi, scanManyPage}, nil,
		func(row pgx.Rows) (manyRow, error) {
			var m manyRow
			var i, n int64
			err := row.Scan(&i, &n, &m.e.ID, &m.e.Delta, &m.e.Clear)
			m.i, m.e.Time = int(i)-1, nanosTime(n)
			return m, err
		})
	if err != nil {
		return classify(ctx, err, "scan")
	}
	got := make([]int, len(idx)) // events read per array element
	for _, m := range rows {
		if m.i < 0 || m.i >= len(idx) {
			return abacus.Errorf(abacus.Internal, "postgres: scan: the server returned request %d of %d", m.i+1, len(idx))
		}
		k := idx[m.i]
		m.e.Counter = reqs[k].Counter
		got[m.i]++
		if err := fn(base+k, m.e); err != nil {
			return err
		}
	}
	// A request whose first page was full may have more: read the rest with
	// Scan's pages, after the last event delivered.
	last := make(map[int]abacus.Event)
	for _, m := range rows {
		if got[m.i] == scanManyPage {
			last[m.i] = m.e
		}
	}
	for j, k := range idx {
		e, more := last[j]
		if !more {
			continue
		}
		err := s.scanPages(ctx, l, reqs[k].Counter, los[j], his[j], false, &e, func(e abacus.Event) error { return fn(base+k, e) })
		if err != nil {
			return err
		}
	}
	return nil
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
