package embedded_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/embedded"
)

// TestIndexedIdempotency exercises the in-memory path of Append — events
// with current times, which the conformance suite's 2024 times never reach —
// and checks that it keeps the contract: retries are no-ops, a reused token
// with another payload is refused, concurrent appends of one key have one
// winner, fences and checkpoints refuse late events, and all of it holds
// after a restart, when the indexes start empty.
func TestIndexedIdempotency(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, embedded.Options{Logger: testLogger(t)})
	ns, err := s.CreateNamespace(ctx, nsConfig("idx"))
	if err != nil {
		t.Fatal(err)
	}
	// Past the store's restart margin, so the indexes answer.
	base := time.Now().Add(2 * time.Minute)
	ev := writesAt(ns, base)
	count := func(s *embedded.Store, counter string) int {
		n := 0
		if err := s.Scan(ctx, ns, counter, abacus.Range{}, func(abacus.Event) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	mustOK(t, s.Append(ctx, ev("c", 0, "a", 1)))
	mustOK(t, s.Append(ctx, ev("c", 0, "a", 1)))
	if got := abacus.ErrorCode(s.Append(ctx, ev("c", 0, "a", 2))); got != abacus.AlreadyExists {
		t.Fatalf("reused token: %v, want AlreadyExists", got)
	}
	if n := count(s, "c"); n != 1 {
		t.Fatalf("%d events after retries, want 1", n)
	}

	// Many goroutines, one key, different payloads: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Append(ctx, ev("race", time.Second, "k", int64(g+1)))
			switch abacus.ErrorCode(err) {
			case -1:
				mu.Lock()
				wins++
				mu.Unlock()
			case abacus.AlreadyExists:
			default:
				t.Errorf("append: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || count(s, "race") != 1 {
		t.Fatalf("%d winners, %d events; want 1 and 1", wins, count(s, "race"))
	}

	// A fence, and a checkpoint written without one, refuse later events
	// behind them; a retry of a stored event behind them still succeeds.
	mustOK(t, s.Fence(ctx, ns, "c", base.Add(10*time.Second)))
	if got := abacus.ErrorCode(s.Append(ctx, ev("c", 5*time.Second, "late", 1))); got != abacus.FailedPrecondition {
		t.Fatalf("behind the fence: %v", got)
	}
	mustOK(t, s.Append(ctx, ev("c", 0, "a", 1)))
	if _, err := s.AdvanceCheckpoint(ctx, ns, "d", abacus.Checkpoint{}, abacus.Checkpoint{Through: base.Add(20 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := abacus.ErrorCode(s.Append(ctx, ev("d", 15*time.Second, "late", 1))); got != abacus.FailedPrecondition {
		t.Fatalf("behind the checkpoint: %v", got)
	}

	// After a restart the indexes are empty: the store must fall back to
	// reads for every event that an earlier process may have written.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, dir, embedded.Options{Logger: testLogger(t)})
	if got := abacus.ErrorCode(s2.Append(ctx, ev("c", 0, "a", 2))); got != abacus.AlreadyExists {
		t.Fatalf("reused token after restart: %v, want AlreadyExists", got)
	}
	mustOK(t, s2.Append(ctx, ev("c", 0, "a", 1)))
	if got := abacus.ErrorCode(s2.Append(ctx, ev("d", 15*time.Second, "late2", 1))); got != abacus.FailedPrecondition {
		t.Fatalf("behind the checkpoint after restart: %v", got)
	}
	if n := count(s2, "c"); n != 1 {
		t.Fatalf("%d events after restart retries, want 1", n)
	}
	for i := range 100 {
		mustOK(t, s2.Append(ctx, ev("many", time.Duration(i)*time.Millisecond, fmt.Sprint(i), 1)))
		mustOK(t, s2.Append(ctx, ev("many", time.Duration(i)*time.Millisecond, fmt.Sprint(i), 1)))
	}
	if n := count(s2, "many"); n != 100 {
		t.Fatalf("%d events, want 100", n)
	}
}

// TestEventMarkAfterRestart: the high-water mark of event times is written
// only when a batch passes it, and ahead of need; every event appended
// before a restart, with or without a mark in its batch, must still be
// found by the idempotency check after it.
func TestEventMarkAfterRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, embedded.Options{Logger: testLogger(t)})
	ns, err := s.CreateNamespace(ctx, nsConfig("mark"))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(2 * time.Minute).Truncate(time.Second)
	write := writesAt(ns, base)
	ev := func(off time.Duration, id string, d int64) []abacus.Write { return write("c", off, id, d) }
	offsets := []time.Duration{0, 500 * time.Millisecond, 3 * time.Second, 3500 * time.Millisecond, 9 * time.Second}
	for i, off := range offsets {
		if err := s.Append(ctx, ev(off, fmt.Sprint(i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	// Last-write times are stored rounded up to a grid, and a write within
	// a step already stored carries none: the stored time must still cover
	// the latest of them after the restart.
	hot := base.Add(10 * time.Second)
	for i := range 5 {
		w := []abacus.Write{{NS: ns, Event: abacus.Event{Counter: "hot", Time: hot.Add(time.Duration(i) * 10 * time.Millisecond), ID: fmt.Sprint(i), Delta: 1}}}
		if err := s.Append(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, dir, embedded.Options{Logger: testLogger(t)})
	st, err := s2.RollupState(ctx, ns, "hot")
	latestHot := hot.Add(40 * time.Millisecond)
	if err != nil || st.LastWrite.Before(latestHot) || !st.LastWrite.Before(latestHot.Add(abacus.LastWriteResolution)) {
		t.Fatalf("LastWrite after restart = %v, %v; want in [%v, +%v)", st.LastWrite, err, latestHot, abacus.LastWriteResolution)
	}
	for i, off := range offsets {
		if got := abacus.ErrorCode(s2.Append(ctx, ev(off, fmt.Sprint(i), 2))); got != abacus.AlreadyExists {
			t.Errorf("token of the event at +%v reused after restart: code %v, want AlreadyExists", off, got)
		}
	}
}
