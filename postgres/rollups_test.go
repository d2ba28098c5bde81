package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// TestAdvanceCheckpointStaleSnapshot makes AdvanceCheckpoint's statement
// take its snapshot while another transaction holds another checkpoint
// uncommitted (a newer one, a repaired count at the same time, or the first
// one of a counter): the compare-and-swap then fails against the committed
// row, which the statement's snapshot cannot see, and the checkpoint
// returned must still be the committed one, not the one it started from.
func TestAdvanceCheckpointStaleSnapshot(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	ns := createNamespace(t, s, "stale")
	cp := func(n int64, secs time.Duration) abacus.Checkpoint {
		return abacus.Checkpoint{Count: abacus.SumOf(n), Through: t0.Add(secs * time.Second)}
	}
	const update = `UPDATE {{S}}.checkpoints SET count_hi = 0, count_lo = $3, through = $4 WHERE ns_id = $1 AND counter = $2`
	const insert = `INSERT INTO {{S}}.checkpoints (ns_id, counter, count_hi, count_lo, through) VALUES ($1, $2, 0, $3, $4)`
	for _, tc := range []struct {
		counter    string
		from       abacus.Checkpoint // stored before, unless zero
		sql        string
		concurrent abacus.Checkpoint
		single     bool
	}{
		{"advanced", cp(10, 10), update, cp(50, 50), true},
		{"repaired", cp(10, 10), update, cp(3, 10), true},
		{"created", abacus.Checkpoint{}, insert, cp(5, 5), true},
		{"advanced-batch", cp(10, 10), update, cp(50, 50), false},
		{"repaired-batch", cp(10, 10), update, cp(3, 10), false},
		{"created-batch", abacus.Checkpoint{}, insert, cp(5, 5), false},
	} {
		t.Run(tc.counter, func(t *testing.T) {
			if !tc.from.Through.IsZero() {
				if _, err := s.AdvanceCheckpoint(ctx, ns, tc.counter, abacus.Checkpoint{}, tc.from); err != nil {
					t.Fatal(err)
				}
			}
			tx, err := connect(t).Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }()
			n, _ := tc.concurrent.Count.Int64()
			if _, err := tx.Exec(ctx, s.sql(tc.sql), int64(ns.ID), tc.counter, n, tc.concurrent.Through.UnixNano()); err != nil {
				t.Fatal(err)
			}
			done := make(chan abacus.Checkpoint, 1)
			go func() {
				to := cp(20, 20)
				var got abacus.Checkpoint
				var err error
				if tc.single {
					got, err = s.AdvanceCheckpoint(ctx, ns, tc.counter, tc.from, to)
				} else {
					var cps []abacus.Checkpoint
					if cps, err = s.AdvanceCheckpoints(ctx, ns, []string{tc.counter}, []abacus.Checkpoint{tc.from}, []abacus.Checkpoint{to}); err == nil {
						got = cps[0]
					}
				}
				if err != nil {
					t.Error(err)
				}
				done <- got
			}()
			time.Sleep(100 * time.Millisecond) // the statement waits for the row
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if got := <-done; !got.Equal(tc.concurrent) {
				t.Fatalf("AdvanceCheckpoint = %+v, want the committed %+v", got, tc.concurrent)
			}
		})
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
