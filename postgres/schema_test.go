package postgres

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

func TestMigrationsMatchVersion(t *testing.T) {
	if len(migrations) != SchemaVersion {
		t.Fatalf("%d migrations, but SchemaVersion is %d", len(migrations), SchemaVersion)
	}
}

func schemaVersion(t *testing.T, schema string) string {
	t.Helper()
	var v string
	q := `SELECT value FROM ` + quoteSchema(schema) + `.meta WHERE key = 'schema_version'`
	if err := connect(t).QueryRow(context.Background(), q).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func quoteSchema(schema string) string { return `"` + schema + `"` }

// TestOpenTwice checks that Open on an existing schema changes nothing and
// finds the data.
func TestOpenTwice(t *testing.T) {
	url := serverURL(t)
	schema := freshSchema(t, url)
	s1 := openStore(t, Options{Schema: schema})
	ns := createNamespace(t, s1, "keep")
	if err := s1.Append(context.Background(), write(ns, ev("c", 0, "a", 1))); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	s2 := openStore(t, Options{Schema: schema})
	got, err := s2.GetNamespace(context.Background(), "keep")
	if err != nil || got.ID != ns.ID {
		t.Fatalf("namespace after reopen = %+v, %v", got, err)
	}
	if evs := scan(t, s2, ns, "c"); len(evs) != 1 {
		t.Fatalf("events after reopen: %v", evs)
	}
	if v := schemaVersion(t, schema); v != strconv.Itoa(SchemaVersion) {
		t.Fatalf("schema version %q, want %d", v, SchemaVersion)
	}
}

// TestOpenConcurrent opens one new schema from three stores at once, as nodes
// starting together do: the advisory lock makes one create it and the others
// find it.
func TestOpenConcurrent(t *testing.T) {
	url := serverURL(t)
	schema := freshSchema(t, url)
	var wg sync.WaitGroup
	stores := make([]*Store, 3)
	errs := make([]error, 3)
	for i := range stores {
		wg.Go(func() {
			stores[i], errs[i] = Open(context.Background(), url, Options{Schema: schema, Logger: testLogger(t)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(stores[i].Close)
	}
	ns := createNamespace(t, stores[0], "shared")
	if err := stores[1].Append(context.Background(), write(ns, ev("c", 0, "a", 1))); err != nil {
		t.Fatal(err)
	}
	if evs := scan(t, stores[2], ns, "c"); len(evs) != 1 {
		t.Fatalf("another store's events: %v", evs)
	}
	if v := schemaVersion(t, schema); v != strconv.Itoa(SchemaVersion) {
		t.Fatalf("schema version %q, want %d", v, SchemaVersion)
	}
}

// TestNewerSchemaRefused checks that Open refuses a schema written by a newer
// version, rather than misreading it.
func TestNewerSchemaRefused(t *testing.T) {
	url := serverURL(t)
	schema := freshSchema(t, url)
	openStore(t, Options{Schema: schema}).Close()
	if _, err := connect(t).Exec(context.Background(), `UPDATE `+quoteSchema(schema)+`.meta SET value = '99' WHERE key = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), url, Options{Schema: schema, Logger: testLogger(t)})
	if abacus.ErrorCode(err) != abacus.FailedPrecondition || !strings.Contains(abacus.ErrorMessage(err), "version 99") {
		t.Fatalf("Open of a newer schema = %v, want FailedPrecondition naming version 99", err)
	}
}

func TestOptionsValidated(t *testing.T) {
	_, err := Open(context.Background(), "postgres://127.0.0.1:1/x", Options{Schema: "1bad", PoolSize: -1, Committers: -2, Timeout: -time.Second})
	if abacus.ErrorCode(err) != abacus.InvalidArgument {
		t.Fatalf("Open with bad options = %v, want InvalidArgument", err)
	}
	for _, want := range []string{"schema", "pool size", "committers", "timeout"} {
		if !strings.Contains(abacus.ErrorMessage(err), want) {
			t.Errorf("error %q does not mention %s", abacus.ErrorMessage(err), want)
		}
	}
	if _, err := Open(context.Background(), "postgres://%zz", Options{}); abacus.ErrorCode(err) != abacus.InvalidArgument {
		t.Fatalf("Open with a malformed URL = %v, want InvalidArgument", err)
	}
}

// TestInvalidInput checks that what PostgreSQL text cannot hold, or the
// partitioning cannot represent, is refused with InvalidArgument and writes
// nothing.
func TestInvalidInput(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	ns := createNamespace(t, s, "ns")
	good := ev("c", 0, "ok", 1)
	bad := *ns
	bad.Partition.BucketsPerID = 0
	for name, w := range map[string]abacus.Write{
		"nil namespace":     {Event: good},
		"NUL in counter":    {NS: ns, Event: ev("a\x00b", 0, "x", 1)},
		"NUL in id":         {NS: ns, Event: ev("c", 0, "x\x00", 1)},
		"invalid UTF-8 id":  {NS: ns, Event: ev("c", 0, "\xff", 1)},
		"empty counter":     {NS: ns, Event: ev("", 0, "x", 1)},
		"zero time":         {NS: ns, Event: abacus.Event{Counter: "c", ID: "x", Delta: 1}},
		"time after 2116":   {NS: ns, Event: abacus.Event{Counter: "c", Time: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), ID: "x", Delta: 1}},
		"clear with delta":  {NS: ns, Event: abacus.Event{Counter: "c", Time: t0, ID: "x", Delta: 1, Clear: true}},
		"zero event bucket": {NS: &bad, Event: good},
	} {
		err := s.Append(ctx, []abacus.Write{{NS: ns, Event: good}, w})
		if abacus.ErrorCode(err) != abacus.InvalidArgument {
			t.Errorf("%s: Append = %v, want InvalidArgument", name, err)
		}
	}
	if got := scan(t, s, ns, "c"); len(got) != 0 {
		t.Fatalf("refused batches wrote %v", got)
	}
	if _, err := s.AdvanceCheckpoint(ctx, ns, "c", abacus.Checkpoint{}, abacus.Checkpoint{Through: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}); abacus.ErrorCode(err) != abacus.InvalidArgument {
		t.Fatalf("AdvanceCheckpoint beyond 2116 = %v, want InvalidArgument", err)
	}
	if _, err := s.GetNamespace(ctx, "bad\x00name"); abacus.ErrorCode(err) != abacus.NotFound {
		t.Fatalf("GetNamespace of a name with NUL = %v, want NotFound", err)
	}
	// Odd but representable: an empty ID, control characters, times before 1970.
	odd := []abacus.Event{
		{Counter: "c", Time: t0, ID: "", Delta: 1},
		{Counter: "c\x01", Time: t0, ID: "\x01", Delta: 2},
		{Counter: "c", Time: time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC), ID: "old", Delta: 3},
	}
	for _, e := range odd {
		if err := s.Append(ctx, write(ns, e)); err != nil {
			t.Fatalf("Append(%+v): %v", e, err)
		}
	}
	if got := scan(t, s, ns, "c"); len(got) != 2 || got[0].ID != "old" || got[1].ID != "" {
		t.Fatalf("odd events: %v", got)
	}
}

// TestPartitionIsFixed checks that UpdateNamespace refuses to change the
// partition, from which the events' slices were derived.
func TestPartitionIsFixed(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	ns := createNamespace(t, s, "fixed")
	upd := *ns
	upd.Partition.SliceWidth *= 2
	if _, err := s.UpdateNamespace(ctx, &upd); abacus.ErrorCode(err) != abacus.FailedPrecondition {
		t.Fatalf("UpdateNamespace changing the partition = %v, want FailedPrecondition", err)
	}
	upd = *ns
	upd.Description = "ok"
	if _, err := s.UpdateNamespace(ctx, &upd); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFromVersion1 checks that Open upgrades a version 1 schema, as an
// earlier build left it, to the current version, keeping its data: version 2
// adds the retained_bases table.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	url := serverURL(t)
	schema := freshSchema(t, url)
	s1 := openStore(t, Options{Schema: schema})
	ns := createNamespace(t, s1, "old")
	if err := s1.Append(ctx, write(ns, ev("c", 0, "a", 1))); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	// Back to version 1: what migrations[1:] add is gone.
	if _, err := connect(t).Exec(ctx, `DROP TABLE `+quoteSchema(schema)+`.retained_bases;
UPDATE `+quoteSchema(schema)+`.meta SET value = '1' WHERE key = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, Options{Schema: schema})
	if v := schemaVersion(t, schema); v != strconv.Itoa(SchemaVersion) {
		t.Fatalf("schema version after the upgrade %q, want %d", v, SchemaVersion)
	}
	if evs := scan(t, s2, ns, "c"); len(evs) != 1 {
		t.Fatalf("events after the upgrade: %v", evs)
	}
	base := abacus.Checkpoint{Count: abacus.SumOf(1), Through: t0.Add(time.Minute)}
	if err := s2.SetRetainedBase(ctx, ns, "c", base); err != nil {
		t.Fatal(err)
	}
	if got, err := s2.RetainedBase(ctx, ns, "c"); err != nil || got.Count != base.Count || !got.Through.Equal(base.Through) {
		t.Fatalf("RetainedBase after the upgrade = %+v, %v", got, err)
	}
}
