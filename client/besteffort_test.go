package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// typedCalls are the client's writes to a namespace of the test's choosing,
// each named by the RPC it makes (the first item of adds, if any, is the
// one whose count the write changes).
var typedCalls = []struct {
	name, method string
	opts         []Option
	call         func(c *Client, ns string) error
	adds         bool // the call adds 2 to ns/c
}{
	{"AddCount", "AddCount", []Option{WithBatching(false)}, func(c *Client, ns string) error {
		return c.AddCount(context.Background(), ns, "c", 2)
	}, true},
	{"AddCount/batching", "AddCount", nil, func(c *Client, ns string) error {
		return c.AddCount(context.Background(), ns, "c", 2)
	}, true},
	{"AddAndGetCount", "AddAndGetCount", nil, func(c *Client, ns string) error {
		_, err := c.AddAndGetCount(context.Background(), ns, "c", 2)
		return err
	}, true},
	{"AddCounts", "AddCounts", nil, func(c *Client, ns string) error {
		return c.AddCounts(context.Background(), []Add{{ns, "c", 2}})
	}, true},
	{"ClearCount", "ClearCount", nil, func(c *Client, ns string) error {
		return c.ClearCount(context.Background(), ns, "c")
	}, false},
}

// nsKinds are the namespaces of the tests: one per counter type, one the
// server does not know, and one whose lookup fails.
var nsKinds = []struct {
	ns      string
	typ     abacusv1.CounterType // COUNTER_TYPE_UNSPECIFIED: not created
	failing bool                 // lookups fail with UNAVAILABLE
	durable bool                 // writes to it are deduplicated
}{
	{"be", abacusv1.CounterType_BEST_EFFORT, false, false},
	{"ev", abacusv1.CounterType_EVENTUAL, false, true},
	{"acc", abacusv1.CounterType_ACCURATE, false, true},
	{"gone", abacusv1.CounterType_COUNTER_TYPE_UNSPECIFIED, false, false},
	{"down", abacusv1.CounterType_EVENTUAL, true, false},
}

// TestBestEffortRetries applies the first attempt of a write and answers it
// UNAVAILABLE. A write to a namespace known to be EVENTUAL or ACCURATE is
// retried (and counted once). A write to a BEST_EFFORT namespace, or one
// whose type is unknown, is sent once and fails with an *AmbiguousError,
// unless WithBestEffortRetries is on: then it is retried, and a BEST_EFFORT
// add counted twice.
func TestBestEffortRetries(t *testing.T) {
	for _, w := range typedCalls {
		for _, k := range nsKinds {
			for _, optIn := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/opt-in=%v", w.name, k.ns, optIn), func(t *testing.T) {
					f, addr := startFake(t)
					f.setType(k.ns, k.typ)
					if k.failing {
						f.setLookupErr(status.Error(codes.Unavailable, "namespaces down"))
					}
					c := newClient(t, addr, append([]Option{WithClock(fixedClock), WithBestEffortRetries(optIn)}, w.opts...)...)
					f.setHook(func(ctx context.Context, method string, n int) error {
						if method == w.method && n == 1 {
							return status.Error(codes.Unavailable, "apply, then lose the answer")
						}
						return nil
					})
					err := w.call(c, k.ns)

					retried := k.durable || optIn
					attempts := len(f.calls(w.method))
					var amb *AmbiguousError
					switch {
					case retried && (err != nil || attempts != 2):
						t.Errorf("err = %v after %d attempts; want it retried once, and success", err, attempts)
					case !retried && attempts != 1:
						t.Errorf("%d attempts; want the write sent once", attempts)
					case !retried && (!errors.As(err, &amb) || status.Code(err) != codes.Unavailable):
						t.Errorf("err = %v (%T); want an *AmbiguousError of UNAVAILABLE", err, err)
					}
					if w.adds {
						want := int64(2)
						if k.typ == abacusv1.CounterType_BEST_EFFORT && optIn {
							want = 4 // the caller opted in to double counts
						}
						if got := f.count(k.ns, "c"); got != want {
							t.Errorf("count %d, want %d", got, want)
						}
					}
					if s := c.Stats(); s.Retries != int64(attempts-1) {
						t.Errorf("Stats().Retries = %d after %d attempts", s.Retries, attempts)
					}
				})
			}
		}
	}
}

// TestBestEffortHedging holds the first request of a write until a hedge
// arrives (or the attempt times out): a write to a BEST_EFFORT namespace is
// not hedged, unless WithBestEffortRetries is on; an EVENTUAL one is.
func TestBestEffortHedging(t *testing.T) {
	tests := []struct {
		ns     string
		optIn  bool
		hedged bool
	}{
		{"be", false, false},
		{"be", true, true},
		{"ns", false, true},
	}
	for _, w := range typedCalls {
		if w.name == "AddCount" || w.name == "AddCounts" { // AddCount/batching covers the lone add
			continue
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%s/opt-in=%v", w.name, tt.ns, tt.optIn), func(t *testing.T) {
				f, addr := startFake(t)
				f.setType("be", abacusv1.CounterType_BEST_EFFORT)
				c := newClient(t, addr, WithHedging(time.Millisecond), WithConns(2),
					WithAttemptTimeout(200*time.Millisecond), WithBestEffortRetries(tt.optIn), WithClock(fixedClock))
				hedge := make(chan struct{})
				f.setHook(func(ctx context.Context, method string, n int) error {
					switch {
					case method != w.method:
					case n == 1:
						select {
						case <-hedge:
							return status.Error(codes.Unavailable, "lost to the hedge")
						case <-ctx.Done():
							return status.FromContextError(ctx.Err()).Err()
						}
					case n == 2:
						close(hedge)
					}
					return nil
				})
				err := w.call(c, tt.ns)
				reqs := len(f.calls(w.method))
				var amb *AmbiguousError
				switch {
				case tt.hedged && (err != nil || reqs != 2 || c.Stats().Hedges != 1):
					t.Errorf("err = %v, %d requests, %d hedges; want success through one hedge", err, reqs, c.Stats().Hedges)
				case !tt.hedged && (reqs != 1 || c.Stats().Hedges != 0):
					t.Errorf("%d requests, %d hedges; want one request and no hedge", reqs, c.Stats().Hedges)
				case !tt.hedged && !errors.As(err, &amb):
					t.Errorf("err = %v (%T); want an *AmbiguousError (the attempt timed out)", err, err)
				}
			})
		}
	}
}

// TestMixedBatch queues adds to an EVENTUAL and a BEST_EFFORT namespace
// behind a held call, so that they leave in one natural batch, and loses
// the answer of the first attempt of every request. The EVENTUAL adds are
// sent apart and retried; the BEST_EFFORT ones are sent once and their
// callers get an *AmbiguousError, whether the batch failed with a
// retryable error or with one that makes the client re-send items alone.
// With WithBestEffortRetries on, the batch stays whole and is retried or
// re-sent, and the BEST_EFFORT adds are counted twice.
func TestMixedBatch(t *testing.T) {
	tests := []struct {
		name     string
		optIn    bool
		internal bool // the batch fails with INTERNAL after applying, not UNAVAILABLE
	}{
		{"unavailable", false, false},
		{"unavailable/opt-in", true, false},
		{"internal", false, true},
		{"internal/opt-in", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, addr := startFake(t)
			f.setType("be", abacusv1.CounterType_BEST_EFFORT)
			c := newClient(t, addr, WithBatchesInFlight(1), WithBestEffortRetries(tt.optIn))
			g := newGate()
			f.setHook(func(ctx context.Context, method string, n int) error {
				switch {
				case method == "AddCount" && n == 1:
					return g.wait(ctx)
				case method == "AddCounts" && tt.internal:
					return status.Error(codes.Internal, "apply, then fail")
				}
				return nil
			})
			first := make(chan error, 1)
			go func() { first <- c.AddCount(context.Background(), "ns", "first", 1) }()
			eventually(t, "the first call in flight", func() bool { return len(f.calls("AddCount")) == 1 })
			if !tt.internal {
				f.setLoseFirst(true)
			}

			refs := []Ref{{"ns", "a"}, {"be", "a"}, {"ns", "b"}, {"be", "b"}}
			errs := make([]error, len(refs))
			var wg sync.WaitGroup
			for i, r := range refs {
				wg.Go(func() { errs[i] = c.AddCount(context.Background(), r.Namespace, r.Counter, 1) })
			}
			eventually(t, "callers to queue", func() bool { return c.adds.queued() == len(refs) })
			if !tt.optIn {
				eventually(t, "the types to be known", func() bool { return typesSettled(c, "ns", "be") })
			}
			g.open()
			wg.Wait()
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			for i, r := range refs {
				var amb *AmbiguousError
				wantCount := int64(1)
				switch {
				case r.Namespace == "ns" || tt.optIn:
					if errs[i] != nil {
						t.Errorf("%v: %v, want success", r, errs[i])
					}
					if r.Namespace == "be" {
						wantCount = 2
					}
				case !errors.As(errs[i], &amb):
					t.Errorf("%v: %v (%T), want an *AmbiguousError", r, errs[i], errs[i])
				}
				if got := f.count(r.Namespace, r.Counter); got != wantCount {
					t.Errorf("%v: count %d, want %d", r, got, wantCount)
				}
			}
			for _, r := range f.calls("") {
				if tt.optIn {
					continue
				}
				ns := map[string]bool{}
				for _, a := range r.adds() {
					ns[a.GetNamespace()] = true
				}
				if len(ns) > 1 {
					t.Errorf("%s carried adds of %d namespaces; want BEST_EFFORT adds sent apart", r.method, len(ns))
				}
			}
		})
	}
}

// settableClock is a clock that a test moves.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) read() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestCounterTypeRefresh checks that the client looks a namespace's type up
// once per TTL, not once per write, and sees a namespace that became
// BEST_EFFORT (deleted and created anew) once the TTL has passed: its
// writes are then no longer retried.
func TestCounterTypeRefresh(t *testing.T) {
	f, addr := startFake(t)
	f.setType("flip", abacusv1.CounterType_EVENTUAL)
	clock := &settableClock{now: t0}
	c := newClient(t, addr, WithClock(clock.read), WithCounterTypeTTL(30*time.Second), WithBatching(false))
	f.setLoseFirst(true)
	add := func() (attempts int, err error) {
		before := len(f.calls("AddCount"))
		err = c.AddCount(context.Background(), "flip", "c", 1)
		return len(f.calls("AddCount")) - before, err
	}

	// Concurrent first writes start one lookup between them.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if err := c.AddCount(context.Background(), "flip", "c", 1); err != nil {
				t.Errorf("EVENTUAL add: %v", err)
			}
		})
	}
	wg.Wait()
	if n, err := add(); n != 2 || err != nil {
		t.Fatalf("EVENTUAL add: %d attempts, %v; want a retry and success", n, err)
	}
	if got := f.count("flip", "c"); got != 17 {
		t.Errorf("count %d after 17 EVENTUAL adds, each retried once", got)
	}

	f.setType("flip", abacusv1.CounterType_BEST_EFFORT)
	clock.advance(29 * time.Second)
	if n, err := add(); n != 2 || err != nil {
		t.Errorf("within the TTL: %d attempts, %v; want the cached EVENTUAL type to allow a retry", n, err)
	}
	if got := f.lookupCount(); got != 1 {
		t.Errorf("%d lookups for 18 writes within the TTL, want 1", got)
	}

	clock.advance(time.Second) // the TTL has passed
	n, err := add()
	var amb *AmbiguousError
	if n != 1 || !errors.As(err, &amb) {
		t.Errorf("after the TTL: %d attempts, %v; want one attempt and an *AmbiguousError", n, err)
	}
	if got, want := f.lookupCount(), 2; got != want {
		t.Errorf("%d lookups, want %d", got, want)
	}
	if got := c.Stats().Lookups; got != 2 {
		t.Errorf("Stats().Lookups = %d, want 2", got)
	}
}

// TestLookupFailure checks that a namespace whose type cannot be looked up
// is still written to (its writes are just not retried), that a failed
// lookup is tried again within a second, not at every write, and that with
// WithBestEffortRetries on the client makes no lookups at all.
func TestLookupFailure(t *testing.T) {
	f, addr := startFake(t)
	f.setLookupErr(status.Error(codes.Unavailable, "namespaces down"))
	clock := &settableClock{now: t0}
	c := newClient(t, addr, WithClock(clock.read))
	for range 5 {
		if err := c.AddCount(context.Background(), "ns", "c", 1); err != nil {
			t.Fatalf("add while lookups fail: %v", err)
		}
	}
	eventually(t, "the lookup to end", func() bool { return typesSettled(c, "ns") })
	if got := f.lookupCount(); got != 1 {
		t.Errorf("%d lookups for 5 writes, want 1", got)
	}

	// The namespace service is back: the next write after a second looks
	// the type up again, and its failed attempt waits for the answer.
	f.setLookupErr(nil)
	clock.advance(time.Second)
	f.setLoseFirst(true)
	if err := c.AddCount(context.Background(), "ns", "c", 1); err != nil {
		t.Errorf("add once lookups work again: %v; want it retried", err)
	}
	if got := f.lookupCount(); got != 2 {
		t.Errorf("%d lookups, want 2", got)
	}

	f2, addr2 := startFake(t)
	c2 := newClient(t, addr2, WithBestEffortRetries(true))
	if err := c2.AddCount(context.Background(), "ns", "c", 1); err != nil {
		t.Fatal(err)
	}
	if f2.lookupCount() != 0 || c2.Stats().Lookups != 0 {
		t.Errorf("%d lookups with WithBestEffortRetries(true), want none", f2.lookupCount())
	}
}

// TestNodeBestEffort drives a real node through a client whose every first
// attempt of an AddCount is applied and then answered UNAVAILABLE (a lost
// answer, made by a client interceptor). The node does not deduplicate
// BEST_EFFORT adds, so the client must not retry them unless told to.
func TestNodeBestEffort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	n := startNode(t)
	for _, optIn := range []bool{false, true} {
		var mu sync.Mutex
		lost := map[string]bool{}
		loseFirst := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			err := invoker(ctx, method, req, reply, cc, opts...)
			a, ok := req.(*abacusv1.AddCountRequest)
			if err != nil || !ok || method != abacusv1.CounterService_AddCount_FullMethodName {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if tok := a.GetIdempotencyToken().GetToken(); !lost[tok] {
				lost[tok] = true
				return status.Error(codes.Unavailable, "answer lost")
			}
			return nil
		}
		c := newClient(t, n.GRPCAddr(), WithBestEffortRetries(optIn),
			WithDialOptions(grpc.WithUnaryInterceptor(loseFirst)))
		for _, ns := range []string{"be", "acc"} {
			t.Run(fmt.Sprintf("%s/opt-in=%v", ns, optIn), func(t *testing.T) {
				counter := fmt.Sprint("lost-", optIn)
				err := c.AddCount(context.Background(), ns, counter, 1)
				want := int64(1)
				var amb *AmbiguousError
				switch {
				case ns == "be" && !optIn:
					if !errors.As(err, &amb) {
						t.Errorf("err = %v (%T), want an *AmbiguousError", err, err)
					}
				case err != nil:
					t.Errorf("err = %v, want success after a retry", err)
				case ns == "be":
					want = 2 // retried, as the caller opted in to
				}
				if got, err := c.GetCount(context.Background(), ns, counter); err != nil || got != want {
					t.Errorf("count = %d, %v; want %d", got, err, want)
				}
			})
		}
	}
}
