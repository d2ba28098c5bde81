package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// TestAdvanceCheckpointStaleSnapshot makes AdvanceCheckpoint's statement
// take its snapshot while another transaction holds a newer checkpoint
// uncommitted: the conditional upsert then refuses the older one against the
// committed newer row, which the statement's snapshot cannot see, and the
// checkpoint returned must still be the newer one.
func TestAdvanceCheckpointStaleSnapshot(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	ns := createNamespace(t, s, "stale")
	if _, err := s.AdvanceCheckpoint(ctx, ns, "c", abacus.Checkpoint{Count: abacus.SumOf(10), Through: t0.Add(10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	tx, err := connect(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, s.sql(`UPDATE {{S}}.checkpoints SET count_hi = 0, count_lo = 50, through = $3 WHERE ns_id = $1 AND counter = $2`),
		int64(ns.ID), "c", t0.Add(50*time.Second).UnixNano()); err != nil {
		t.Fatal(err)
	}
	done := make(chan abacus.Checkpoint, 1)
	go func() {
		cp, err := s.AdvanceCheckpoint(ctx, ns, "c", abacus.Checkpoint{Count: abacus.SumOf(20), Through: t0.Add(20 * time.Second)})
		if err != nil {
			t.Error(err)
		}
		done <- cp
	}()
	time.Sleep(100 * time.Millisecond) // the upsert waits for the row
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	want := abacus.Checkpoint{Count: abacus.SumOf(50), Through: t0.Add(50 * time.Second)}
	if got := <-done; got.Count != want.Count || !got.Through.Equal(want.Through) {
		t.Fatalf("AdvanceCheckpoint = %+v, want the newer stored %+v", got, want)
	}
}

// TestFenceWaitsForGroupInFlight stalls a group after it has locked its
// counter's row (its event insert waits for another transaction holding the
// same key), and checks that Fence waits for the group to commit, so a scan
// after Fence sees the group's event, and that appends behind the fence are
// refused afterwards.
func TestFenceWaitsForGroupInFlight(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{Timeout: 10 * time.Second})
	ns := createNamespace(t, s, "fenced")
	if err := s.Append(ctx, write(ns, ev("c", 5*time.Second, "setup", 1))); err != nil {
		t.Fatal(err)
	}
	l, _ := abacus.LayoutOf(ns)
	n := t0.Add(10 * time.Second).UnixNano()
	tx, err := connect(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, s.sql(`INSERT INTO {{S}}.events VALUES ($1, $2, 'c', 0, 0, $3, 'k', 1, false)`), int64(l.NSID), l.Slice(n), n); err != nil {
		t.Fatal(err)
	}
	appended := appendAsync(ctx, s, ns, ev("c", 10*time.Second, "k", 1))
	time.Sleep(100 * time.Millisecond) // the group has locked c's row and waits for k
	fenced := make(chan error, 1)
	go func() { fenced <- s.Fence(ctx, ns, "c", t0.Add(30*time.Second)) }()
	select {
	case err := <-fenced:
		t.Fatalf("Fence returned (%v) while a group writing to the counter was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-appended; err != nil {
		t.Fatalf("the stalled append: %v", err)
	}
	if err := <-fenced; err != nil {
		t.Fatal(err)
	}
	if got := scan(t, s, ns, "c"); len(got) != 2 {
		t.Fatalf("after Fence, scan sees %v; want the stalled append's event too", got)
	}
	if err := s.Append(ctx, write(ns, ev("c", 20*time.Second, "late", 1))); abacus.ErrorCode(err) != abacus.FailedPrecondition {
		t.Fatalf("append behind the fence = %v, want FailedPrecondition", err)
	}
}
