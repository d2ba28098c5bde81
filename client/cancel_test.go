package client

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestCancel checks what a caller whose context ends gets: the context's
// error when its add was never sent (and then never is), an *AmbiguousError
// when it was.
func TestCancel(t *testing.T) {
	t.Run("queued", func(t *testing.T) {
		f, addr := startFake(t)
		c := newClient(t, addr, WithBatchesInFlight(1))
		g := newGate()
		holdFirst(f, g, 1)
		first := make(chan error, 1)
		go func() { first <- c.AddCount(context.Background(), "ns", "first", 1) }()
		eventually(t, "the first call in flight", func() bool { return len(f.calls("AddCount")) == 1 })

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.AddCount(ctx, "ns", "left", 1) }()
		eventually(t, "the call to queue", func() bool { return c.adds.queued() == 1 })
		cancel()
		err := <-done
		var amb *AmbiguousError
		if !errors.Is(err, context.Canceled) || errors.As(err, &amb) {
			t.Errorf("queued caller that left: %v; want context.Canceled, not ambiguous", err)
		}
		g.open()
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if err := c.AddCount(context.Background(), "ns", "after", 1); err != nil {
			t.Fatal(err)
		}
		for _, r := range f.calls("") {
			for _, a := range r.adds() {
				if a.GetCounterName() == "left" {
					t.Errorf("the add of a caller that left before it was sent went out: %v", r.req)
				}
			}
		}
	})

	t.Run("lone call in flight", func(t *testing.T) {
		f, addr := startFake(t)
		c := newClient(t, addr)
		g := newGate()
		holdFirst(f, g, 1)
		defer g.open()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.AddCount(ctx, "ns", "c", 1) }()
		eventually(t, "the call in flight", func() bool { return len(f.calls("AddCount")) == 1 })
		cancel()
		err := <-done
		var amb *AmbiguousError
		if !errors.As(err, &amb) || status.Code(err) != codes.Canceled {
			t.Fatalf("cancelled in flight: %v; want an *AmbiguousError of CANCELED", err)
		}
		if want := tokenOf(f.calls("AddCount")[0]).GetToken(); amb.Token != want {
			t.Errorf("AmbiguousError.Token = %q, want the request's %q", amb.Token, want)
		}
	})

	// A batch whose every caller has left is cancelled on the server and
	// frees its slot for the next calls.
	t.Run("batch in flight", func(t *testing.T) {
		f, addr := startFake(t)
		c := newClient(t, addr, WithBatchesInFlight(1))
		g := newGate()
		serverSawCancel := make(chan struct{})
		f.setHook(func(ctx context.Context, method string, n int) error {
			switch {
			case method == "AddCount" && n == 1:
				return g.wait(ctx)
			case method == "AddCounts" && n == 1:
				<-ctx.Done()
				close(serverSawCancel)
				return ctx.Err()
			}
			return nil
		})
		go c.AddCount(context.Background(), "ns", "first", 1)
		eventually(t, "the first call in flight", func() bool { return len(f.calls("AddCount")) == 1 })
		ctx, cancel := context.WithCancel(context.Background())
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- c.AddCount(ctx, "ns", "c", 1) }()
		}
		eventually(t, "calls to queue", func() bool { return c.adds.queued() == 2 })
		g.open()
		eventually(t, "the batch in flight", func() bool { return len(f.calls("AddCounts")) == 1 })
		cancel()
		for range 2 {
			var amb *AmbiguousError
			if err := <-errs; !errors.As(err, &amb) || !errors.Is(err, context.Canceled) {
				t.Errorf("caller of a batch in flight that left: %v; want an *AmbiguousError of context.Canceled", err)
			}
		}
		<-serverSawCancel
		if err := c.AddCount(context.Background(), "ns", "next", 1); err != nil {
			t.Fatalf("a call after the abandoned batch: %v", err)
		}
	})
}

// TestClose checks that Close fails queued calls with ErrClosed, cancels the
// ones in flight, and that calls after it fail at once.
func TestClose(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, addr, WithBatchesInFlight(1))
	holdFirst(f, newGate(), 1) // never opened: Close must end the call
	first := make(chan error, 1)
	go func() { first <- c.AddCount(context.Background(), "ns", "first", 1) }()
	eventually(t, "the first call in flight", func() bool { return len(f.calls("AddCount")) == 1 })
	queued := make(chan error, 1)
	go func() { queued <- c.AddCount(context.Background(), "ns", "queued", 1) }()
	eventually(t, "the call to queue", func() bool { return c.adds.queued() == 1 })

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-queued; !errors.Is(err, ErrClosed) {
		t.Errorf("queued call at Close: %v, want ErrClosed", err)
	}
	var amb *AmbiguousError
	if err := <-first; !errors.As(err, &amb) {
		t.Errorf("call in flight at Close: %v, want an *AmbiguousError", err)
	}
	_, getErr := c.GetCount(context.Background(), "ns", "c")
	_, addGetErr := c.AddAndGetCount(context.Background(), "ns", "c", 1)
	_, getsErr := c.GetCounts(context.Background(), []Ref{{"ns", "c"}})
	for i, err := range []error{
		c.AddCount(context.Background(), "ns", "c", 1), getErr, addGetErr,
		c.ClearCount(context.Background(), "ns", "c"),
		c.AddCounts(context.Background(), []Add{{"ns", "c", 1}}), getsErr,
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("call %d after Close: %v, want ErrClosed", i, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestBatchMethods checks AddCounts and GetCounts, split into RPCs of
// WithMaxBatch items.
func TestBatchMethods(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, addr, WithMaxBatch(3), WithClock(fixedClock))
	var adds []Add
	var refs []Ref
	for i := range 7 {
		name := string(rune('a' + i))
		adds = append(adds, Add{"ns", name, int64(i + 1)})
		refs = append(refs, Ref{"ns", name})
	}
	if err := c.AddCounts(context.Background(), adds); err != nil {
		t.Fatal(err)
	}
	rpcs := f.calls("AddCounts")
	var sizes []int
	tokens := map[string]bool{}
	for _, r := range rpcs {
		sizes = append(sizes, len(r.adds()))
		for _, a := range r.adds() {
			tokens[a.GetIdempotencyToken().GetToken()] = true
			if !a.GetIdempotencyToken().GetGenerationTime().AsTime().Equal(t0) {
				t.Errorf("generation time %v, want %v", a.GetIdempotencyToken().GetGenerationTime().AsTime(), t0)
			}
		}
	}
	if len(sizes) != 3 || sizes[0] != 3 || sizes[1] != 3 || sizes[2] != 1 {
		t.Errorf("AddCounts of 7 with WithMaxBatch(3) sent batches of %v, want [3 3 1]", sizes)
	}
	if len(tokens) != 7 {
		t.Errorf("%d distinct tokens for 7 adds", len(tokens))
	}
	counts, err := c.GetCounts(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range counts {
		if n != int64(i+1) {
			t.Errorf("GetCounts[%d] = %d, want %d", i, n, i+1)
		}
	}
	if len(counts) != 7 || len(f.calls("GetCounts")) != 3 {
		t.Errorf("GetCounts of 7: %d counts in %d RPCs, want 7 in 3", len(counts), len(f.calls("GetCounts")))
	}

	// A bad item fails its RPC only; the error says which items failed.
	adds[4].Counter = "bad"
	err = c.AddCounts(context.Background(), adds)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "adds[3:6] of 7") {
		t.Errorf("AddCounts with a bad 5th item: %v; want INVALID_ARGUMENT naming adds[3:6]", err)
	}
	if got := f.count("ns", "a"); got != 2 {
		t.Errorf("count of a %d: the first RPC of the failed call should have been applied", got)
	}
}
