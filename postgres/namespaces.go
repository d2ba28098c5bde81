package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/jackc/pgx/v5"
)

// Namespaces live in one table: the name is the primary key, so a creation
// race between nodes is settled by the unique constraint; the ID comes from
// an identity column's sequence, which never hands a value out twice (not
// even one whose insert failed or whose namespace was deleted); the
// configuration is the JSON of abacus.Namespace, whose Name, ID, Created and
// Updated are taken from the columns when read.

const nsColumns = `id, config, created, updated`

// CreateNamespace implements abacus.NamespaceStore.
func (s *Store) CreateNamespace(ctx context.Context, ns *abacus.Namespace) (*abacus.Namespace, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if err := checkNamespace(ns); err != nil {
		return nil, err
	}
	out := *ns
	out.ID = 0
	out.Created = now()
	out.Updated = out.Created
	data, err := json.Marshal(&out)
	if err != nil {
		return nil, abacus.Errorf(abacus.Internal, "encode namespace %q: %w", ns.Name, err)
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	var id int64
	err = s.pool.QueryRow(octx, s.sql(`
INSERT INTO {{S}}.namespaces (name, config, created, updated) VALUES ($1, $2, $3, $3)
ON CONFLICT (name) DO NOTHING RETURNING id`), ns.Name, data, out.Created).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, abacus.Errorf(abacus.AlreadyExists, "namespace %q already exists", ns.Name)
	}
	if err != nil {
		return nil, classify(ctx, err, "create namespace")
	}
	out.ID = uint64(id)
	return &out, nil
}

// GetNamespace implements abacus.NamespaceStore.
func (s *Store) GetNamespace(ctx context.Context, name string) (*abacus.Namespace, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if checkText("namespace name", name) != nil {
		return nil, notFound(name) // no such name can be stored
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	rows, _ := s.pool.Query(octx, s.sql(`SELECT name, `+nsColumns+` FROM {{S}}.namespaces WHERE name = $1`), name)
	ns, err := pgx.CollectExactlyOneRow(rows, scanNamespace)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(name)
	}
	if err != nil {
		return nil, classify(ctx, err, "get namespace")
	}
	return ns, nil
}

// ListNamespaces implements abacus.NamespaceStore. The name column's "C"
// collation orders names bytewise, as Go compares strings.
func (s *Store) ListNamespaces(ctx context.Context) ([]*abacus.Namespace, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	rows, _ := s.pool.Query(octx, s.sql(`SELECT name, `+nsColumns+` FROM {{S}}.namespaces ORDER BY name`))
	list, err := pgx.CollectRows(rows, scanNamespace)
	if err != nil {
		return nil, classify(ctx, err, "list namespaces")
	}
	return list, nil
}

// UpdateNamespace implements abacus.NamespaceStore. Like the embedded store,
// it refuses to change a namespace's TimePartition: its events' slice and
// bucket columns, and their partitions, were derived from it.
func (s *Store) UpdateNamespace(ctx context.Context, ns *abacus.Namespace) (*abacus.Namespace, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if err := checkNamespace(ns); err != nil {
		return nil, err
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	var out abacus.Namespace
	err := pgx.BeginFunc(octx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(octx, s.sql(`SELECT name, `+nsColumns+` FROM {{S}}.namespaces WHERE name = $1 FOR UPDATE`), ns.Name)
		old, err := pgx.CollectExactlyOneRow(rows, scanNamespace)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(ns.Name)
		}
		if err != nil {
			return err
		}
		if old.Partition != (abacus.TimePartition{}) && ns.Partition != old.Partition {
			return abacus.Errorf(abacus.FailedPrecondition,
				"namespace %q: the time partition cannot change after creation (its events are keyed by it); create a new namespace instead",
				ns.Name)
		}
		out = *ns
		out.ID = 0
		out.Created = old.Created
		out.Updated = now()
		data, err := json.Marshal(&out)
		if err != nil {
			return abacus.Errorf(abacus.Internal, "encode namespace %q: %w", ns.Name, err)
		}
		out.ID = old.ID
		_, err = tx.Exec(octx, s.sql(`UPDATE {{S}}.namespaces SET config = $2, updated = $3 WHERE name = $1`), ns.Name, data, out.Updated)
		return err
	})
	if err != nil {
		return nil, classify(ctx, err, "update namespace")
	}
	return &out, nil
}

// DeleteNamespace implements abacus.NamespaceStore. It drops the namespace's
// data in the same transaction, which locks the events table as DropNamespace
// does (see the package's Limits).
func (s *Store) DeleteNamespace(ctx context.Context, name string) (*abacus.Namespace, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	if checkText("namespace name", name) != nil {
		return nil, notFound(name)
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	// The namespace's data goes in the same transaction: dropped only in a
	// second step (EventStore.DropNamespace, which the service still calls
	// next, for writes that were in flight), a crash in between left it
	// unreachable for good.
	var ns *abacus.Namespace
	err := pgx.BeginFunc(octx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(octx, s.sql(`DELETE FROM {{S}}.namespaces WHERE name = $1 RETURNING name, `+nsColumns), name)
		var err error
		if ns, err = pgx.CollectExactlyOneRow(rows, scanNamespace); err != nil {
			return err
		}
		return s.dropNamespaceData(octx, tx, int64(ns.ID))
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(name)
	}
	if err != nil {
		return nil, classify(ctx, err, "delete namespace")
	}
	s.parts.forget(int64(ns.ID), -abacus.MaxEventNanos, abacus.MaxEventNanos)
	return ns, nil
}

// scanNamespace decodes a row of name and nsColumns.
func scanNamespace(row pgx.CollectableRow) (*abacus.Namespace, error) {
	var (
		name             string
		id               int64
		config           []byte
		created, updated time.Time
	)
	if err := row.Scan(&name, &id, &config, &created, &updated); err != nil {
		return nil, err
	}
	ns := new(abacus.Namespace)
	if err := json.Unmarshal(config, ns); err != nil {
		return nil, abacus.Errorf(abacus.Internal, "postgres: corrupt configuration of namespace %q: %w", name, err)
	}
	ns.Name, ns.ID, ns.Created, ns.Updated = name, uint64(id), created.UTC(), updated.UTC()
	return ns, nil
}

func checkNamespace(ns *abacus.Namespace) error {
	if ns == nil || ns.Name == "" {
		return abacus.Errorf(abacus.InvalidArgument, "namespace name is required")
	}
	return checkText("namespace name", ns.Name)
}

func notFound(name string) error {
	return abacus.Errorf(abacus.NotFound, "namespace %q not found", name)
}

// now is the time a namespace is created or updated, truncated to the
// microseconds a timestamptz keeps, so the value returned is the one stored.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
