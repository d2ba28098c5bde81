package rollup

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// Drain rolls up everything held, in every namespace, without waiting for
// windows, then stops every goroutine.
func TestDrainProcessesPending(t *testing.T) {
	before := runtime.NumGoroutine()
	rec := newRecorder(t)
	p, err := New(rec.fn, quiet())
	if err != nil {
		t.Fatal(err)
	}
	a := namespace(1, 3, time.Hour, 1<<20, 4)
	b := namespace(2, 1, time.Hour, 1<<20, 1)
	for i := range 50 {
		p.Signal(Key{NS: a, Counter: fmt.Sprint("c", i)})
		p.Signal(Key{NS: b, Counter: fmt.Sprint("c", i)})
	}
	drain(t, p)
	for i := range 50 {
		c := fmt.Sprint("c", i)
		if na, nb := rec.count(a, c), rec.count(b, c); na != 1 || nb != 1 {
			t.Fatalf("%s: %d and %d rollups, want 1 and 1", c, na, nb)
		}
	}
	if s := stats(t, p, a); s.Pending != 0 || s.Bytes != 0 {
		t.Fatalf("after drain: %+v", s)
	}
	noLeaks(t, before)
}

// During a drain each counter is started at most once: a counter that stays
// behind (writes inside the accept window) is abandoned, not spun on; a
// counter that was running when the drain began runs once more; one waiting
// for a retry backoff is retried at once.
func TestDrainStartsEachCounterOnce(t *testing.T) {
	rec := newRecorder(t)
	started := make(chan struct{})
	release := make(chan struct{})
	rec.reply = func(k Key, call int) (bool, error) {
		switch k.Counter {
		case "running":
			if call == 1 {
				close(started)
				<-release
			}
			return false, nil
		case "failing":
			return false, errors.New("store down")
		}
		return false, nil // always behind
	}
	opts := quiet()
	opts.RetryMin, opts.RetryMax = time.Hour, time.Hour
	p := start(t, rec.fn, opts)
	ns := namespace(1, 1, 0, 1<<20, 1)
	// "failing" fails once, then waits for an hour's backoff.
	p.Signal(Key{NS: ns, Counter: "failing"})
	eventually(t, "first failure", func() bool { return rec.count(ns, "failing") == 1 })
	p.Signal(Key{NS: ns, Counter: "running"})
	<-started
	slow := namespace(2, 2, time.Hour, 1<<20, 3)
	for i := range 10 {
		p.Signal(Key{NS: slow, Counter: fmt.Sprint("behind", i)})
	}

	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- p.Drain(ctx)
	}()
	eventually(t, "drain to begin", p.draining.Load)
	if p.Signal(Key{NS: ns, Counter: "late"}) {
		t.Error("signal accepted during Drain")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for counter, want := range map[string]int{"running": 2, "failing": 2, "late": 0} {
		if n := rec.count(ns, counter); n != want {
			t.Errorf("%s: %d rollups, want %d", counter, n, want)
		}
	}
	for i := range 10 {
		if n := rec.count(slow, fmt.Sprint("behind", i)); n != 1 {
			t.Errorf("behind%d: %d rollups, want 1", i, n)
		}
	}
	if s := stats(t, p, slow); s.Abandoned != 10 || s.Pending != 0 {
		t.Errorf("stats %+v, want 10 abandoned", s)
	}
	if s := stats(t, p, ns); s.Abandoned != 2 {
		t.Errorf("stats %+v, want 2 abandoned", s)
	}
}

// When ctx ends first, Drain cancels the running rollups, waits for them and
// returns ctx's error; nothing else starts and no goroutine is left.
func TestDrainRespectsContext(t *testing.T) {
	before := runtime.NumGoroutine()
	cancelled := make(chan struct{}, 100)
	running := make(chan struct{}, 100)
	fn := func(ctx context.Context, k Key) (Outcome, error) {
		running <- struct{}{}
		<-ctx.Done()
		cancelled <- struct{}{}
		return Outcome{}, ctx.Err()
	}
	p, err := New(fn, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ns := namespace(1, 2, 0, 1<<20, 2)
	for i := range 20 {
		p.Signal(Key{NS: ns, Counter: fmt.Sprint("c", i)})
	}
	<-running
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain = %v, want DeadlineExceeded", err)
	}
	if len(running) != len(cancelled)-1 {
		t.Fatalf("%d rollups started, %d saw their context end", len(running)+1, len(cancelled))
	}
	s := stats(t, p, ns)
	if s.Pending != 0 || s.Failures != 0 || int(s.Abandoned) != 20 {
		t.Fatalf("stats %+v: want every counter abandoned and no failure counted", s)
	}
	// A second Drain returns at once.
	if err := p.Drain(context.Background()); err != nil {
		t.Fatalf("second Drain = %v", err)
	}
	if p.Signal(Key{NS: ns, Counter: "c0"}) {
		t.Fatal("signal accepted after Drain")
	}
	noLeaks(t, before)
}

// After Drain, signals are refused, even for a namespace never seen.
func TestSignalAfterDrainRefused(t *testing.T) {
	rec := newRecorder(t)
	p := start(t, rec.fn, quiet())
	ns := namespace(1, 1, time.Hour, 1<<20, 1)
	p.Signal(Key{NS: ns, Counter: "a"})
	drain(t, p)
	before := runtime.NumGoroutine()
	for _, k := range []Key{{NS: ns, Counter: "a"}, {NS: ns, Counter: "b"}, {NS: namespace(2, 4, 0, 1<<20, 1), Counter: "x"}} {
		if p.Signal(k) {
			t.Errorf("Signal(%s/%s) accepted after Drain", k.NS.Name, k.Counter)
		}
	}
	if _, ok := p.Stats(2); ok {
		t.Fatal("queues created after Drain")
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("goroutines %d → %d", before, n)
	}
	if rec.total() != 1 {
		t.Fatalf("%d rollups, want 1", rec.total())
	}
}

// RemoveNamespace forgets the namespace's signals, stops its queues and
// refuses its later signals; other namespaces go on.
func TestRemoveNamespace(t *testing.T) {
	before := runtime.NumGoroutine()
	rec := newRecorder(t)
	p, err := New(rec.fn, quiet())
	if err != nil {
		t.Fatal(err)
	}
	gone := namespace(1, 4, time.Hour, 1<<20, 1)
	kept := namespace(2, 1, time.Hour, 1<<20, 1)
	for i := range 10 {
		p.Signal(Key{NS: gone, Counter: fmt.Sprint("c", i)})
		p.Signal(Key{NS: kept, Counter: fmt.Sprint("c", i)})
	}
	p.RemoveNamespace(gone.ID)
	p.RemoveNamespace(99) // unknown: a no-op
	if _, ok := p.Stats(gone.ID); ok {
		t.Fatal("removed namespace still has queues")
	}
	if p.Signal(Key{NS: gone, Counter: "c0"}) {
		t.Fatal("signal for a removed namespace accepted")
	}
	// Its four queue goroutines return without waiting for the drain.
	noLeaks(t, before+1)
	drain(t, p)
	for i := range 10 {
		if n := rec.count(gone, fmt.Sprint("c", i)); n != 0 {
			t.Fatalf("removed c%d rolled up", i)
		}
		if n := rec.count(kept, fmt.Sprint("c", i)); n != 1 {
			t.Fatalf("kept c%d: %d rollups", i, n)
		}
	}
	noLeaks(t, before)
}

// RemoveNamespace during a batch ignores the batch's outcome.
func TestRemoveNamespaceWhileRunning(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	rec := newRecorder(t)
	rec.reply = func(Key, int) (bool, error) {
		close(started)
		<-release
		return false, nil
	}
	p := start(t, rec.fn, quiet())
	ns := namespace(1, 1, 0, 1<<20, 1)
	p.Signal(Key{NS: ns, Counter: "a"})
	<-started
	p.RemoveNamespace(ns.ID)
	close(release)
	drain(t, p)
	if n := rec.count(ns, "a"); n != 1 {
		t.Fatalf("%d rollups, want 1", n)
	}
}
