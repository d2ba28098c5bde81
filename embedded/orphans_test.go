package embedded

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/cockroachdb/pebble/v2"
)

// TestNamespaceDataGoesWithIt: DeleteNamespace drops the namespace's data
// in the same batch, and Open drops the data of namespace IDs that no
// namespace has (what a crash between the two steps of the old deletion
// left), leaving other namespaces alone.
func TestNamespaceDataGoesWithIt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := Options{Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() }) // a second Close is a no-op
	cfg := func(name string) *abacus.Namespace {
		return &abacus.Namespace{Name: name, Type: abacus.Accurate,
			Partition: abacus.TimePartition{BucketsPerID: 4, BucketWidth: 10 * time.Second, SliceWidth: time.Minute}}
	}
	t0 := time.Date(2024, 10, 5, 14, 48, 0, 0, time.UTC)
	nss := map[string]*abacus.Namespace{}
	for _, name := range []string{"deleted", "orphaned", "kept"} {
		ns, err := s.CreateNamespace(ctx, cfg(name))
		if err != nil {
			t.Fatal(err)
		}
		nss[name] = ns
		if err := s.Append(ctx, []abacus.Write{{NS: ns, Event: abacus.Event{Counter: "c", Time: t0, ID: "a", Delta: 1}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AdvanceCheckpoint(ctx, ns, "d", abacus.Checkpoint{}, abacus.Checkpoint{Count: abacus.SumOf(5), Through: t0}); err != nil {
			t.Fatal(err)
		}
	}
	events := func(s *Store, ns *abacus.Namespace) int {
		n := 0
		if err := s.Scan(ctx, ns, "c", abacus.Range{}, func(abacus.Event) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	hasData := func(s *Store, name string) bool {
		t.Helper()
		ns := nss[name]
		st, err := s.RollupState(ctx, ns, "d")
		if err != nil {
			t.Fatal(err)
		}
		cst, err := s.RollupState(ctx, ns, "c")
		if err != nil {
			t.Fatal(err)
		}
		n := events(s, ns)
		if (n > 0) != !st.Through.IsZero() || (n > 0) != !cst.LastWrite.IsZero() {
			t.Fatalf("%s: %d events, checkpoint %v, last write %v: partly dropped", name, n, st.Through, cst.LastWrite)
		}
		return n > 0
	}

	if _, err := s.DeleteNamespace(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}
	if hasData(s, "deleted") {
		t.Fatal("a deleted namespace's data is still there")
	}
	// The old deletion's first step alone: the namespace record goes, its
	// data stays, as a crash before the second step left it.
	b := s.db.NewBatch()
	_ = b.Delete(namespaceKey("orphaned"), nil)
	if err := s.commit(b, pebble.Sync, "test"); err != nil {
		t.Fatal(err)
	}
	if !hasData(s, "orphaned") {
		t.Fatal("setup: the orphaned namespace's data is gone before the restart")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if hasData(s2, "orphaned") {
		t.Error("data of a namespace ID no namespace has survived Open")
	}
	if !hasData(s2, "kept") {
		t.Error("Open dropped a live namespace's data")
	}
}
