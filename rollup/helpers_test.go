package rollup

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// namespace returns a valid namespace with the given queue settings.
func namespace(id uint64, queues int, coalesce time.Duration, capacity int64, batch int) *abacus.Namespace {
	return &abacus.Namespace{
		ID:               id,
		Name:             "ns" + string(rune('a'+id%26)),
		Type:             abacus.Eventual,
		Queue:            abacus.QueueConfig{NumQueues: queues, Coalesce: coalesce, CapacityBytes: capacity},
		RollupBatchCount: batch,
	}
}

// quiet are options for tests: no logs, fast retries.
func quiet() Options {
	return Options{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		RetryMin: time.Millisecond,
		RetryMax: 5 * time.Millisecond,
		MaxPause: 2 * time.Millisecond,
	}
}

// start returns a pipeline that is drained when the test ends, and checks
// then that none of its goroutines is left.
func start(t *testing.T, fn Func, opts Options) *Pipeline {
	t.Helper()
	before := runtime.NumGoroutine()
	p, err := New(fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Drain(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("Drain: %v", err)
		}
		noLeaks(t, before)
	})
	return p
}

// noLeaks fails if goroutines started since before are still running once
// they had time to return.
func noLeaks(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// eventually polls cond until it holds, failing after a generous bound; it
// waits for outcomes, it does not time them.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// drain drains p, failing the test on error.
func drain(t *testing.T, p *Pipeline) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
}

// recorder is a Func that counts calls per counter, fails if one counter is
// rolled up twice at once, and answers with reply (caught up by default).
type recorder struct {
	t       *testing.T
	reply   func(k Key, call int) (bool, error) // call counts from 1
	mu      sync.Mutex
	calls   map[string]int
	running map[string]bool
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, calls: make(map[string]int), running: make(map[string]bool)}
}

func (r *recorder) fn(ctx context.Context, k Key) (Outcome, error) {
	id := k.NS.Name + "/" + k.Counter
	r.mu.Lock()
	if r.running[id] {
		r.t.Errorf("%s rolled up concurrently", id)
	}
	r.running[id] = true
	r.calls[id]++
	call := r.calls[id]
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, id)
		r.mu.Unlock()
	}()
	if r.reply == nil {
		return Outcome{CaughtUp: true}, nil
	}
	caughtUp, err := r.reply(k, call)
	return Outcome{CaughtUp: caughtUp}, err
}

// count returns the calls of ns's counter.
func (r *recorder) count(ns *abacus.Namespace, counter string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[ns.Name+"/"+counter]
}

// total returns every call.
func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		n += c
	}
	return n
}

// stats returns the stats of ns, failing if it has no queues.
func stats(t *testing.T, p *Pipeline, ns *abacus.Namespace) Stats {
	t.Helper()
	s, ok := p.Stats(ns.ID)
	if !ok {
		t.Fatalf("no queues for %s", ns.Name)
	}
	return s
}
