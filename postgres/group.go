package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A group is written by two statements in one transaction [TS-1, ROLL-2]:
//
// groupCountersSQL raises each counter's last write to the group's latest
// event time for it (one row per counter, sorted). ON CONFLICT DO UPDATE
// locks each row, even where the time does not rise, until the transaction
// ends: Fence, which raises the fence in the same row, waits for the groups
// in flight, and a group that comes after a Fence sees its fence.
//
// groupEventsCTEs then inserts the events and finds those the group may not
// write:
//
//   - input: the group's events, one array per column (unnest), each key once,
//     sorted by key.
//   - ins: inserts them. A key already stored with the same payload is left
//     alone (the WHERE is false), so a retry is a no-op. A key stored with
//     another payload is "updated" to itself, which changes nothing but makes
//     RETURNING report it with the stored payload. So ins returns the fresh
//     events and the reused tokens.
//   - refused: tokens reused with another payload (behind is NULL), and fresh
//     events before their counter's fence or stored checkpoint (behind is
//     that limit). The counters rows are locked by this transaction, so this
//     statement's snapshot has their latest fences.
//
// ON CONFLICT waits for a concurrent transaction that inserted the same key
// and decides on its outcome, so two nodes writing one key cannot both win.
// Every group locks its counters rows, then its event keys, each in key
// order, so concurrent groups wait for each other in one direction and
// cannot deadlock.
const groupCountersSQL = `
INSERT INTO {{S}}.counters AS w (ns_id, counter, last_write)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])
ON CONFLICT (ns_id, counter) DO UPDATE SET last_write = excluded.last_write
    WHERE w.last_write IS NULL OR w.last_write < excluded.last_write`

const groupEventsCTEs = `
WITH input AS (
    SELECT ns_id, slice, counter COLLATE "C" AS counter, time_bucket, event_bucket,
           event_time, event_id COLLATE "C" AS event_id, delta, clear
    FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::integer[],
                $6::bigint[], $7::text[], $8::bigint[], $9::boolean[])
         AS u(ns_id, slice, counter, time_bucket, event_bucket, event_time, event_id, delta, clear)
), ins AS (
    INSERT INTO {{S}}.events AS e
        (ns_id, slice, counter, time_bucket, event_bucket, event_time, event_id, delta, clear)
    SELECT * FROM input
    ON CONFLICT (counter, event_time, event_id, ns_id, slice) DO UPDATE SET delta = e.delta
        WHERE e.delta <> excluded.delta OR e.clear <> excluded.clear
    RETURNING e.ns_id, e.counter, e.event_time, e.event_id, e.delta, e.clear
), refused AS (
    SELECT ins.ns_id, ins.counter, ins.event_time, ins.event_id,
           CASE WHEN ins.delta = input.delta AND ins.clear = input.clear
                THEN GREATEST(w.fence, c.through) END AS behind
    FROM ins
    JOIN input USING (ns_id, counter, event_time, event_id)
    LEFT JOIN {{S}}.counters w ON w.ns_id = ins.ns_id AND w.counter = ins.counter
    LEFT JOIN {{S}}.checkpoints c ON c.ns_id = ins.ns_id AND c.counter = ins.counter
    WHERE ins.delta <> input.delta OR ins.clear <> input.clear
       OR ins.event_time < GREATEST(w.fence, c.through)
)
`

// groupFastSQL is the events statement of a group's first attempt. The two
// statements are sent together, as one pipeline ending in one Sync, outside
// an explicit transaction: the server runs them as one implicit transaction
// and commits it at the Sync, so the group takes one round trip and one
// commit. If any event is refused, refuse_events raises SQLSTATE AB409 and
// the transaction rolls back; the group is then written with groupCheckedSQL.
const groupFastSQL = groupEventsCTEs + `SELECT {{S}}.refuse_events(count(*)) FROM refused`

// groupCheckedSQL is the events statement of a group with refusals: it runs
// in an explicit transaction and returns the refused events, so that the
// transaction can be rolled back and the group written again without the
// Appends they belong to.
const groupCheckedSQL = groupEventsCTEs + `SELECT ns_id, counter, event_time, event_id, behind FROM refused`

// refusal is an event of a group that may not be written: a reused token
// (behind is nil) or an event behind its counter's fence or checkpoint.
type refusal struct {
	key    eventKey
	behind *int64
}

// maxGroupAttempts bounds the attempts at a group that fail for a transient
// reason (a broken connection, a deadlock, a partition dropped under us).
const maxGroupAttempts = 3

// owner is an event of a request: its index in the group and in the request.
type owner struct{ req, ev int }

// groupPlan is what one attempt writes: the events of the Appends that are
// still in, each key once.
type groupPlan struct {
	rows   []*pendingEvent
	owners map[eventKey][]owner
	// clashes[i] is AlreadyExists if request i reuses a token of an earlier
	// request of the group with another payload. It is the outcome of request
	// i if the group commits (the earlier one was then written first).
	clashes []error
	parts   []partKey
}

// planGroup plans a group as if its requests, except those already refused,
// were applied one after the other in queue order: a request is in unless one
// of its keys clashes with a request already in.
func planGroup(reqs []*request, refused []error) *groupPlan {
	p := &groupPlan{owners: make(map[eventKey][]owner), clashes: make([]error, len(reqs))}
	for i, r := range reqs {
		if refused[i] != nil {
			continue
		}
		for j := range r.item {
			e := &r.item[j]
			if os, ok := p.owners[e.key()]; ok {
				if first := &reqs[os[0].req].item[os[0].ev]; !first.ev.SamePayload(e.ev) {
					p.clashes[i] = abacus.TokenReused(e.ev)
					break
				}
			}
		}
		if p.clashes[i] != nil {
			continue
		}
		for j := range r.item {
			e := &r.item[j]
			k := e.key()
			if _, ok := p.owners[k]; !ok {
				p.rows = append(p.rows, e)
				p.parts = append(p.parts, partKey{e.ns, e.slice})
			}
			p.owners[k] = append(p.owners[k], owner{i, j})
		}
	}
	slices.SortFunc(p.rows, compareEventKeys)
	return p
}

// args returns the statements' arguments: one last write per counter, the
// latest of its events (the last of its run, as the rows are sorted by key),
// and the events' columns.
func (p *groupPlan) args() (counters, events []any) {
	n := len(p.rows)
	var (
		ns, sl, tb, tm, delta = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		counter, id           = make([]string, n), make([]string, n)
		eb                    = make([]int32, n)
		clear                 = make([]bool, n)
		lwNS, lwTime          []int64
		lwCounter             []string
	)
	for i, e := range p.rows {
		ns[i], sl[i], counter[i], tb[i], eb[i] = e.ns, e.slice, e.ev.Counter, e.timeBucket, e.eventBucket
		tm[i], id[i], delta[i], clear[i] = e.nanos, e.ev.ID, e.ev.Delta, e.ev.Clear
		if i+1 == n || p.rows[i+1].ns != e.ns || p.rows[i+1].ev.Counter != e.ev.Counter {
			lwNS, lwCounter, lwTime = append(lwNS, e.ns), append(lwCounter, e.ev.Counter), append(lwTime, e.nanos)
		}
	}
	return []any{lwNS, lwCounter, lwTime}, []any{ns, sl, counter, tb, eb, tm, id, delta, clear}
}

// commitGroup writes the requests of one group and answers each.
//
// The first attempt is groupFastSQL. If it refuses an event, the group
// switches to groupCheckedSQL, which names the refused events: their Appends
// are refused, with AlreadyExists for a reused token and FailedPrecondition
// for an event behind a rollup (what they contradict is committed, so that
// outcome is final); the transaction is rolled back, and the rest of the
// group is written again, until a transaction commits with no refusal. A
// request that clashes with an earlier one in the group is refused only if
// the group commits; otherwise it shares the group's error.
func (s *Store) commitGroup(reqs []*request) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	refused := make([]error, len(reqs))
	var (
		conn    *pgxpool.Conn
		checked bool
		lastErr error
	)
	defer func() {
		if conn != nil {
			conn.Release()
		}
	}()
	for attempt := 0; attempt < maxGroupAttempts && ctx.Err() == nil; {
		p := planGroup(reqs, refused)
		if len(p.rows) == 0 {
			s.answer(reqs, refused, p, nil, 0)
			return
		}
		if conn != nil && conn.Conn().IsClosed() {
			conn.Release()
			conn = nil
		}
		if conn == nil {
			var err error
			if conn, err = s.pool.Acquire(ctx); err != nil {
				lastErr, attempt = err, attempt+1
				continue
			}
		}
		if err := s.ensurePartitions(ctx, conn, p.parts); err != nil {
			lastErr, attempt = err, attempt+1
			continue
		}
		var refusals []refusal
		var err error
		if checked {
			refusals, err = s.writeChecked(ctx, conn, p)
		} else {
			err = s.writeFast(ctx, conn, p)
		}
		switch {
		case err == nil && len(refusals) == 0:
			s.answer(reqs, refused, p, nil, len(p.rows))
			return
		case err == nil:
			// Final outcomes: the stored events and fences they contradict
			// are committed.
			for _, r := range refusals {
				for _, o := range p.owners[r.key] {
					ev := reqs[o.req].item[o.ev].ev
					if r.behind == nil {
						refused[o.req] = abacus.TokenReused(ev)
					} else {
						refused[o.req] = behindRollup(ev, *r.behind)
					}
				}
			}
		case isSQLState(err, sqlstateRefused):
			checked = true
		case isSQLState(err, sqlstateCheckViolation):
			// No partition for a row: another node dropped one this node
			// remembered. Forget the group's namespaces and create again.
			for _, k := range p.parts {
				s.parts.forget(k.ns, -abacus.MaxEventNanos, abacus.MaxEventNanos)
			}
			lastErr, attempt = err, attempt+1
		case codeOf(err) == abacus.Unavailable:
			// Safe to repeat even if the commit's outcome is unknown: a
			// group that did commit is, written again, a no-op.
			lastErr, attempt = err, attempt+1
		default:
			lastErr, attempt = err, maxGroupAttempts
		}
	}
	if lastErr == nil || ctx.Err() != nil {
		lastErr = timeoutError("append", s.opts.Timeout)
	}
	s.answer(reqs, refused, nil, classify(context.Background(), lastErr, "append"), 0)
}

// writeFast sends the group's two statements in one pipeline: one implicit
// transaction, committed by the server if both succeed.
func (s *Store) writeFast(ctx context.Context, conn *pgxpool.Conn, p *groupPlan) error {
	counters, events := p.args()
	b := &pgx.Batch{}
	b.Queue(s.sql(groupCountersSQL), counters...)
	b.Queue(s.sql(groupFastSQL), events...)
	br := conn.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(new(int64))
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeChecked runs the group's statements in a transaction, and commits it
// if no event was refused; otherwise it rolls back and returns the refusals.
func (s *Store) writeChecked(ctx context.Context, conn *pgxpool.Conn, p *groupPlan) ([]refusal, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	counters, events := p.args()
	if _, err := tx.Exec(ctx, s.sql(groupCountersSQL), counters...); err != nil {
		return nil, err
	}
	rows, _ := tx.Query(ctx, s.sql(groupCheckedSQL), events...)
	refusals, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (refusal, error) {
		var r refusal
		err := row.Scan(&r.key.ns, &r.key.counter, &r.key.nanos, &r.key.id, &r.behind)
		return r, err
	})
	if err != nil || len(refusals) > 0 {
		return refusals, err
	}
	return nil, tx.Commit(ctx)
}

// answer delivers each request's outcome. With a plan, the group committed:
// requests not refused succeed unless they clashed within the group. Without
// one, every request not refused gets failure.
func (s *Store) answer(reqs []*request, refused []error, p *groupPlan, failure error, events int) {
	errs := make([]error, len(reqs))
	ok := 0
	for i := range reqs {
		err := refused[i]
		switch {
		case err != nil:
		case p == nil:
			err = failure
		default:
			err = p.clashes[i]
		}
		if err == nil {
			ok++
		}
		errs[i] = err
	}
	// Counted before anyone is answered: a caller that reads Stats after
	// its Append returned sees the commit that acknowledged it.
	if p != nil && events > 0 {
		s.appends.Add(int64(ok))
		s.commits.Add(1)
		s.events.Add(int64(events))
	}
	for i, r := range reqs {
		r.done <- errs[i]
	}
	if failure != nil {
		s.warnGroupFailed(failure, len(reqs))
	}
}

// warnGroupFailed logs a failed group, at most once a second: while the
// server is down every group fails, and each caller gets the error anyway.
func (s *Store) warnGroupFailed(err error, n int) {
	now := time.Now().UnixNano()
	last := s.lastWarn.Load()
	if now-last < 1e9 || !s.lastWarn.CompareAndSwap(last, now) {
		return
	}
	var ae *abacus.Error
	code := abacus.Internal
	if errors.As(err, &ae) {
		code = ae.Code
	}
	s.log.Warn("group commit failed", "appends", n, "code", code, "err", err)
}
