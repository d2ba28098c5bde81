package counter_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// TestRetryAfterTheWindow retries writes after their accept window has
// passed: a retry whose event is stored is answered as inside the window and
// counted once, another payload is AlreadyExists, and only an event that is
// not stored is refused with FailedPrecondition.
func TestRetryAfterTheWindow(t *testing.T) {
	ctx := context.Background()
	const ok abacus.Code = -1 // abacus.ErrorCode(nil)
	for _, typ := range []abacus.CounterType{abacus.Eventual, abacus.Accurate} {
		t.Run(typ.String(), func(t *testing.T) {
			ns := testNamespace("n", typ)
			f := newFixture(t, t.TempDir(), ns)
			ns, err := f.svc.GetNamespace(ctx, "n")
			if err != nil {
				t.Fatal(err)
			}
			t0 := f.clk.t
			add := func(id string, delta int64) abacus.AddRequest {
				return abacus.AddRequest{Namespace: "n", Counter: "c", Delta: delta, Token: abacus.Token{ID: id, Time: t0}}
			}
			if _, err := f.svc.Add(ctx, add("a", 5)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := f.svc.AddAndGet(ctx, add("b", 7)); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.AddBatch(ctx, []abacus.AddRequest{add("x", 1), add("y", 2)}); err != nil {
				t.Fatal(err)
			}
			clearTok := abacus.Token{ID: "clr", Time: t0.Add(-time.Millisecond)}
			if _, err := f.svc.Clear(ctx, abacus.Ref{Namespace: "n", Counter: "other"}, clearTok); err != nil {
				t.Fatal(err)
			}
			f.clk.t = t0.Add(6 * time.Second) // accept_limit is 2s
			if _, err := f.rollup(ctx, ns, "c"); err != nil {
				t.Fatal(err)
			}
			nowTok := abacus.Token{ID: "now", Time: f.clk.t}
			steps := []struct {
				name string
				do   func() error
				want abacus.Code
				msg  string
			}{
				{"add, stored", func() error { _, err := f.svc.Add(ctx, add("a", 5)); return err }, ok, ""},
				{"add and get, stored", func() error {
					n, tok, err := f.svc.AddAndGet(ctx, add("b", 7))
					if err == nil && (n != 15 || tok.ID != "b" || !tok.Time.Equal(t0)) {
						t.Errorf("AddAndGet retry = %d, %v; want 15 and the request's token", n, tok)
					}
					return err
				}, ok, ""},
				{"batch, stored and new", func() error {
					_, err := f.svc.AddBatch(ctx, []abacus.AddRequest{add("x", 1),
						{Namespace: "n", Counter: "c", Delta: 100, Token: nowTok}, add("y", 2)})
					return err
				}, ok, ""},
				{"clear, stored", func() error {
					_, err := f.svc.Clear(ctx, abacus.Ref{Namespace: "n", Counter: "other"}, clearTok)
					return err
				}, ok, ""},
				{"add, another delta", func() error { _, err := f.svc.Add(ctx, add("a", 6)); return err },
					abacus.AlreadyExists, `idempotency token "a"`},
				{"add where a clear was", func() error {
					_, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "n", Counter: "other", Delta: 1, Token: clearTok})
					return err
				}, abacus.AlreadyExists, `idempotency token "clr"`},
				{"add, not stored", func() error { _, err := f.svc.Add(ctx, add("never", 5)); return err },
					abacus.FailedPrecondition, "outside the accept window"},
				{"add, other counter", func() error {
					_, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "n", Counter: "d", Delta: 5, Token: abacus.Token{ID: "a", Time: t0}})
					return err
				}, abacus.FailedPrecondition, "outside the accept window"},
				{"batch with an item not stored", func() error {
					_, err := f.svc.AddBatch(ctx, []abacus.AddRequest{add("x", 1), add("never", 1)})
					return err
				}, abacus.FailedPrecondition, "adds[1]"},
			}
			for _, s := range steps {
				err := s.do()
				if got := abacus.ErrorCode(err); got != s.want || err != nil && !strings.Contains(err.Error(), s.msg) {
					t.Errorf("%s: %v (code %v), want %v with %q", s.name, err, got, s.want, s.msg)
				}
			}
			// Counted once each; only the new batch item adds.
			f.clk.t = f.clk.t.Add(10 * time.Second)
			if _, err := f.rollup(ctx, ns, "c"); err != nil {
				t.Fatal(err)
			}
			if got, err := f.svc.Get(ctx, abacus.Ref{Namespace: "n", Counter: "c"}); err != nil || got != 115 {
				t.Errorf("count = %d, %v; want 115 (5+7+1+2+100)", got, err)
			}
			// Past retention the event is gone, and the refusal says that
			// nobody can tell any more.
			f.clk.t = t0.Add(ns.Retention.DeleteAfter + 2*ns.Partition.SliceWidth)
			if _, err := f.svc.Retain(ctx); err != nil {
				t.Fatal(err)
			}
			_, err = f.svc.Add(ctx, add("a", 5))
			if abacus.ErrorCode(err) != abacus.FailedPrecondition || !strings.Contains(err.Error(), "retention") {
				t.Errorf("retry after retention: %v, want FailedPrecondition naming retention", err)
			}
		})
	}
}

// TestRetryWhileFirstAttemptCommits retries a write after its window while
// its first attempt is still on its way to the store (a stalled commit): the
// retry may answer FailedPrecondition ("not stored") only if the first
// attempt can then no longer be stored.
func TestRetryWhileFirstAttemptCommits(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, t.TempDir(), testNamespace("ns", abacus.Eventual))
	entered, release := make(chan struct{}), make(chan struct{})
	stall := &stallingEvents{EventStore: f.store, before: func() {
		close(entered)
		<-release
	}}
	svc := f.stalledService(t, stall)
	req := abacus.AddRequest{Namespace: "ns", Counter: "c", Delta: 1, Token: abacus.Token{ID: "t", Time: f.clk.t}}
	first := make(chan error, 1)
	go func() { _, err := svc.Add(ctx, req); first <- err }()
	<-entered
	f.clk.t = f.clk.t.Add(3 * time.Second) // accept_limit is 2s
	_, retryErr := svc.Add(ctx, req)
	close(release)
	firstErr := <-first
	switch {
	case retryErr == nil:
		t.Fatalf("retry acknowledged a write that was not stored yet")
	case abacus.ErrorCode(retryErr) != abacus.FailedPrecondition:
		t.Fatalf("retry: %v, want FailedPrecondition", retryErr)
	case firstErr == nil:
		t.Fatalf("the retry said the write is not stored, and then the first attempt stored it")
	}
	ns, _ := svc.GetNamespace(ctx, "ns")
	f.clk.t = f.clk.t.Add(10 * time.Second)
	if _, err := f.rollup(ctx, ns, "c"); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.Get(ctx, abacus.Ref{Namespace: "ns", Counter: "c"}); err != nil || got != 0 {
		t.Errorf("count = %d, %v; want 0", got, err)
	}
}
