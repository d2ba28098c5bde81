package rollup

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

func TestNewRejectsNilFunc(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

// A counter signalled many times before its window closes is rolled up once.
// The window is an hour so that only Drain closes it: the test does not
// depend on how fast the signals are sent.
func TestCoalesceManySignalsOneRollup(t *testing.T) {
	for _, queues := range []int{1, 4} {
		t.Run(fmt.Sprint("queues=", queues), func(t *testing.T) {
			rec := newRecorder(t)
			p := start(t, rec.fn, quiet())
			ns := namespace(1, queues, time.Hour, 1<<20, 8)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for i := range 1000 {
						if !p.Signal(Key{NS: ns, Counter: fmt.Sprint("c", i%3)}) {
							t.Error("signal refused")
						}
					}
				})
			}
			wg.Wait()
			if s := stats(t, p, ns); s.Pending != 3 || s.Received != 4000 || s.Dropped != 0 {
				t.Fatalf("stats before drain: %+v", s)
			}
			drain(t, p)
			for i := range 3 {
				if n := rec.count(ns, fmt.Sprint("c", i)); n != 1 {
					t.Errorf("c%d: %d rollups, want 1", i, n)
				}
			}
		})
	}
}

// Signals arriving while a window is being rolled up gather into the next
// window: a counter signalled during its own rollup is rolled up once more,
// another counter once, however many signals each got.
func TestCoalesceNextWindow(t *testing.T) {
	rec := newRecorder(t)
	release := make(chan struct{})
	started := make(chan struct{})
	rec.reply = func(k Key, call int) (bool, error) {
		if k.Counter == "a" && call == 1 {
			close(started)
			<-release
		}
		return true, nil
	}
	p := start(t, rec.fn, quiet())
	ns := namespace(1, 1, 5*time.Millisecond, 1<<20, 4)
	p.Signal(Key{NS: ns, Counter: "a"})
	<-started
	for range 1000 {
		p.Signal(Key{NS: ns, Counter: "a"})
		p.Signal(Key{NS: ns, Counter: "b"})
	}
	close(release)
	eventually(t, "second window", func() bool { return stats(t, p, ns).Pending == 0 })
	drain(t, p)
	if a, b := rec.count(ns, "a"), rec.count(ns, "b"); a != 2 || b != 1 {
		t.Fatalf("rollups: a=%d b=%d, want 2 and 1", a, b)
	}
}

// With Coalesce 0 counters are rolled up without waiting for Drain.
func TestCoalesceZero(t *testing.T) {
	rec := newRecorder(t)
	p := start(t, rec.fn, quiet())
	ns := namespace(1, 2, 0, 1<<20, 4)
	for i := range 10 {
		p.Signal(Key{NS: ns, Counter: fmt.Sprint("c", i)})
	}
	eventually(t, "rollups", func() bool { return rec.total() == 10 })
}

// Routing depends only on the counter and the number of queues, and spreads
// counters over every queue.
func TestRouting(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 64} {
		t.Run(fmt.Sprint("queues=", n), func(t *testing.T) {
			used := make(map[int]bool)
			for i := range 10000 {
				c := fmt.Sprint("counter-", i)
				q := queueIndex(c, n)
				if q != queueIndex(c, n) {
					t.Fatalf("%s routed to two queues", c)
				}
				if q < 0 || q >= max(n, 1) {
					t.Fatalf("%s routed to queue %d of %d", c, q, n)
				}
				used[q] = true
			}
			if len(used) != max(n, 1) {
				t.Fatalf("%d of %d queues used", len(used), n)
			}
		})
	}
	// The same routing holds inside a pipeline: each counter is held by the
	// queue its hash names.
	p := start(t, newRecorder(t).fn, quiet())
	ns := namespace(1, 5, time.Hour, 1<<20, 1)
	if _, ok := p.Stats(ns.ID); ok {
		t.Fatal("queues exist before the first signal")
	}
	for i := range 100 {
		p.Signal(Key{NS: ns, Counter: fmt.Sprint("c", i)})
	}
	nq := (*p.spaces.Load())[ns.ID]
	if len(nq.queues) != 5 {
		t.Fatalf("%d queues, want 5", len(nq.queues))
	}
	for i := range 100 {
		c := fmt.Sprint("c", i)
		q := nq.queues[queueIndex(c, 5)]
		q.mu.Lock()
		_, ok := q.held[c]
		q.mu.Unlock()
		if !ok {
			t.Fatalf("%s not held by its queue", c)
		}
	}
}

// A batch runs up to RollupBatchCount counters at once and the next batch of
// the queue waits for it. Each call waits until its whole batch has arrived,
// so the test fails (by timeout) if batches are smaller or run one by one,
// and records the most calls ever running, which must not exceed the batch.
func TestBatchConcurrency(t *testing.T) {
	const batch, counters = 4, 48
	var arrived, inFlight, peak atomic.Int64
	fn := func(ctx context.Context, k Key) (Outcome, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		storeMax(&peak, n)
		want := (arrived.Add(1) + batch - 1) / batch * batch
		for arrived.Load() < want {
			select {
			case <-ctx.Done():
				return Outcome{}, ctx.Err()
			case <-time.After(100 * time.Microsecond):
			}
		}
		return Outcome{CaughtUp: true}, nil
	}
	p := start(t, fn, quiet())
	ns := namespace(1, 1, time.Hour, 1<<20, batch)
	for i := range counters {
		p.Signal(Key{NS: ns, Counter: fmt.Sprint("c", i)})
	}
	drain(t, p)
	if got := peak.Load(); got != batch {
		t.Fatalf("peak concurrency %d, want %d", got, batch)
	}
	if got := arrived.Load(); got != counters {
		t.Fatalf("%d rollups, want %d", got, counters)
	}
}

// MaxConcurrency bounds the rollups running on the node across queues.
func TestMaxConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int64
	fn := func(ctx context.Context, k Key) (Outcome, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		storeMax(&peak, n)
		time.Sleep(100 * time.Microsecond)
		return Outcome{CaughtUp: true}, nil
	}
	opts := quiet()
	opts.MaxConcurrency = 2
	p := start(t, fn, opts)
	ns := namespace(1, 4, time.Hour, 1<<20, 8)
	for i := range 200 {
		p.Signal(Key{NS: ns, Counter: fmt.Sprint("c", i)})
	}
	drain(t, p)
	if got := peak.Load(); got > 2 {
		t.Fatalf("peak concurrency %d, want ≤ 2", got)
	}
}

// However signals, re-queues and failures interleave, a counter is never
// rolled up by two goroutines at once (the recorder checks), and every
// accepted signal is followed by a rollup that started after it.
func TestNoConcurrentRollupOfACounter(t *testing.T) {
	const counters = 20
	var seq atomic.Int64
	var lastStart [counters]atomic.Int64
	rec := newRecorder(t)
	rec.reply = func(k Key, call int) (bool, error) {
		var i int
		fmt.Sscan(k.Counter[1:], &i)
		storeMax(&lastStart[i], seq.Add(1))
		switch call % 7 {
		case 1, 3:
			return false, nil
		case 5:
			return false, abacus.Errorf(abacus.Unavailable, "store down")
		}
		return true, nil
	}
	p := start(t, rec.fn, quiet())
	ns := namespace(1, 3, 2*time.Millisecond, 1<<20, 4)
	var lastSignal [counters]atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3000 {
				c := (i*7 + g) % counters
				s := seq.Add(1)
				if p.Signal(Key{NS: ns, Counter: fmt.Sprint("c", c)}) {
					storeMax(&lastSignal[c], s)
				}
				if i%100 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	eventually(t, "queues to empty", func() bool { return stats(t, p, ns).Pending == 0 })
	drain(t, p)
	for c := range counters {
		if lastStart[c].Load() < lastSignal[c].Load() {
			t.Errorf("c%d: last signal %d after last rollup %d", c, lastSignal[c].Load(), lastStart[c].Load())
		}
	}
}

// Signals for new counters beyond CapacityBytes are dropped and counted;
// signals for held counters are free and never dropped; space comes back
// when counters are done.
func TestCapacity(t *testing.T) {
	rec := newRecorder(t)
	p := start(t, rec.fn, quiet())
	size := entrySize("c0")
	ns := namespace(1, 1, time.Hour, 3*size, 4)
	var accepted, refused int
	for i := range 10 {
		if p.Signal(Key{NS: ns, Counter: fmt.Sprint("c", i)}) {
			accepted++
		} else {
			refused++
		}
	}
	for range 100 {
		if !p.Signal(Key{NS: ns, Counter: "c0"}) {
			t.Fatal("duplicate signal dropped")
		}
	}
	s := stats(t, p, ns)
	if accepted != 3 || refused != 7 || s.Dropped != 7 || s.Pending != 3 || s.Bytes != 3*size || s.Received != 110 {
		t.Fatalf("accepted %d refused %d stats %+v", accepted, refused, s)
	}

	// Space is released as counters are rolled up.
	ns2 := namespace(2, 1, 0, 3*size, 4)
	for round := range 3 {
		for i := range 3 {
			c := fmt.Sprint("r", i)
			eventually(t, "space", func() bool { return p.Signal(Key{NS: ns2, Counter: c}) })
		}
		eventually(t, fmt.Sprint("round ", round), func() bool { return stats(t, p, ns2).Pending == 0 })
	}
	if s := stats(t, p, ns2); s.Bytes != 0 || s.Rollups != 9 {
		t.Fatalf("after rounds: %+v", s)
	}
}

// A namespace's newer configuration reaches its queues; an older one does not
// replace it.
func TestConfigFollowsNewestNamespace(t *testing.T) {
	p := start(t, newRecorder(t).fn, quiet())
	ns := namespace(1, 2, time.Hour, 1<<20, 4)
	ns.Updated = time.Unix(100, 0)
	newer := *ns
	newer.Updated = time.Unix(200, 0)
	newer.Queue.CapacityBytes = 7
	newer.Queue.NumQueues = 9
	p.Signal(Key{NS: ns, Counter: "a"})
	p.Signal(Key{NS: &newer, Counter: "a"})
	p.Signal(Key{NS: ns, Counter: "a"})
	nq := (*p.spaces.Load())[ns.ID]
	if got := nq.config().capacity; got != 7 {
		t.Fatalf("capacity %d, want 7", got)
	}
	if len(nq.queues) != 2 {
		t.Fatalf("%d queues, want 2: NumQueues changes with a restart", len(nq.queues))
	}
	if p.Signal(Key{NS: ns, Counter: "b"}) {
		t.Fatal("signal over the new capacity accepted")
	}
}

// Out-of-range queue settings, which controlplane never produces, still
// work: one queue, batches of one, no capacity bound.
func TestZeroSettings(t *testing.T) {
	rec := newRecorder(t)
	p := start(t, rec.fn, quiet())
	ns := namespace(1, 0, -time.Second, 0, 0)
	for i := range 50 {
		if !p.Signal(Key{NS: ns, Counter: fmt.Sprint("c", i)}) {
			t.Fatal("refused")
		}
	}
	eventually(t, "rollups", func() bool { return rec.total() == 50 })
	if p.Signal(Key{Counter: "no namespace"}) {
		t.Fatal("signal without a namespace accepted")
	}
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// With Options.Batch, a batch of several counters is one Batch call with at
// most MaxConcurrency parallelism; its outcomes and errors are applied per
// counter (a counter behind is rolled up again), and a panic fails the whole
// batch, which is then retried.
func TestBatchFunc(t *testing.T) {
	var mu sync.Mutex
	calls, maxKeys, maxPar := 0, 0, 0
	panicked := false
	opts := quiet()
	opts.MaxConcurrency = 3
	opts.Batch = func(ctx context.Context, keys []Key, parallelism int) ([]Outcome, []error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		maxKeys, maxPar = max(maxKeys, len(keys)), max(maxPar, parallelism)
		if !panicked {
			panicked = true
			panic("bad batch")
		}
		outs, errs := make([]Outcome, len(keys)), make([]error, len(keys))
		for i, k := range keys {
			outs[i].CaughtUp = k.Counter != "b"
		}
		return outs, errs
	}
	single := newRecorder(t)
	p := start(t, single.fn, opts)
	ns := namespace(1, 1, 20*time.Millisecond, 1<<20, 8)
	for _, c := range []string{"a", "b", "c", "d"} {
		p.Signal(Key{NS: ns, Counter: c})
	}
	eventually(t, "counters done", func() bool { return stats(t, p, ns).Pending == 0 })
	mu.Lock()
	defer mu.Unlock()
	// The retries after the panic come back after their own jittered
	// backoffs, so how they batch varies; the first batch held all four.
	if calls < 1 || maxKeys != 4 || maxPar > 3 {
		t.Errorf("%d Batch calls, largest %d keys, parallelism up to %d; want batches of 4, parallelism ≤ 3", calls, maxKeys, maxPar)
	}
	// Batch never reports b caught up, so b ends alone, and a batch of one
	// goes to Func.
	if n := single.count(ns, "b"); n != 1 {
		t.Errorf("Func rolled b up %d times, want 1", n)
	}
	if s := stats(t, p, ns); s.Failures < 4 {
		t.Errorf("failures %d, want the 4 counters of the panicking batch", s.Failures)
	}
}

// Queues whose batches want more slots than MaxConcurrency leaves each of
// them still make progress: a batch takes one slot and what else is free.
func TestBatchFuncSlotsNoDeadlock(t *testing.T) {
	opts := quiet()
	opts.MaxConcurrency = 4
	var inBatch, most atomic.Int64
	opts.Batch = func(ctx context.Context, keys []Key, parallelism int) ([]Outcome, []error) {
		n := inBatch.Add(int64(parallelism))
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		inBatch.Add(-int64(parallelism))
		outs := make([]Outcome, len(keys))
		for i := range outs {
			outs[i].CaughtUp = true
		}
		return outs, make([]error, len(keys))
	}
	rec := newRecorder(t)
	p := start(t, rec.fn, opts)
	ns := namespace(1, 8, time.Millisecond, 1<<20, 16)
	for i := range 2000 {
		p.Signal(Key{NS: ns, Counter: strconv.Itoa(i)})
	}
	eventually(t, "every counter rolled up", func() bool { return stats(t, p, ns).Pending == 0 })
	if m := most.Load(); m > 4 {
		t.Errorf("%d slots in use at once, want ≤ MaxConcurrency 4", m)
	}
}

// With BatchGrowth, a queue with a backlog hands Batch up to BatchGrowth ×
// rollup_batch_count counters at once, and never fewer than the batch count
// it has.
func TestBatchGrowth(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	opts := quiet()
	opts.BatchGrowth = 4
	opts.Batch = func(ctx context.Context, keys []Key, parallelism int) ([]Outcome, []error) {
		mu.Lock()
		sizes = append(sizes, len(keys))
		mu.Unlock()
		outs := make([]Outcome, len(keys))
		for i := range outs {
			outs[i].CaughtUp = true
		}
		return outs, make([]error, len(keys))
	}
	p := start(t, newRecorder(t).fn, opts)
	ns := namespace(1, 1, 20*time.Millisecond, 1<<20, 2)
	for i := range 20 {
		p.Signal(Key{NS: ns, Counter: strconv.Itoa(i)})
	}
	eventually(t, "counters done", func() bool { return stats(t, p, ns).Pending == 0 })
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) == 0 || slices.Max(sizes) != 8 {
		t.Errorf("batch sizes %v, want batches of up to 8 (4 × 2)", sizes)
	}
}

// SignalAll queues what one Signal per key would, across namespaces and
// queues, counts every key as received, drops beyond capacity, and skips
// keys without a namespace.
func TestSignalAll(t *testing.T) {
	rec := newRecorder(t)
	p := start(t, rec.fn, quiet())
	a := namespace(1, 4, time.Hour, 1<<20, 8)
	b := namespace(2, 1, time.Hour, 2*entrySize("c0"), 8) // room for two
	var ks []Key
	for i := range 20 {
		ks = append(ks, Key{NS: a, Counter: fmt.Sprint("c", i%10)}, Key{NS: b, Counter: fmt.Sprint("c", i%3)})
	}
	ks = append(ks, Key{Counter: "no namespace"})
	p.SignalAll(ks)
	if s := stats(t, p, a); s.Pending != 10 || s.Received != 20 || s.Dropped != 0 {
		t.Errorf("namespace a: %+v, want 10 pending of 20 received", s)
	}
	// b: c0 and c1 fill it; c2 is dropped at each of its 6 signals.
	if s := stats(t, p, b); s.Pending != 2 || s.Received != 20 || s.Dropped != 6 {
		t.Errorf("namespace b: %+v, want 2 pending, 20 received, 6 dropped", s)
	}
	drain(t, p)
	for i := range 10 {
		if n := rec.count(a, fmt.Sprint("c", i)); n != 1 {
			t.Errorf("a/c%d: %d rollups, want 1", i, n)
		}
	}
	for i, want := range []int{1, 1, 0} {
		if n := rec.count(b, fmt.Sprint("c", i)); n != want {
			t.Errorf("b/c%d: %d rollups, want %d", i, n, want)
		}
	}
}
