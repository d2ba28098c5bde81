package client

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// holdFirst makes the fake hold the first n lone AddCount requests (the
// calls that found a free slot) until g opens.
func holdFirst(f *fake, g *gate, n int) {
	f.setHook(func(ctx context.Context, method string, k int) error {
		if method == "AddCount" && k <= n {
			return g.wait(ctx)
		}
		return nil
	})
}

// TestNaturalBatching queues callers behind held batches and checks that
// they leave together, in batches of at most WithMaxBatch, and that each
// caller returns only once its own add has been applied.
func TestNaturalBatching(t *testing.T) {
	tests := []struct {
		name               string
		inFlight, maxBatch int
		callers            int
		maxAddCounts       int // AddCounts RPCs the queued callers may take
	}{
		{"two in flight", 2, 1000, 64, 1},
		{"one in flight", 1, 1000, 64, 1},
		{"small batches", 1, 10, 64, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, addr := startFake(t)
			c := newClient(t, addr, WithBatchesInFlight(tt.inFlight), WithMaxBatch(tt.maxBatch))
			g := newGate()
			holdFirst(f, g, tt.inFlight)

			var wg sync.WaitGroup
			var returned atomic.Int32
			errs := make([]error, tt.callers)
			for i := range tt.callers {
				wg.Go(func() {
					counter := fmt.Sprint("c", i)
					errs[i] = c.AddCount(context.Background(), "ns", counter, 1)
					if errs[i] == nil && f.count("ns", counter) != 1 {
						errs[i] = fmt.Errorf("returned before %s was applied", counter)
					}
					returned.Add(1)
				})
			}
			queued := tt.callers - tt.inFlight
			eventually(t, "callers to queue", func() bool {
				return len(f.calls("AddCount")) == tt.inFlight && c.adds.queued() == queued
			})
			if n := returned.Load(); n != 0 {
				t.Fatalf("%d callers returned while their batches were held", n)
			}
			g.open()
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("caller %d: %v", i, err)
				}
			}
			batches := f.calls("AddCounts")
			if len(batches) > tt.maxAddCounts {
				t.Errorf("%d queued callers took %d AddCounts RPCs, want ≤ %d", queued, len(batches), tt.maxAddCounts)
			}
			items := 0
			for _, b := range batches {
				n := len(b.adds())
				if n > tt.maxBatch {
					t.Errorf("a batch carried %d items, more than WithMaxBatch(%d)", n, tt.maxBatch)
				}
				items += n
			}
			if items != queued {
				t.Errorf("batches carried %d items, want the %d queued", items, queued)
			}
			if s := c.Stats(); s.AddItems != int64(tt.callers) {
				t.Errorf("Stats().AddItems = %d, want %d", s.AddItems, tt.callers)
			}
		})
	}
}

// TestNoLinger checks that a call that finds no batch in flight goes out at
// once and alone: sequential calls each make their own RPC before they
// return, and a lone call reaches the server while nothing else happens.
func TestNoLinger(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, addr)
	for i := range 5 {
		if err := c.AddCount(context.Background(), "ns", "c", 1); err != nil {
			t.Fatal(err)
		}
		if got := len(f.calls("")); got != i+1 {
			t.Fatalf("after %d sequential calls the server saw %d RPCs", i+1, got)
		}
	}
	for _, r := range f.calls("") {
		if r.method != "AddCount" || len(r.adds()) != 1 {
			t.Errorf("a lone call went out as %s with %d items; want a unary AddCount", r.method, len(r.adds()))
		}
	}

	// A lone call is on the wire while its caller still waits for it.
	g := newGate()
	f.setHook(func(ctx context.Context, method string, n int) error { return g.wait(ctx) })
	f.mu.Lock()
	f.received = make(chan string, 16)
	f.mu.Unlock()
	done := make(chan error, 1)
	go func() { _, err := c.GetCount(context.Background(), "ns", "c"); done <- err }()
	if m := <-f.received; m != "GetCount" {
		t.Fatalf("server received %s, want GetCount", m)
	}
	select {
	case err := <-done:
		t.Fatalf("GetCount returned before its RPC was answered: %v", err)
	default:
	}
	g.open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestBadItemFailsOnlyItsCaller checks that when the server refuses a whole
// batch for one item, the items are re-sent alone and only the bad item's
// caller gets the error, a plain one (nothing was applied).
func TestBadItemFailsOnlyItsCaller(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, addr, WithBatchesInFlight(1))
	g := newGate()
	holdFirst(f, g, 1)
	first := make(chan error, 1)
	go func() { first <- c.AddCount(context.Background(), "ns", "first", 1) }()
	eventually(t, "the first call in flight", func() bool { return len(f.calls("AddCount")) == 1 })

	names := []string{"a", "b", "bad", "c", "d"}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { errs[i] = c.AddCount(context.Background(), "ns", name, 1) })
	}
	eventually(t, "callers to queue", func() bool { return c.adds.queued() == len(names) })
	g.open()
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, name := range names {
		var amb *AmbiguousError
		switch {
		case name == "bad" && status.Code(errs[i]) != codes.InvalidArgument:
			t.Errorf("bad item: err = %v, want INVALID_ARGUMENT", errs[i])
		case name == "bad" && errors.As(errs[i], &amb):
			t.Errorf("bad item: %v is ambiguous; the server refused it before applying anything", errs[i])
		case name != "bad" && errs[i] != nil:
			t.Errorf("%s: %v, want success", name, errs[i])
		case name != "bad" && f.count("ns", name) != 1:
			t.Errorf("%s: count %d, want 1", name, f.count("ns", name))
		}
	}
	if got := len(f.calls("AddCounts")); got != 1 {
		t.Errorf("%d AddCounts RPCs, want the one refused batch", got)
	}
	if got := c.Stats().Fallbacks; got != int64(len(names)) {
		t.Errorf("Stats().Fallbacks = %d, want %d", got, len(names))
	}
}

// TestBatchRetryReusesTokens fails a batch with UNAVAILABLE after applying
// it, and checks that the retry carries the very same items (tokens, times)
// and that every add counts once.
func TestBatchRetryReusesTokens(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, addr, WithBatchesInFlight(1))
	g := newGate()
	f.setHook(func(ctx context.Context, method string, n int) error {
		switch {
		case method == "AddCount" && n == 1:
			return g.wait(ctx)
		case method == "AddCounts" && n == 1:
			return status.Error(codes.Unavailable, "apply, then lose the answer")
		}
		return nil
	})
	go c.AddCount(context.Background(), "ns", "first", 1)
	eventually(t, "the first call in flight", func() bool { return len(f.calls("AddCount")) == 1 })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := c.AddCount(context.Background(), "ns", "hot", 1); err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
		})
	}
	eventually(t, "callers to queue", func() bool { return c.adds.queued() == 8 })
	g.open()
	wg.Wait()
	batches := f.calls("AddCounts")
	if len(batches) != 2 {
		t.Fatalf("%d AddCounts RPCs, want the failed one and its retry", len(batches))
	}
	if !proto.Equal(batches[0].req, batches[1].req) {
		t.Errorf("the retry differs from the first attempt:\n%v\n%v", batches[0].req, batches[1].req)
	}
	tokens := map[string]bool{}
	for _, a := range batches[0].adds() {
		if a.GetIdempotencyToken().GetToken() == "" || a.GetIdempotencyToken().GetGenerationTime() == nil {
			t.Errorf("an item has no idempotency key: %v", a)
		}
		tokens[a.GetIdempotencyToken().GetToken()] = true
	}
	if len(tokens) != 8 {
		t.Errorf("%d distinct tokens in a batch of 8", len(tokens))
	}
	if got := f.count("ns", "hot"); got != 8 {
		t.Errorf("count %d after a retried batch, want 8", got)
	}
}

// TestGetBatching checks that queued reads leave as one GetCounts, each
// caller gets its own count, and a read the server refuses fails alone.
func TestGetBatching(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, addr, WithBatchesInFlight(1))
	if err := c.AddCounts(context.Background(), []Add{{"ns", "a", 1}, {"ns", "b", 2}, {"ns", "c", 3}}); err != nil {
		t.Fatal(err)
	}
	g := newGate()
	f.setHook(func(ctx context.Context, method string, n int) error {
		if method == "GetCount" && n == 1 {
			return g.wait(ctx)
		}
		return nil
	})
	go c.GetCount(context.Background(), "ns", "first")
	eventually(t, "the first read in flight", func() bool { return len(f.calls("GetCount")) == 1 })

	refs := []Ref{{"ns", "a"}, {"ns", "b"}, {"missing", "x"}, {"ns", "c"}}
	want := []int64{1, 2, 0, 3}
	got := make([]int64, len(refs))
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	for i, r := range refs {
		wg.Go(func() { got[i], errs[i] = c.GetCount(context.Background(), r.Namespace, r.Counter) })
	}
	eventually(t, "reads to queue", func() bool { return c.gets.queued() == len(refs) })
	g.open()
	wg.Wait()
	for i, r := range refs {
		wantCode := codes.OK
		if r.Namespace == "missing" {
			wantCode = codes.NotFound
		}
		if status.Code(errs[i]) != wantCode || got[i] != want[i] {
			t.Errorf("GetCount(%v) = %d, %v; want %d, %v", r, got[i], errs[i], want[i], wantCode)
		}
	}
	if n := len(f.calls("GetCounts")); n != 1 {
		t.Errorf("%d GetCounts RPCs, want 1", n)
	}
}

// TestReleasedCallersJoinQueuedBatch keeps batch A in flight while batch B
// queues, then lets A return: A's callers, who call again at once, must leave
// with B in one RPC (gather) rather than take turns with it. gather only
// yields, so how many callers make it depends on the scheduler; on one
// processor the callers it readies run before it is back, every time.
func TestReleasedCallersJoinQueuedBatch(t *testing.T) {
	runtime.GOMAXPROCS(1)
	defer runtime.SetDefaultGOMAXPROCS()
	f, addr := startFake(t)
	c := newClient(t, addr, WithBatchesInFlight(1))
	g := newGate()
	f.setHook(func(ctx context.Context, method string, n int) error {
		if method == "AddCounts" && n == 1 {
			return g.wait(ctx)
		}
		return nil
	})
	release := c.adds.occupy()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for _, name := range []string{fmt.Sprint("a", i), fmt.Sprint("a", i, "-again")} {
				if err := c.AddCount(context.Background(), "ns", name, 1); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
	eventually(t, "batch A to queue", func() bool { return c.adds.queued() == 4 })
	release()
	eventually(t, "batch A in flight", func() bool { return len(f.calls("AddCounts")) == 1 })
	for i := range 4 {
		wg.Go(func() {
			if err := c.AddCount(context.Background(), "ns", fmt.Sprint("b", i), 1); err != nil {
				t.Errorf("b%d: %v", i, err)
			}
		})
	}
	eventually(t, "batch B to queue", func() bool { return c.adds.queued() == 4 })
	g.open()
	wg.Wait()
	batches := f.calls("AddCounts")
	if len(batches) != 2 {
		t.Fatalf("%d AddCounts RPCs, want 2: A, then B with A's callers' next calls", len(batches))
	}
	if got := len(batches[1].adds()); got != 8 {
		t.Errorf("second batch has %d adds, want 8", got)
	}
}
