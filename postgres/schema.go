package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/abacus-dev/abacus"
	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5"
)

// migrations are the schema's versions, in order: migrations[i] takes the
// schema from version i to version i+1. A released migration never changes;
// a new version appends one. {{S}} stands for the quoted schema name.
//
// The meta table, which records the version, is created before them (see
// migrate), so that every version can be read the same way.
var migrations = []string{
	// Version 1.
	`
CREATE TABLE {{S}}.namespaces (
    name    text COLLATE "C" PRIMARY KEY,
    id      bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    config  jsonb NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL
);

CREATE TABLE {{S}}.events (
    ns_id        bigint  NOT NULL,
    slice        bigint  NOT NULL,
    counter      text    COLLATE "C" NOT NULL,
    time_bucket  bigint  NOT NULL,
    event_bucket integer NOT NULL,
    event_time   bigint  NOT NULL,
    event_id     text    COLLATE "C" NOT NULL,
    delta        bigint  NOT NULL,
    clear        boolean NOT NULL,
    PRIMARY KEY (counter, event_time, event_id, ns_id, slice)
) PARTITION BY LIST (ns_id);

CREATE TABLE {{S}}.slices (
    ns_id bigint NOT NULL,
    slice bigint NOT NULL,
    PRIMARY KEY (ns_id, slice)
);

CREATE TABLE {{S}}.counters (
    ns_id      bigint NOT NULL,
    counter    text   COLLATE "C" NOT NULL,
    last_write bigint,
    fence      bigint,
    PRIMARY KEY (ns_id, counter)
) WITH (fillfactor = 70);

CREATE TABLE {{S}}.checkpoints (
    ns_id    bigint NOT NULL,
    counter  text   COLLATE "C" NOT NULL,
    count_hi bigint NOT NULL,
    count_lo bigint NOT NULL,
    through  bigint NOT NULL,
    PRIMARY KEY (ns_id, counter)
) WITH (fillfactor = 70);

CREATE FUNCTION {{S}}.refuse_events(refused bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF refused > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'AB409',
            MESSAGE = format('%s event(s) refused: token reused with another payload, or behind a rollup', refused);
    END IF;
    RETURN 0;
END
$$;
`,
	// Version 2: retained bases (RollupStore.SetRetainedBase). IF NOT EXISTS
	// so that the migration also completes a schema where a failed attempt
	// left the table behind.
	`
CREATE TABLE IF NOT EXISTS {{S}}.retained_bases (
    ns_id    bigint NOT NULL,
    counter  text   COLLATE "C" NOT NULL,
    count_hi bigint NOT NULL,
    count_lo bigint NOT NULL,
    through  bigint NOT NULL,
    PRIMARY KEY (ns_id, counter)
);
`,
}

// SchemaVersion is the schema version this build creates and reads: the
// number of migrations (TestMigrationsMatchVersion checks).
const SchemaVersion = 2

// migrate creates the schema or upgrades it to SchemaVersion, in one
// transaction under an advisory lock, so that nodes starting together apply
// each migration once and none sees a half-made schema. It refuses a schema
// of a newer version: this build would misread it.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return classify(ctx, err, "connect")
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return classify(ctx, err, "migrate schema "+s.schema)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", s.lockKey("migrate")); err != nil {
		return classify(ctx, err, "lock schema "+s.schema)
	}
	bootstrap := `
CREATE SCHEMA IF NOT EXISTS {{S}};
CREATE TABLE IF NOT EXISTS {{S}}.meta (key text PRIMARY KEY, value text NOT NULL);`
	if _, err := tx.Exec(ctx, s.sql(bootstrap)); err != nil {
		return classify(ctx, err, "create schema "+s.schema)
	}
	version := 0
	var v string
	err = tx.QueryRow(ctx, s.sql(`SELECT value FROM {{S}}.meta WHERE key = 'schema_version'`)).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return classify(ctx, err, "read schema version")
	default:
		if version, err = strconv.Atoi(v); err != nil || version < 0 {
			return abacus.Errorf(abacus.FailedPrecondition, "postgres schema %s has an unreadable version %q", s.schema, v)
		}
	}
	if version > SchemaVersion {
		return abacus.Errorf(abacus.FailedPrecondition,
			"postgres schema %s has version %d, newer than this build's %d: upgrade abacusd, or use another schema",
			s.schema, version, SchemaVersion)
	}
	if version == SchemaVersion {
		return nil
	}
	for i := version; i < SchemaVersion; i++ {
		if _, err := tx.Exec(ctx, s.sql(migrations[i])); err != nil {
			return classify(ctx, err, "migrate schema "+s.schema+" to version "+strconv.Itoa(i+1))
		}
	}
	if _, err := tx.Exec(ctx, s.sql(`
INSERT INTO {{S}}.meta (key, value) VALUES ('schema_version', $1)
ON CONFLICT (key) DO UPDATE SET value = excluded.value`), strconv.Itoa(SchemaVersion)); err != nil {
		return classify(ctx, err, "record schema version")
	}
	if err := tx.Commit(ctx); err != nil {
		return classify(ctx, err, "migrate schema "+s.schema)
	}
	s.log.Info("postgres schema migrated", "schema", s.schema, "from", version, "to", SchemaVersion)
	return nil
}

// sql substitutes the quoted schema name for {{S}}.
func (s *Store) sql(q string) string { return strings.ReplaceAll(q, "{{S}}", s.qschema) }

// lockKey returns the advisory lock key for one purpose in this schema, so
// that stores in different schemas of one database do not wait for each other.
func (s *Store) lockKey(purpose string) int64 {
	return int64(xxhash.Sum64String("abacus/postgres/" + purpose + "/" + s.schema))
}
