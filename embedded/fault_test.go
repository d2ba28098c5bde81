package embedded_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/embedded"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// walFaults fails every write and sync of the WAL while on.
type walFaults struct{ on atomic.Bool }

func (w *walFaults) String() string { return "wal faults" }

func (w *walFaults) MaybeError(op errorfs.Op) error {
	if !w.on.Load() || !strings.HasSuffix(op.Path, ".log") || op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData,
		errorfs.OpFileSyncTo, errorfs.OpFileFlush, errorfs.OpFilePreallocate:
		return errorfs.ErrInjected
	}
	return nil
}

func TestFaultInjectionWAL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	faults := &walFaults{}
	s, err := embedded.Open(dir, embedded.Options{FS: errorfs.Wrap(vfs.Default, faults), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := s.CreateNamespace(ctx, nsConfig("faults"))
	if err != nil {
		t.Fatal(err)
	}
	acked := ev("c", 0, "acked", 1)
	if err := s.Append(ctx, []abacus.Write{{NS: ns, Event: acked}}); err != nil {
		t.Fatal(err)
	}

	faults.on.Store(true)
	lost := ev("c", time.Second, "lost", 2)
	err = s.Append(ctx, []abacus.Write{{NS: ns, Event: lost}})
	if abacus.ErrorCode(err) != abacus.Unavailable {
		t.Fatalf("Append with a failing WAL = %v, want Unavailable", err)
	}
	if s.Err() == nil {
		t.Fatal("Err() = nil after a failed commit")
	}
	// A retry must not be acknowledged by a store whose WAL failed, even though
	// Pebble already shows the batch to readers.
	err = s.Append(ctx, []abacus.Write{{NS: ns, Event: lost}})
	if abacus.ErrorCode(err) != abacus.Unavailable {
		t.Fatalf("retry after the failure = %v, want Unavailable", err)
	}
	if _, err := s.RollupState(ctx, ns, "c"); abacus.ErrorCode(err) != abacus.Unavailable {
		t.Fatalf("read after the failure = %v, want Unavailable", err)
	}
	_ = s.Close() // may report the WAL failure
	faults.on.Store(false)

	// A restart replays the WAL: the acknowledged event is there, the failed
	// one is not, and the store works again.
	s2 := open(t, dir, embedded.Options{Logger: testLogger(t)})
	got := scan(t, s2, ns, "c")
	if len(got) != 1 || got[0].ID != "acked" {
		t.Fatalf("after restart: %v, want only the acknowledged event", got)
	}
	if err := s2.Append(ctx, []abacus.Write{{NS: ns, Event: lost}}); err != nil {
		t.Fatalf("retry after restart: %v", err)
	}
}
