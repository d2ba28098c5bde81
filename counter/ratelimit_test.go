package counter_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/counter"
)

// TestRateLimits: over a namespace's limit a call is refused with
// ResourceExhausted and a retry hint, counts nothing and takes nothing from
// the budget; a namespace without a limit is never refused; budgets refill
// with time.
func TestRateLimits(t *testing.T) {
	ctx := context.Background()
	limited := testNamespace("limited", abacus.Eventual)
	limited.RateLimit = &abacus.RateLimit{RequestsPerSecond: 2, IncrementsPerSecond: 4, Burst: 4}
	reqOnly := testNamespace("reqonly", abacus.BestEffort)
	reqOnly.RateLimit = &abacus.RateLimit{RequestsPerSecond: 1}
	f := newFixture(t, t.TempDir(), limited, reqOnly, testNamespace("free", abacus.Eventual))
	var refusals []string
	f.svc = counterWithRateLimited(t, f, func(ns, kind string) { refusals = append(refusals, ns+"/"+kind) })

	n := 0
	add := func(ns string) error {
		n++
		_, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: ns, Counter: "c", Delta: 1, Token: abacus.Token{ID: fmt.Sprint(n), Time: f.clk.t}})
		return err
	}
	batch := func(ns string, items int) error {
		var rs []abacus.AddRequest
		for range items {
			n++
			rs = append(rs, abacus.AddRequest{Namespace: ns, Counter: "c", Delta: 1, Token: abacus.Token{ID: fmt.Sprint(n), Time: f.clk.t}})
		}
		_, err := f.svc.AddBatch(ctx, rs)
		return err
	}
	get := func(ns string) error { _, err := f.svc.Get(ctx, abacus.Ref{Namespace: ns, Counter: "c"}); return err }
	steps := []struct {
		name    string
		do      func() error
		refused bool
	}{
		// Burst 4 requests, 4 increments.
		{"add 1", func() error { return add("limited") }, false},
		{"batch of 3: one request, 3 increments", func() error { return batch("limited", 3) }, false},
		{"increments spent", func() error { return add("limited") }, true},
		{"a read takes a request, no increment", func() error { return get("limited") }, false},
		{"batch over the burst is refused whatever the budget", func() error { return batch("limited", 5) }, true},
		{"no limit", func() error { return batch("free", 100) }, false},
		{"requests-only limit: first", func() error { return add("reqonly") }, false},
		{"requests-only limit: second", func() error { return add("reqonly") }, true},
	}
	for _, s := range steps {
		err := s.do()
		if !s.refused {
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			continue
		}
		if abacus.ErrorCode(err) != abacus.ResourceExhausted {
			t.Fatalf("%s: %v, want ResourceExhausted", s.name, err)
		}
	}
	if got := abacus.RetryAfter(add("limited")); got <= 0 || got > time.Second {
		t.Errorf("RetryAfter = %v, want a wait within a second", got)
	}
	if len(refusals) != 4 || refusals[0] != "limited/increments" || refusals[3] != "limited/increments" {
		t.Errorf("refusals reported: %q", refusals)
	}
	// A refused call counts nothing: 4 increments went in.
	f.clk.t = f.clk.t.Add(time.Minute)
	if _, err := f.rollup(ctx, mustNamespace(t, f, "limited"), "c"); err != nil {
		t.Fatal(err)
	}
	if got, err := f.svc.Get(ctx, abacus.Ref{Namespace: "limited", Counter: "c"}); err != nil || got != 4 {
		t.Fatalf("count %d, %v; want 4", got, err)
	}
	// After a minute the budget is back: a batch of 4 passes.
	if err := batch("limited", 4); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}

// counterWithRateLimited is a service over f's stores that reports rate
// limit refusals to refused.
func counterWithRateLimited(t *testing.T, f *fixture, refused func(ns, kind string)) *counter.Service {
	t.Helper()
	svc := counter.New(counter.Config{Namespaces: f.store, Backends: f.backends, Signaler: f.sig, Now: f.clk.now, RateLimited: refused})
	if err := svc.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc
}

func mustNamespace(t *testing.T, f *fixture, name string) *abacus.Namespace {
	t.Helper()
	ns, err := f.svc.GetNamespace(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// TestRefusalsCostNothing: however many refused calls race, none takes
// budget: once the bucket has refilled, the next call passes.
func TestRefusalsCostNothing(t *testing.T) {
	ctx := context.Background()
	ns := testNamespace("one", abacus.BestEffort)
	ns.RateLimit = &abacus.RateLimit{RequestsPerSecond: 1, Burst: 1}
	f := newFixture(t, t.TempDir(), ns)
	get := func() error { _, err := f.svc.Get(ctx, abacus.Ref{Namespace: "one", Counter: "c"}); return err }
	if err := get(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 50 {
				if err := get(); abacus.ErrorCode(err) != abacus.ResourceExhausted {
					t.Errorf("a call over the limit: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	f.clk.advance(1100 * time.Millisecond)
	if err := get(); err != nil {
		t.Fatalf("after the bucket refilled: %v", err)
	}
}
