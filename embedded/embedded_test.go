package embedded_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/embedded"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// TestReopen checks that everything survives Close and Open: namespaces and
// their ID sequence, events, last writes, and checkpoints written without
// fsync (a clean Close flushes the WAL).
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := embedded.Open(dir, embedded.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := s.CreateNamespace(ctx, nsConfig("keep"))
	if err != nil {
		t.Fatal(err)
	}
	gone, err := s.CreateNamespace(ctx, nsConfig("gone"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteNamespace(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	evs := []abacus.Event{ev("c", 0, "a", 1), ev("c", 90*time.Second, "b", -2), {Counter: "d", Time: t0, ID: "x", Clear: true}}
	var ws []abacus.Write
	for _, e := range evs {
		ws = append(ws, abacus.Write{NS: ns, Event: e})
	}
	if err := s.Append(ctx, ws); err != nil {
		t.Fatal(err)
	}
	cp := abacus.Checkpoint{Count: abacus.SumOf(1), Through: t0.Add(time.Minute)}
	if _, err := s.AdvanceCheckpoint(ctx, ns, "c", abacus.Checkpoint{}, cp); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, ws); abacus.ErrorCode(err) != abacus.Unavailable {
		t.Fatalf("Append after Close = %v, want Unavailable", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = open(t, dir, embedded.Options{Logger: testLogger(t)})
	got, err := s.GetNamespace(ctx, "keep")
	if err != nil || got.ID != ns.ID || !got.Created.Equal(ns.Created) {
		t.Fatalf("namespace after reopen = %+v, %v; want %+v", got, err, ns)
	}
	if c := scan(t, s, ns, "c"); len(c) != 2 || c[0].ID != "a" || c[1].Delta != -2 {
		t.Fatalf("events after reopen: %v", c)
	}
	if d := scan(t, s, ns, "d"); len(d) != 1 || !d[0].Clear {
		t.Fatalf("clear after reopen: %v", d)
	}
	st, err := s.RollupState(ctx, ns, "c")
	if err != nil || st.Count != cp.Count || !st.Through.Equal(cp.Through) || !st.LastWrite.Equal(t0.Add(90*time.Second)) {
		t.Fatalf("rollup state after reopen = %+v, %v", st, err)
	}
	// The ID sequence survives too: no ID is handed out twice.
	again, err := s.CreateNamespace(ctx, nsConfig("gone"))
	if err != nil {
		t.Fatal(err)
	}
	if again.ID <= gone.ID {
		t.Fatalf("ID after reopen %d, want > %d", again.ID, gone.ID)
	}
	// The idempotency check sees events from before the restart.
	err = s.Append(ctx, []abacus.Write{{NS: ns, Event: ev("c", 0, "a", 5)}})
	if abacus.ErrorCode(err) != abacus.AlreadyExists {
		t.Fatalf("reused token after reopen = %v, want AlreadyExists", err)
	}
}

// TestInvalidInput checks that input the key layout cannot represent is
// refused with InvalidArgument and writes nothing.
func TestInvalidInput(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), embedded.Options{FS: vfs.NewMem()})
	ns, err := s.CreateNamespace(ctx, nsConfig("ns"))
	if err != nil {
		t.Fatal(err)
	}
	bad := func(mut func(*abacus.Namespace)) *abacus.Namespace {
		c := *ns
		mut(&c)
		return &c
	}
	good := ev("c", 0, "ok", 1)
	cases := []struct {
		name string
		w    abacus.Write
	}{
		{"nil namespace", abacus.Write{Event: good}},
		{"NUL in counter", abacus.Write{NS: ns, Event: ev("a\x00b", 0, "x", 1)}},
		{"empty counter", abacus.Write{NS: ns, Event: ev("", 0, "x", 1)}},
		{"zero time", abacus.Write{NS: ns, Event: abacus.Event{Counter: "c", ID: "x", Delta: 1}}},
		{"time before 1823", abacus.Write{NS: ns, Event: abacus.Event{Counter: "c", Time: time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC), ID: "x", Delta: 1}}},
		{"time after 2116", abacus.Write{NS: ns, Event: abacus.Event{Counter: "c", Time: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), ID: "x", Delta: 1}}},
		{"clear with a delta", abacus.Write{NS: ns, Event: abacus.Event{Counter: "c", Time: t0, ID: "x", Delta: 1, Clear: true}}},
		{"zero buckets", abacus.Write{NS: bad(func(n *abacus.Namespace) { n.Partition.BucketsPerID = 0 }), Event: good}},
		{"too many buckets", abacus.Write{NS: bad(func(n *abacus.Namespace) { n.Partition.BucketsPerID = 1 << 17 }), Event: good}},
		{"zero bucket width", abacus.Write{NS: bad(func(n *abacus.Namespace) { n.Partition.BucketWidth = 0 }), Event: good}},
		{"negative slice width", abacus.Write{NS: bad(func(n *abacus.Namespace) { n.Partition.SliceWidth = -time.Second }), Event: good}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Append(ctx, []abacus.Write{{NS: ns, Event: good}, tc.w})
			if abacus.ErrorCode(err) != abacus.InvalidArgument {
				t.Fatalf("Append = %v, want InvalidArgument", err)
			}
			if got := scan(t, s, ns, "c"); len(got) != 0 {
				t.Fatalf("a refused batch wrote %v", got)
			}
		})
	}
	if err := s.Scan(ctx, ns, "a\x00b", abacus.Range{}, func(abacus.Event) error { return nil }); abacus.ErrorCode(err) != abacus.InvalidArgument {
		t.Fatalf("Scan of a counter with NUL = %v, want InvalidArgument", err)
	}
	if _, err := s.AdvanceCheckpoint(ctx, ns, "c", abacus.Checkpoint{}, abacus.Checkpoint{Through: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}); abacus.ErrorCode(err) != abacus.InvalidArgument {
		t.Fatalf("AdvanceCheckpoint beyond 2116 = %v, want InvalidArgument", err)
	}
	// Odd but representable: IDs with any bytes, counters with other control
	// characters, times before the epoch.
	odd := []abacus.Event{
		{Counter: "c", Time: t0, ID: "\x00\xff\x00", Delta: 1},
		{Counter: "c\x01", Time: t0, ID: "", Delta: 2},
		{Counter: "c", Time: time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC), ID: "old", Delta: 3},
	}
	for _, e := range odd {
		if err := s.Append(ctx, []abacus.Write{{NS: ns, Event: e}}); err != nil {
			t.Fatalf("Append(%+v): %v", e, err)
		}
	}
	if got := scan(t, s, ns, "c"); len(got) != 2 || got[0].ID != "old" || got[1].ID != "\x00\xff\x00" {
		t.Fatalf("odd events: %v", got)
	}
	if got := scan(t, s, ns, "c\x01"); len(got) != 1 || got[0].Delta != 2 {
		t.Fatalf("odd counter: %v", got)
	}
}

// TestPartitionIsFixed checks that UpdateNamespace refuses to change the
// partition, which would hide the namespace's events.
func TestPartitionIsFixed(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), embedded.Options{FS: vfs.NewMem()})
	ns, err := s.CreateNamespace(ctx, nsConfig("fixed"))
	if err != nil {
		t.Fatal(err)
	}
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

// TestGroupCommit checks that concurrent synced appends share WAL fsyncs. Each
// fsync is slowed down so that the appends queue behind it, as they do on a
// real disk under load.
func TestGroupCommit(t *testing.T) {
	var syncs atomic.Int64
	slowSync := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") {
			switch op.Kind {
			case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
				syncs.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		}
		return nil
	})
	s := open(t, t.TempDir(), embedded.Options{FS: errorfs.Wrap(vfs.Default, slowSync), Logger: testLogger(t)})
	ctx := context.Background()
	ns, err := s.CreateNamespace(ctx, nsConfig("group"))
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, perG = 64, 10
	syncs.Store(0)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				e := ev("c", time.Duration(i)*time.Second, fmt.Sprintf("%d-%d", g, i), 1)
				if err := s.Append(ctx, []abacus.Write{{NS: ns, Event: e}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	commits, n := int64(goroutines*perG), syncs.Load()
	t.Logf("%d synced appends took %d WAL fsyncs (%.1f appends per fsync)", commits, n, float64(commits)/float64(n))
	if n == 0 || n > commits/4 {
		t.Fatalf("%d synced appends took %d WAL fsyncs: no group commit", commits, n)
	}
	if got := scan(t, s, ns, "c"); len(got) != int(commits) {
		t.Fatalf("%d events stored, want %d", len(got), commits)
	}
}

// TestDeleteSlicesSyncsCheckpoints checks that DeleteSlices makes checkpoints,
// written without fsync, durable before deleting events: it syncs the WAL.
func TestDeleteSlicesSyncsCheckpoints(t *testing.T) {
	var syncs atomic.Int64
	count := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") {
			switch op.Kind {
			case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
				syncs.Add(1)
			}
		}
		return nil
	})
	ctx := context.Background()
	s := open(t, t.TempDir(), embedded.Options{FS: errorfs.Wrap(vfs.NewMem(), count)})
	ns, err := s.CreateNamespace(ctx, nsConfig("ret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, []abacus.Write{{NS: ns, Event: ev("c", 0, "a", 1)}}); err != nil {
		t.Fatal(err)
	}
	before := syncs.Load()
	if _, err := s.AdvanceCheckpoint(ctx, ns, "c", abacus.Checkpoint{}, abacus.Checkpoint{Count: abacus.SumOf(1), Through: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if syncs.Load() != before {
		t.Fatalf("AdvanceCheckpoint synced the WAL; it need not")
	}
	n, err := s.DeleteSlices(ctx, ns, t0.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("DeleteSlices = %d, %v; want 1", n, err)
	}
	if syncs.Load() == before {
		t.Fatalf("DeleteSlices deleted events without syncing the WAL")
	}
}

// TestCloseWaitsForCalls checks that Close waits for a scan in progress
// instead of closing the database under it.
func TestCloseWaitsForCalls(t *testing.T) {
	ctx := context.Background()
	s, err := embedded.Open(t.TempDir(), embedded.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := s.CreateNamespace(ctx, nsConfig("close"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Append(ctx, []abacus.Write{{NS: ns, Event: ev("c", time.Duration(i)*time.Minute, "a", 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	n := 0
	err = s.Scan(ctx, ns, "c", abacus.Range{}, func(abacus.Event) error {
		if n++; n == 1 {
			go func() { closed <- s.Close() }()
			select {
			case err := <-closed:
				t.Errorf("Close returned (%v) during a scan", err)
				closed <- err
			case <-time.After(50 * time.Millisecond):
			}
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Scan = %v after %d events; want all 3", err, n)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
