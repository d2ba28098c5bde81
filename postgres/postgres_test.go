package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/storetest"
	"github.com/jackc/pgx/v5"
)

// serverURL returns the URL of the PostgreSQL server the tests use, from
// ABACUS_TEST_POSTGRES. Without it the test is skipped, unless
// ABACUS_REQUIRE_SERVERS=1 (as in CI), so that the suite can never silently
// not run.
func serverURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("ABACUS_TEST_POSTGRES")
	if url == "" {
		if os.Getenv("ABACUS_REQUIRE_SERVERS") == "1" {
			t.Fatal("ABACUS_REQUIRE_SERVERS=1 but ABACUS_TEST_POSTGRES is not set: the PostgreSQL tests must run")
		}
		t.Skip("PostgreSQL tests skipped: set ABACUS_TEST_POSTGRES to a server URL, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	}
	return url
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

var schemaSeq atomic.Int64

// freshSchema returns the name of a schema no other test uses, and drops it
// when the test ends.
func freshSchema(t testing.TB, url string) string {
	t.Helper()
	name := fmt.Sprintf("abacus_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, schemaSeq.Add(1))
	t.Cleanup(func() { dropSchema(t, url, name) })
	return name
}

// dropSchema drops a test schema. The namespaces' partition tables are
// dropped one namespace per transaction first: a suite creates hundreds, and
// one DROP SCHEMA of them all would need more locks than a small server's
// lock table holds.
func dropSchema(t testing.TB, url, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Errorf("drop schema %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
JOIN pg_namespace n ON n.oid = p.relnamespace
WHERE n.nspname = $1 AND p.relname = 'events'`, name)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Errorf("drop schema %s: %v", name, err)
		return
	}
	for _, table := range tables {
		if _, err := conn.Exec(ctx, "DROP TABLE "+pgx.Identifier{name, table}.Sanitize()); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	}
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("drop schema %s: %v", name, err)
	}
}

// openStore opens a store in a fresh schema (unless opts names one) and
// closes it when the test ends, before its schema is dropped.
func openStore(t testing.TB, opts Options) *Store {
	t.Helper()
	url := serverURL(t)
	if opts.Schema == "" {
		opts.Schema = freshSchema(t, url)
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestConformance(t *testing.T) {
	serverURL(t)
	storetest.Run(t, func(t *testing.T) storetest.Backend { return openStore(t, Options{}) })
}

var t0 = time.Date(2024, 10, 5, 14, 48, 0, 0, time.UTC)

func nsConfig(name string) *abacus.Namespace {
	return &abacus.Namespace{
		Name:      name,
		Type:      abacus.Accurate,
		Partition: abacus.TimePartition{BucketsPerID: 4, BucketWidth: 10 * time.Second, SliceWidth: time.Minute},
	}
}

func createNamespace(t testing.TB, s *Store, name string) *abacus.Namespace {
	t.Helper()
	ns, err := s.CreateNamespace(context.Background(), nsConfig(name))
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func ev(counter string, off time.Duration, id string, delta int64) abacus.Event {
	return abacus.Event{Counter: counter, Time: t0.Add(off), ID: id, Delta: delta}
}

func write(ns *abacus.Namespace, evs ...abacus.Event) []abacus.Write {
	ws := make([]abacus.Write, len(evs))
	for i, e := range evs {
		ws[i] = abacus.Write{NS: ns, Event: e}
	}
	return ws
}

func scan(t testing.TB, s *Store, ns *abacus.Namespace, counter string) []abacus.Event {
	t.Helper()
	var out []abacus.Event
	if err := s.Scan(context.Background(), ns, counter, abacus.Range{}, func(e abacus.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// connect opens a plain connection to the test server, closed at the end.
func connect(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), serverURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}
