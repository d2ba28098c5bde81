package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// partKey names one slice partition: a namespace ID and a slice number.
type partKey struct{ ns, slice int64 }

func comparePartKeys(a, b partKey) int {
	if a.ns != b.ns {
		return cmpInt(a.ns, b.ns)
	}
	return cmpInt(a.slice, b.slice)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// partitionCache remembers the slice partitions known to exist, so that an
// Append checks the catalog only the first time this node writes to a slice.
// Another node may drop a partition this one remembers (retention, or a
// dropped namespace); the insert then fails with "no partition of relation
// found for row", and the group forgets the namespace and tries again.
type partitionCache struct {
	mu    sync.Mutex
	known map[partKey]struct{}
}

func (c *partitionCache) init() { c.known = make(map[partKey]struct{}) }

// missing returns the keys not known to exist, sorted and without repeats.
func (c *partitionCache) missing(keys []partKey) []partKey {
	var out []partKey
	c.mu.Lock()
	for _, k := range keys {
		if _, ok := c.known[k]; !ok {
			out = append(out, k)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, comparePartKeys)
	return slices.Compact(out)
}

func (c *partitionCache) add(keys []partKey) {
	c.mu.Lock()
	for _, k := range keys {
		c.known[k] = struct{}{}
	}
	c.mu.Unlock()
}

// forget drops every key of namespace ns with a slice in [from, to).
func (c *partitionCache) forget(ns, from, to int64) {
	c.mu.Lock()
	for k := range c.known {
		if k.ns == ns && k.slice >= from && k.slice < to {
			delete(c.known, k)
		}
	}
	c.mu.Unlock()
}

// Partition tables are named after the namespace ID and the slice number;
// the slice may be negative (times before 1970), which the quoting allows.
func (s *Store) nsTable(ns int64) string {
	return pgx.Identifier{s.schema, "events_n" + strconv.FormatInt(ns, 10)}.Sanitize()
}

func (s *Store) sliceTable(k partKey) string {
	return pgx.Identifier{s.schema, fmt.Sprintf("events_n%d_s%d", k.ns, k.slice)}.Sanitize()
}

// ddlPrologue starts a statement that changes partitions: it bounds lock
// waits by the Timeout (a DDL lock waiting behind a long scan would block
// every later writer queued behind it) and serialises partition changes of
// this schema across nodes with a transaction-scoped advisory lock. In a DO
// block (plpgsql) a query whose result is discarded is a PERFORM.
func (s *Store) ddlPrologue(plpgsql bool) string {
	sel := "SELECT"
	if plpgsql {
		sel = "PERFORM"
	}
	return fmt.Sprintf("SET LOCAL lock_timeout = '%dms';\n%s pg_advisory_xact_lock(%d);\n",
		max(1, s.opts.Timeout.Milliseconds()), sel, s.lockKey("partitions"))
}

// ensurePartitions creates the slice partitions among keys that this node
// does not know to exist, in one statement (a DO block, so one round trip and
// one transaction). Each is created as a plain table and then attached:
// ATTACH PARTITION takes only a SHARE UPDATE EXCLUSIVE lock on the parent,
// which neither waits for nor blocks the inserts and scans running on it, as
// CREATE TABLE ... PARTITION OF (ACCESS EXCLUSIVE) would. Existence is
// checked under the advisory lock, so nodes racing to create the same
// partition create it once.
func (s *Store) ensurePartitions(ctx context.Context, conn *pgxpool.Conn, keys []partKey) error {
	missing := s.parts.missing(keys)
	if len(missing) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("DO $ddl$ BEGIN\n")
	b.WriteString(s.ddlPrologue(true))
	for i, k := range missing {
		if i == 0 || missing[i-1].ns != k.ns {
			nt := s.nsTable(k.ns)
			fmt.Fprintf(&b, `IF to_regclass('%[1]s') IS NULL THEN
    CREATE TABLE %[1]s (LIKE %[2]s.events) PARTITION BY RANGE (slice);
    ALTER TABLE %[2]s.events ATTACH PARTITION %[1]s FOR VALUES IN (%[3]d);
END IF;
`, nt, s.qschema, k.ns)
		}
		fmt.Fprintf(&b, `IF to_regclass('%[1]s') IS NULL THEN
    CREATE TABLE %[1]s (LIKE %[2]s.events);
    ALTER TABLE %[3]s ATTACH PARTITION %[1]s FOR VALUES FROM (%[4]d) TO (%[5]d);
    INSERT INTO %[2]s.slices (ns_id, slice) VALUES (%[6]d, %[4]d) ON CONFLICT DO NOTHING;
END IF;
`, s.sliceTable(k), s.qschema, s.nsTable(k.ns), k.slice, k.slice+1, k.ns)
	}
	b.WriteString("END $ddl$")
	if _, err := conn.Exec(ctx, b.String()); err != nil {
		return err
	}
	s.parts.add(missing)
	return nil
}

// DeleteSlices implements abacus.EventStore by dropping the namespace's
// slice partitions that end at or before t; it returns how many of them held
// events (a partition can exist empty, if the transaction that created it
// wrote nothing). Slice x covers [x·SliceWidth, (x+1)·SliceWidth), so they
// are the slices below floor(t / SliceWidth).
//
// Checkpoints need no flush first: unlike the embedded store's, every
// checkpoint write is a synchronous commit.
//
// DROP TABLE of a partition takes an ACCESS EXCLUSIVE lock on its parent, the
// namespace's table, so the namespace's writes pause for the statement (they
// are not refused); the lock wait is bounded by the Timeout, after which
// DeleteSlices returns Unavailable and retention tries again later.
func (s *Store) DeleteSlices(ctx context.Context, ns *abacus.Namespace, t time.Time) (int, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	l, err := abacus.LayoutOf(ns)
	if err != nil {
		return 0, err
	}
	if t.IsZero() || !t.After(abacus.MinEventTime) {
		return 0, nil
	}
	n := abacus.MaxEventNanos
	if t.Before(abacus.MaxEventTime) {
		n = t.UnixNano()
	}
	end := l.Slice(n) // exclusive
	octx, cancel := s.opContext(ctx)
	defer cancel()
	count := 0
	err = pgx.BeginFunc(octx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(octx, s.ddlPrologue(false)); err != nil {
			return err
		}
		rows, _ := tx.Query(octx, s.sql(`SELECT slice FROM {{S}}.slices WHERE ns_id = $1 AND slice < $2 ORDER BY slice`), int64(l.NSID), end)
		sl, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(sl) == 0 {
			return err
		}
		// The namespace's table first, then its partitions: the order in
		// which inserts lock them, so the two cannot deadlock.
		if _, err := tx.Exec(octx, "LOCK TABLE "+s.nsTable(int64(l.NSID))+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return err
		}
		tables := make([]string, len(sl))
		exists := make([]string, len(sl))
		for i, x := range sl {
			tables[i] = s.sliceTable(partKey{int64(l.NSID), x})
			exists[i] = "(EXISTS (SELECT FROM " + tables[i] + "))::int"
		}
		if err := tx.QueryRow(octx, "SELECT "+strings.Join(exists, " + ")).Scan(&count); err != nil {
			return err
		}
		if _, err := tx.Exec(octx, "DROP TABLE IF EXISTS "+strings.Join(tables, ", ")); err != nil {
			return err
		}
		_, err = tx.Exec(octx, s.sql(`DELETE FROM {{S}}.slices WHERE ns_id = $1 AND slice < $2`), int64(l.NSID), end)
		return err
	})
	if err != nil {
		return 0, classify(ctx, err, "delete slices")
	}
	s.parts.forget(int64(l.NSID), -abacus.MaxEventNanos, end)
	if count > 0 {
		s.log.Info("dropped event slices", "namespace", ns.Name, "ns_id", int64(l.NSID), "before", t, "with_events", count)
	}
	return count, nil
}

// DropNamespace implements abacus.EventStore: it drops the namespace's
// partitions and deletes its counters' last writes and fences, checkpoints,
// retained bases and slice registry in one transaction (see dropNamespaceData).
// DeleteNamespace does the same with the namespace's record; the service
// still calls DropNamespace afterwards, which removes what writes still in
// flight added in between.
func (s *Store) DropNamespace(ctx context.Context, ns *abacus.Namespace) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	if ns == nil {
		return abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	id := int64(ns.ID)
	octx, cancel := s.opContext(ctx)
	defer cancel()
	if err := pgx.BeginFunc(octx, s.pool, func(tx pgx.Tx) error { return s.dropNamespaceData(octx, tx, id) }); err != nil {
		return classify(ctx, err, "drop namespace")
	}
	s.parts.forget(id, -abacus.MaxEventNanos, abacus.MaxEventNanos)
	return nil
}

// dropNamespaceData drops, in tx, a namespace's event partitions, slices,
// last writes, checkpoints and retained bases. Locks are taken in the order
// an append takes them, so that the two cannot deadlock: an append upserts
// its counters rows and then inserts into events, so the rows are deleted
// first and the events table locked after. Dropping a partition locks the events table itself
// (ACCESS EXCLUSIVE): every namespace's writes pause for the statement.
func (s *Store) dropNamespaceData(ctx context.Context, tx pgx.Tx, id int64) error {
	if _, err := tx.Exec(ctx, s.ddlPrologue(false)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, s.sql(`
WITH slices AS (DELETE FROM {{S}}.slices WHERE ns_id = $1),
     writes AS (DELETE FROM {{S}}.counters WHERE ns_id = $1),
     bases AS (DELETE FROM {{S}}.retained_bases WHERE ns_id = $1)
DELETE FROM {{S}}.checkpoints WHERE ns_id = $1`), id); err != nil {
		return err
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.nsTable(id)).Scan(&exists); err != nil {
		return err
	}
	if exists {
		if _, err := tx.Exec(ctx, s.sql("LOCK TABLE ONLY {{S}}.events IN ACCESS EXCLUSIVE MODE")); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DROP TABLE "+s.nsTable(id)); err != nil {
			return err
		}
	}
	return nil
}
