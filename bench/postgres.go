package bench

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Tables of the PostgreSQL targets. They are created if missing and kept
// between runs (a fresh server per comparison is what bench-peers.sh gives).
const (
	pgCountersTable = "abacus_bench_counters"
	pgEventsTable   = "abacus_bench_events"
	// pgMaxConns caps each PostgreSQL target's pool.
	pgMaxConns = 128
)

// pgTarget drives PostgreSQL through pgxpool, in one of two layouts:
//
//   - pg-update: one row per counter, created by Setup;
//     add: UPDATE abacus_bench_counters SET n = n + $1 WHERE id = $2;
//     read: SELECT n FROM abacus_bench_counters WHERE id = $1.
//   - pg-events: an insert-only events table with an index on the counter;
//     add: INSERT INTO abacus_bench_events (counter, delta) VALUES ($1, $2);
//     read: SELECT coalesce(sum(delta), 0) ... WHERE counter = $1, which
//     gets slower as events pile up: that is the layout's cost.
//
// Every add is its own committed transaction (synchronous_commit as the
// server has it, on by default), as durable as an abacus acknowledgement.
// A batch is one round trip: a pipelined implicit transaction of UPDATEs in
// counter order (the order keeps concurrent batches from deadlocking), one
// INSERT ... SELECT FROM unnest, or one SELECT ... WHERE id = ANY($1).
type pgTarget struct {
	label  string
	url    string
	events bool
	pool   *pgxpool.Pool
	cpu    CPUSource
}

func newPGTarget(label string, events bool, o Options) *pgTarget {
	return &pgTarget{label: label, url: o.Postgres, events: events, cpu: o.procCPU(PIDPostgres)}
}

func (t *pgTarget) ServerCPU() CPUSource { return t.cpu }

func (t *pgTarget) Name() string { return t.label }

func (t *pgTarget) Setup(ctx context.Context, w Workload) error {
	cfg, err := pgxpool.ParseConfig(t.url)
	if err != nil {
		return fmt.Errorf("--postgres: %w", err)
	}
	// A connection per caller (pgxpool's default is 4 on this machine),
	// so callers wait on PostgreSQL rather than on the pool; but at most
	// pgMaxConns, so that both PostgreSQL targets of a comparison, whose
	// pools are open together, stay within a server's max_connections
	// (300 with scripts/servers.sh).
	cfg.MaxConns = int32(min(w.Callers, pgMaxConns))
	cfg.MinConns = cfg.MaxConns
	if t.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return err
	}
	var ddl []string
	if t.events {
		ddl = []string{
			`CREATE TABLE IF NOT EXISTS ` + pgEventsTable + ` (
				id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
				counter bigint NOT NULL,
				delta bigint NOT NULL,
				at timestamptz NOT NULL DEFAULT now())`,
			`CREATE INDEX IF NOT EXISTS ` + pgEventsTable + `_counter ON ` + pgEventsTable + ` (counter)`,
		}
	} else {
		ddl = []string{
			`CREATE TABLE IF NOT EXISTS ` + pgCountersTable + ` (id bigint PRIMARY KEY, n bigint NOT NULL DEFAULT 0)`,
			`INSERT INTO ` + pgCountersTable + ` (id) SELECT generate_series(0, $1::bigint - 1) ON CONFLICT DO NOTHING`,
		}
	}
	for i, q := range ddl {
		var args []any
		if i == 1 && !t.events {
			args = []any{w.Counters}
		}
		if _, err := t.pool.Exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

func (t *pgTarget) Do(ctx context.Context, _ int, op Op) error {
	if len(op.Counters) == 1 {
		id := int64(op.Counters[0])
		var q string
		switch {
		case op.Read && t.events:
			q = `SELECT coalesce(sum(delta), 0) FROM ` + pgEventsTable + ` WHERE counter = $1`
		case op.Read:
			q = `SELECT n FROM ` + pgCountersTable + ` WHERE id = $1`
		case t.events:
			_, err := t.pool.Exec(ctx, `INSERT INTO `+pgEventsTable+` (counter, delta) VALUES ($1, $2)`, id, 1)
			return err
		default:
			_, err := t.pool.Exec(ctx, `UPDATE `+pgCountersTable+` SET n = n + $1 WHERE id = $2`, 1, id)
			return err
		}
		var n int64
		err := t.pool.QueryRow(ctx, q, id).Scan(&n)
		if err == pgx.ErrNoRows {
			return nil
		}
		return err
	}
	ids := make([]int64, len(op.Counters))
	for i, c := range op.Counters {
		ids[i] = int64(c)
	}
	switch {
	case op.Read:
		q := `SELECT id, n FROM ` + pgCountersTable + ` WHERE id = ANY($1)`
		if t.events {
			q = `SELECT counter, sum(delta) FROM ` + pgEventsTable + ` WHERE counter = ANY($1) GROUP BY counter`
		}
		rows, err := t.pool.Query(ctx, q, ids)
		if err != nil {
			return err
		}
		rows.Close()
		return rows.Err()
	case t.events:
		_, err := t.pool.Exec(ctx, `INSERT INTO `+pgEventsTable+` (counter, delta) SELECT unnest($1::bigint[]), 1`, ids)
		return err
	}
	// One UPDATE per distinct counter (adding its multiplicity), in id
	// order, pipelined in one round trip and one implicit transaction.
	slices.Sort(ids)
	b := &pgx.Batch{}
	for i := 0; i < len(ids); {
		j := i
		for j < len(ids) && ids[j] == ids[i] {
			j++
		}
		b.Queue(`UPDATE `+pgCountersTable+` SET n = n + $1 WHERE id = $2`, int64(j-i), ids[i])
		i = j
	}
	return t.pool.SendBatch(ctx, b).Close()
}

func (t *pgTarget) Close() error {
	if t.pool != nil {
		t.pool.Close()
	}
	return nil
}
