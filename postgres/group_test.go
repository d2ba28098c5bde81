package postgres

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/jackc/pgx/v5"
)

// TestGroupCommit checks that concurrent Appends share transactions: 64
// goroutines appending one event per call take far fewer commits than calls.
// It counts commits twice: with Stats, and on the server, as the xact_commit
// of a database created for the test (every transaction of the store, its
// schema creation included), read once the store has closed its connections
// and so reported its statistics.
func TestGroupCommit(t *testing.T) {
	const goroutines, perG = 64, 20
	appends := int64(goroutines * perG)
	dbURL, xactCommits := dedicatedDatabase(t)
	s, err := Open(context.Background(), dbURL, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	ns := createNamespace(t, s, "group")
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				e := ev(fmt.Sprintf("c%d", (g+i)%8), time.Duration(i)*time.Second, fmt.Sprintf("%d-%d", g, i), 1)
				if err := s.Append(context.Background(), write(ns, e)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("%d appends: %d group commits (%.1f appends per commit), %d events", st.Appends, st.Commits, float64(st.Appends)/float64(st.Commits), st.Events)
	if st.Appends != appends {
		t.Fatalf("Stats.Appends = %d, want %d", st.Appends, appends)
	}
	if st.Commits == 0 || st.Commits > appends/4 {
		t.Fatalf("%d appends took %d group commits: no group commit", appends, st.Commits)
	}
	n := 0
	for c := range 8 {
		n += len(scan(t, s, ns, fmt.Sprintf("c%d", c)))
	}
	if int64(n) != appends {
		t.Fatalf("%d events stored, want %d", n, appends)
	}
	s.Close()
	closed = true
	commits := xactCommits()
	t.Logf("server: %d committed transactions in the test's database for %d appends (schema creation, namespace, partitions and scans included)", commits, appends)
	if commits > appends/4 {
		t.Fatalf("the server committed %d transactions for %d appends: no group commit", commits, appends)
	}
}

// dedicatedDatabase creates a database for one test and returns its URL and
// a function that returns its xact_commit once no session is connected to it
// (a backend reports its statistics when it exits). It skips the test if the
// server's URL cannot be rewritten or the user may not create databases.
func dedicatedDatabase(t *testing.T) (string, func() int64) {
	t.Helper()
	base := serverURL(t)
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		t.Skipf("ABACUS_TEST_POSTGRES is not a URL (%v); this test needs one to name a database of its own", err)
	}
	admin := connect(t)
	name := fmt.Sprintf("abacus_test_gc_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Skipf("cannot create a database for the test: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	read := func() int64 {
		ctx := context.Background()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var sessions int
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&sessions); err != nil {
				t.Fatal(err)
			}
			if sessions == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		var commits int64
		if _, err := admin.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
			t.Fatal(err)
		}
		if err := admin.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", name).Scan(&commits); err != nil {
			t.Fatal(err)
		}
		return commits
	}
	return u.String(), read
}

// blocker holds the row of a counter in the counters table locked from
// another session, so that a group writing to that counter waits, and the
// Appends made meanwhile queue up behind it.
type blocker struct {
	tx pgx.Tx
}

func block(t *testing.T, s *Store, ns *abacus.Namespace, counter string) *blocker {
	t.Helper()
	if err := s.Append(context.Background(), write(ns, ev(counter, 0, "block-setup", 1))); err != nil {
		t.Fatal(err)
	}
	tx, err := connect(t).Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), s.sql(`SELECT FROM {{S}}.counters WHERE ns_id = $1 AND counter = $2 FOR UPDATE`), int64(ns.ID), counter); err != nil {
		t.Fatal(err)
	}
	return &blocker{tx: tx}
}

func (b *blocker) release(t *testing.T) {
	t.Helper()
	if err := b.tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitQueued waits until a writer of q is running and n requests are
// queued behind it.
func waitQueued[T any](t *testing.T, q *groupQueue[T], what string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		q.mu.Lock()
		got, active := len(q.queue), q.active
		q.mu.Unlock()
		if got == n && active > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s queued, want %d", got, what, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// appendAsync starts an Append and returns the channel of its outcome.
func appendAsync(ctx context.Context, s *Store, ns *abacus.Namespace, evs ...abacus.Event) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.Append(ctx, write(ns, evs...)) }()
	return done
}

// TestGroupOutcomes puts Appends with every kind of outcome in one group and
// checks that each gets its own, as it would alone: a reused token or an
// event behind a rollup refuses only its own Append, duplicates within the
// group behave as if the Appends ran one after the other in queue order, and
// the group commits once.
func TestGroupOutcomes(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{Committers: 1, Timeout: 10 * time.Second})
	ns := createNamespace(t, s, "outcomes")
	if err := s.Append(ctx, write(ns, ev("c", time.Second, "x", 1))); err != nil {
		t.Fatal(err)
	}
	if err := s.Fence(ctx, ns, "f", t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	b := block(t, s, ns, "block")
	before := s.Stats()
	blocked := appendAsync(ctx, s, ns, ev("block", time.Second, "b", 1))
	waitQueued(t, s.group, "appends", 0) // taken by the committer, which waits for the lock

	cases := []struct {
		evs  []abacus.Event
		want abacus.Code
	}{
		{[]abacus.Event{ev("c", 2*time.Second, "a", 1)}, -1},
		{[]abacus.Event{ev("c", 3*time.Second, "b1", 1), ev("c", time.Second, "x", 2)}, abacus.AlreadyExists}, // reuses stored x
		{[]abacus.Event{ev("k", 0, "k", 5)}, -1},
		{[]abacus.Event{ev("k", 0, "k", 6)}, abacus.AlreadyExists}, // clashes with the one before
		{[]abacus.Event{ev("k", 0, "k", 5)}, -1},                   // same as the one before: shares its row
		{[]abacus.Event{ev("y", 0, "y", 1), ev("c", time.Second, "x", 3)}, abacus.AlreadyExists},
		{[]abacus.Event{ev("y", 0, "y", 2)}, -1}, // the one before it is refused, so this one wins y
		{[]abacus.Event{ev("f", 10*time.Second, "late", 1)}, abacus.FailedPrecondition},
		{[]abacus.Event{ev("f", 40*time.Second, "ok", 1)}, -1},
		{[]abacus.Event{ev("c", time.Second, "x", 1)}, -1}, // a retry of stored x
	}
	results := make([]<-chan error, len(cases))
	for i, tc := range cases {
		results[i] = appendAsync(ctx, s, ns, tc.evs...)
		waitQueued(t, s.group, "appends", i+1)
	}
	b.release(t)
	if err := <-blocked; err != nil {
		t.Fatalf("blocked append: %v", err)
	}
	for i, tc := range cases {
		if err := <-results[i]; abacus.ErrorCode(err) != tc.want {
			t.Errorf("append %d %v = %v, want code %v", i, tc.evs, err, tc.want)
		}
	}
	check := func(counter string, want ...string) {
		t.Helper()
		var got []string
		for _, e := range scan(t, s, ns, counter) {
			got = append(got, fmt.Sprintf("%s%+d", e.ID, e.Delta))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("counter %s: events %v, want %v", counter, got, want)
		}
	}
	check("c", "x+1", "a+1")
	check("k", "k+5")
	check("y", "y+2")
	check("f", "ok+1")
	if commits := s.Stats().Commits - before.Commits; commits != 2 {
		t.Errorf("%d commits for the blocked group and the next, want 2", commits)
	}
}

// TestCanceledCaller checks that a caller whose context ends does not break
// its group: it returns at once with its context's error, a queued Append is
// then never written, one already in a transaction still is, and the other
// Appends of the group succeed.
func TestCanceledCaller(t *testing.T) {
	s := openStore(t, Options{Committers: 1, Timeout: 10 * time.Second})
	ns := createNamespace(t, s, "cancel")
	b := block(t, s, ns, "block")

	inFlightCtx, cancelInFlight := context.WithCancel(context.Background())
	inFlight := appendAsync(inFlightCtx, s, ns, ev("block", time.Second, "in-flight", 1))
	waitQueued(t, s.group, "appends", 0)
	queuedCtx, cancelQueued := context.WithCancel(context.Background())
	queued := appendAsync(queuedCtx, s, ns, ev("c", time.Second, "queued", 1))
	waitQueued(t, s.group, "appends", 1)
	other := appendAsync(context.Background(), s, ns, ev("c", 2*time.Second, "other", 1))
	waitQueued(t, s.group, "appends", 2)

	start := time.Now()
	cancelInFlight()
	cancelQueued()
	if err := <-inFlight; abacus.ErrorCode(err) != abacus.Canceled {
		t.Fatalf("canceled in-flight append = %v, want Canceled", err)
	}
	if err := <-queued; abacus.ErrorCode(err) != abacus.Canceled {
		t.Fatalf("canceled queued append = %v, want Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("canceled appends returned after %s", d)
	}
	b.release(t)
	if err := <-other; err != nil {
		t.Fatalf("the other append of the group: %v", err)
	}
	var ids []string
	for _, e := range append(scan(t, s, ns, "block"), scan(t, s, ns, "c")...) {
		ids = append(ids, e.ID)
	}
	if fmt.Sprint(ids) != "[block-setup in-flight other]" {
		t.Fatalf("stored %v, want the in-flight append's and the other's, not the queued one's", ids)
	}
}

// TestManyGroupsSameKey races appends of one key with different payloads and
// appends of fresh keys through several committers; exactly one payload of
// the key wins, and every fresh event is stored.
func TestManyGroupsSameKey(t *testing.T) {
	s := openStore(t, Options{})
	ns := createNamespace(t, s, "samekey")
	var wg sync.WaitGroup
	var wins, fresh atomic.Int64
	for g := range 48 {
		wg.Go(func() {
			evs := []abacus.Event{ev("hot", 0, "contended", int64(g+1)), ev("hot", time.Second, fmt.Sprint("own-", g), 1)}
			err := s.Append(context.Background(), write(ns, evs...))
			switch abacus.ErrorCode(err) {
			case -1:
				wins.Add(1)
			case abacus.AlreadyExists:
			default:
				t.Errorf("append: %v", err)
			}
			if err := s.Append(context.Background(), write(ns, ev("cold", time.Second, fmt.Sprint("fresh-", g), 1))); err != nil {
				t.Errorf("append: %v", err)
			} else {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d appends of the contended key succeeded, want 1", wins.Load())
	}
	if got := len(scan(t, s, ns, "hot")); got != 2 {
		t.Fatalf("%d events of hot stored, want the winner's 2", got)
	}
	if got := len(scan(t, s, ns, "cold")); int64(got) != fresh.Load() {
		t.Fatalf("%d events of cold stored, want %d", got, fresh.Load())
	}
}
