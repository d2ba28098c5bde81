package embedded_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/embedded"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// crashableFS is a crashable in-memory file system whose crash images can be
// taken while the store works in the background.
//
// Pebble's vfs.MemFS (v2.1.7) read-locks its clone mutex twice in Link, which
// ingestion calls: a CrashClone that write-locks it between the two waits for
// the Link, which waits for the CrashClone, forever (seen as a CI timeout in
// TestEventLogSurvivesCrash). Links and clones here exclude each other first,
// so a clone never falls inside a Link. Production stores run on the disk.
type crashableFS struct {
	*vfs.MemFS
	mu sync.RWMutex // read: a Link; write: a CrashClone
}

func newCrashableFS() *crashableFS { return &crashableFS{MemFS: vfs.NewCrashableMem()} }

func (f *crashableFS) Link(oldname, newname string) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.MemFS.Link(oldname, newname)
}

// crashClone returns what the file system may hold after a crash now.
func (f *crashableFS) crashClone() *vfs.MemFS {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.MemFS.CrashClone(vfs.CrashCloneCfg{})
}

// TestSkippedWritesSurviveCrash: an append that leaves out its counter's
// last-write merge and the event-time mark (an earlier batch carries as
// much), and a checkpoint that leaves out the checkpoint-time mark, must be
// covered after a crash that keeps only what was synced: the batches that
// carried them come first in the WAL.
func TestSkippedWritesSurviveCrash(t *testing.T) {
	ctx := context.Background()
	fs := newCrashableFS()
	s, err := embedded.Open("db", embedded.Options{FS: fs, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := s.CreateNamespace(ctx, nsConfig("crash"))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(2 * time.Minute).Truncate(time.Second)
	ev := writesAt(ns, base)
	// Carries the merge (rounded up to base+100ms) and the mark; the second
	// append, within the same 100ms step and under the mark, carries neither.
	mustOK(t, s.Append(ctx, ev("c", 10*time.Millisecond, "first", 1)))
	mustOK(t, s.Append(ctx, ev("c", 50*time.Millisecond, "second", 1)))
	// Past the stored step: this one must carry a merge again.
	mustOK(t, s.Append(ctx, ev("c", 150*time.Millisecond, "third", 1)))
	// The first checkpoint carries the checkpoint-time mark (1 s ahead),
	// the second, earlier one does not. Checkpoints are not synced: the
	// append after them syncs the WAL up to them.
	if _, err := s.AdvanceCheckpoint(ctx, ns, "d", abacus.Checkpoint{}, abacus.Checkpoint{Through: base.Add(30 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdvanceCheckpoint(ctx, ns, "e", abacus.Checkpoint{}, abacus.Checkpoint{Through: base.Add(30*time.Second + 500*time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	mustOK(t, s.Append(ctx, ev("f", 0, "sync", 1)))

	crashed := fs.crashClone()
	_ = s.Close()
	s2, err := embedded.Open("db", embedded.Options{FS: crashed, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	st, err := s2.RollupState(ctx, ns, "c")
	if err != nil || st.LastWrite.Before(base.Add(150*time.Millisecond)) {
		t.Fatalf("LastWrite of c after the crash = %v, %v; want at or after %v", st.LastWrite, err, base.Add(150*time.Millisecond))
	}
	for id, off := range map[string]time.Duration{"first": 10 * time.Millisecond, "second": 50 * time.Millisecond, "third": 150 * time.Millisecond} {
		if got := abacus.ErrorCode(s2.Append(ctx, ev("c", off, id, 5))); got != abacus.AlreadyExists {
			t.Errorf("token %q reused after the crash: code %v, want AlreadyExists", id, got)
		}
	}
	if got := abacus.ErrorCode(s2.Append(ctx, ev("e", 30*time.Second, "late", 1))); got != abacus.FailedPrecondition {
		t.Errorf("append behind e's checkpoint after the crash: code %v, want FailedPrecondition", got)
	}
}

// TestConcurrentAppendsOneCounter: many goroutines appending to one counter
// (so sharing its last-write slot and the marks) leave every event and a
// last write that covers the latest; run it with -race.
func TestConcurrentAppendsOneCounter(t *testing.T) {
	ctx := context.Background()
	s, ns := newStoreNS(t, "conc")
	base := time.Now().Add(2 * time.Minute)
	const goroutines, each = 8, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				at := base.Add(time.Duration(g*each+i) * 3 * time.Millisecond)
				w := []abacus.Write{{NS: ns, Event: abacus.Event{Counter: "c", Time: at, ID: fmt.Sprint(g, "-", i), Delta: 1}}}
				if err := s.Append(ctx, w); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n := 0
	if err := s.Scan(ctx, ns, "c", abacus.Range{}, func(abacus.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	latest := base.Add(time.Duration(goroutines*each-1) * 3 * time.Millisecond)
	st, err := s.RollupState(ctx, ns, "c")
	if n != goroutines*each || err != nil || st.LastWrite.Before(latest) || !st.LastWrite.Before(latest.Add(abacus.LastWriteResolution)) {
		t.Fatalf("%d events, LastWrite %v (%v); want %d and [%v, +%v)", n, st.LastWrite, err, goroutines*each, latest, abacus.LastWriteResolution)
	}
}

// TestRepairAndRetainedBaseSurviveCrash: a repaired checkpoint is durable
// when RepairCheckpoint returns, and a retained base, written without a sync
// of its own, is durable once DeleteSlices has deleted the events it counts.
func TestRepairAndRetainedBaseSurviveCrash(t *testing.T) {
	ctx := context.Background()
	fs := newCrashableFS()
	s, err := embedded.Open("db", embedded.Options{FS: fs, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := s.CreateNamespace(ctx, nsConfig("crash"))
	if err != nil {
		t.Fatal(err)
	}
	// A slice boundary: the namespace's slices are a minute wide.
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	ev := writesAt(ns, base)
	mustOK(t, s.Append(ctx, ev("c", 10*time.Second, "old", 2)))
	mustOK(t, s.Append(ctx, ev("c", 2*time.Minute, "new", 3)))
	cp := abacus.Checkpoint{Count: abacus.SumOf(2), Through: base.Add(90 * time.Second)}
	if _, err := s.AdvanceCheckpoint(ctx, ns, "c", abacus.Checkpoint{}, cp); err != nil {
		t.Fatal(err)
	}
	kept := abacus.Checkpoint{Count: abacus.SumOf(2), Through: base.Add(time.Minute)}
	mustOK(t, s.SetRetainedBase(ctx, ns, "c", kept))
	if n, err := s.DeleteSlices(ctx, ns, base.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("DeleteSlices = %d, %v; want 1 slice", n, err)
	}
	// An unsynced checkpoint, then a repair of it: both durable with the repair.
	wrong := abacus.Checkpoint{Count: abacus.SumOf(40), Through: base.Add(30 * time.Second)}
	if _, err := s.AdvanceCheckpoint(ctx, ns, "d", abacus.Checkpoint{}, wrong); err != nil {
		t.Fatal(err)
	}
	fixed := abacus.Checkpoint{Count: abacus.SumOf(4), Through: wrong.Through}
	if _, ok, err := s.RepairCheckpoint(ctx, ns, "d", wrong, fixed); err != nil || !ok {
		t.Fatalf("RepairCheckpoint = %v, %v", ok, err)
	}

	crashed := fs.crashClone()
	_ = s.Close()
	s2, err := embedded.Open("db", embedded.Options{FS: crashed, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := s2.RetainedBase(ctx, ns, "c"); err != nil || !sameCP(got, kept) {
		t.Errorf("retained base after the crash = %+v, %v; want %+v", got, err, kept)
	}
	if st, err := s2.RollupState(ctx, ns, "c"); err != nil || !sameCP(st.Checkpoint, cp) {
		t.Errorf("checkpoint of c after the crash = %+v, %v; want %+v", st.Checkpoint, err, cp)
	}
	if st, err := s2.RollupState(ctx, ns, "d"); err != nil || !sameCP(st.Checkpoint, fixed) {
		t.Errorf("repaired checkpoint after the crash = %+v, %v; want %+v", st.Checkpoint, err, fixed)
	}
}

func sameCP(a, b abacus.Checkpoint) bool { return a.Count == b.Count && a.Through.Equal(b.Through) }

// TestEventLogSurvivesCrash: appends run while the in-memory event log is
// written out after each of them in the background; crash images are taken
// at many points, among them in the middle of a write-out (after the
// ingestion, before the records' deletion, or before the ingestion). Every
// acknowledged event must be in each image, each exactly once, and a second
// open of an image must show the same events.
func TestEventLogSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	fs := newCrashableFS()
	s, err := embedded.Open("db", embedded.Options{FS: fs, Logger: testLogger(t), EventLogFlushBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := s.CreateNamespace(ctx, nsConfig("memlog"))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Truncate(time.Second)
	type image struct {
		fs    *vfs.MemFS
		acked int // events acknowledged before the image
	}
	var images []image
	const batches, perBatch = 60, 7
	acked := 0
	for i := range batches {
		var ws []abacus.Write
		for j := range perBatch {
			ws = append(ws, abacus.Write{NS: ns, Event: abacus.Event{
				Counter: fmt.Sprintf("c%d", j%3), Time: base.Add(time.Duration(i*perBatch+j) * time.Millisecond),
				ID: fmt.Sprintf("e%d-%d", i, j), Delta: 1,
			}})
		}
		mustOK(t, s.Append(ctx, ws))
		acked += perBatch
		if i%3 == 0 {
			images = append(images, image{fs.crashClone(), acked})
		}
	}
	_ = s.Close()
	for k, img := range images {
		for round := range 2 {
			s2, err := embedded.Open("db", embedded.Options{FS: img.fs, Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("image %d, open %d: %v", k, round, err)
			}
			ids := map[string]int{}
			total := 0
			for c := range 3 {
				for _, e := range scan(t, s2, ns, fmt.Sprintf("c%d", c)) {
					ids[e.ID]++
					total++
				}
			}
			for id, n := range ids {
				if n != 1 {
					t.Errorf("image %d, open %d: event %s read %d times", k, round, id, n)
				}
			}
			_ = s2.Close()
			if total < img.acked {
				t.Errorf("image %d, open %d: %d events, want at least the %d acknowledged", k, round, total, img.acked)
			}
			for i := range img.acked / perBatch {
				for j := range perBatch {
					if ids[fmt.Sprintf("e%d-%d", i, j)] != 1 {
						t.Fatalf("image %d, open %d: acknowledged event e%d-%d missing", k, round, i, j)
					}
				}
			}
		}
	}
}
