package rollup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// A counter is rolled up again, window after window, until Func reports it
// caught up; a failed rollup is retried after a backoff; an error no retry
// can fix drops the counter.
func TestRequeue(t *testing.T) {
	errDown := abacus.Errorf(abacus.Unavailable, "store down")
	tests := []struct {
		name  string
		reply func(call int) (bool, error)
		calls int
		want  Stats
	}{
		{
			name:  "caught up at once",
			reply: func(int) (bool, error) { return true, nil },
			calls: 1,
			want:  Stats{Rollups: 1},
		},
		{
			name:  "behind three times",
			reply: func(call int) (bool, error) { return call > 3, nil },
			calls: 4,
			want:  Stats{Rollups: 4, Requeued: 3},
		},
		{
			name: "fails twice",
			reply: func(call int) (bool, error) {
				if call <= 2 {
					return false, errDown
				}
				return true, nil
			},
			calls: 3,
			want:  Stats{Rollups: 1, Failures: 2, Requeued: 2},
		},
		{
			name: "fails, then behind",
			reply: func(call int) (bool, error) {
				switch call {
				case 1:
					return false, errors.New("plain error")
				case 2:
					return false, nil
				}
				return true, nil
			},
			calls: 3,
			want:  Stats{Rollups: 2, Failures: 1, Requeued: 2},
		},
		{
			name: "panics once",
			reply: func(call int) (bool, error) {
				if call == 1 {
					panic("bad counter")
				}
				return true, nil
			},
			calls: 2,
			want:  Stats{Rollups: 1, Failures: 1, Requeued: 1},
		},
		{
			name:  "namespace gone",
			reply: func(int) (bool, error) { return false, abacus.Errorf(abacus.NotFound, "no namespace") },
			calls: 1,
			want:  Stats{Failures: 1, Abandoned: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			rec.reply = func(_ Key, call int) (bool, error) { return tt.reply(call) }
			p := start(t, rec.fn, quiet())
			ns := namespace(1, 2, 2*time.Millisecond, 1<<20, 4)
			p.Signal(Key{NS: ns, Counter: "c"})
			eventually(t, "counter done", func() bool { return stats(t, p, ns).Pending == 0 })
			drain(t, p)
			if n := rec.count(ns, "c"); n != tt.calls {
				t.Errorf("%d calls, want %d", n, tt.calls)
			}
			s := stats(t, p, ns)
			got := Stats{Rollups: s.Rollups, Failures: s.Failures, Requeued: s.Requeued, Abandoned: s.Abandoned}
			if got != tt.want {
				t.Errorf("stats %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Failures are logged at most once per ErrorLogInterval, with a count of the
// ones left out.
func TestFailureLogRateLimited(t *testing.T) {
	var buf syncBuffer
	opts := quiet()
	opts.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	opts.ErrorLogInterval = time.Hour
	rec := newRecorder(t)
	rec.reply = func(Key, int) (bool, error) { return false, errors.New("store down") }
	p := start(t, rec.fn, opts)
	ns := namespace(1, 1, time.Hour, 1<<20, 10)
	for _, c := range []string{"a", "b", "c", "d", "e"} {
		p.Signal(Key{NS: ns, Counter: c})
	}
	drain(t, p)
	if n := strings.Count(buf.String(), "rollup failed"); n != 1 {
		t.Fatalf("%d failure lines, want 1:\n%s", n, buf.String())
	}

	l := errLimiter{every: time.Second}
	t0 := time.Unix(0, 0)
	steps := []struct {
		at         time.Duration
		ok         bool
		suppressed int
	}{{0, true, 0}, {100 * time.Millisecond, false, 0}, {999 * time.Millisecond, false, 0}, {time.Second, true, 2}, {3 * time.Second, true, 0}}
	for _, s := range steps {
		ok, sup := l.allow(t0.Add(s.at))
		if ok != s.ok || sup != s.suppressed {
			t.Errorf("at %v: allow = %v, %d; want %v, %d", s.at, ok, sup, s.ok, s.suppressed)
		}
	}
}

// Backoffs double from RetryMin up to RetryMax, with jitter in [b/2, b].
func TestBackoff(t *testing.T) {
	p := &Pipeline{opts: Options{RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}}
	for _, tt := range []struct {
		attempts int
		bound    time.Duration
	}{{1, 10 * time.Millisecond}, {2, 20 * time.Millisecond}, {3, 40 * time.Millisecond}, {4, 50 * time.Millisecond}, {60, 50 * time.Millisecond}} {
		for range 100 {
			if b := p.backoff(tt.attempts); b < tt.bound/2 || b > tt.bound {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", tt.attempts, b, tt.bound/2, tt.bound)
			}
		}
	}
}

// The pause after a batch follows the batch's duration, within MaxPause.
func TestPause(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		d    time.Duration
		want time.Duration
	}{
		{Options{}, 10 * time.Millisecond, 10 * time.Millisecond},
		{Options{}, 5 * time.Second, time.Second},
		{Options{PauseRatio: 0.5}, 10 * time.Millisecond, 5 * time.Millisecond},
		{Options{MaxPause: -1}, time.Second, 0},
	} {
		if got := tt.opts.withDefaults().pause(tt.d); got != tt.want {
			t.Errorf("%+v.pause(%v) = %v, want %v", tt.opts, tt.d, got, tt.want)
		}
	}
}

// A rollup slower than RollupTimeout sees its context end.
func TestRollupTimeout(t *testing.T) {
	opts := quiet()
	opts.RollupTimeout = time.Millisecond
	var once sync.Once
	rec := newRecorder(t)
	rec.reply = func(Key, int) (bool, error) { return true, nil }
	fn := func(ctx context.Context, k Key) (Outcome, error) {
		first := false
		once.Do(func() { first = true })
		if first {
			<-ctx.Done()
			return Outcome{}, ctx.Err()
		}
		return rec.fn(ctx, k)
	}
	p := start(t, fn, opts)
	ns := namespace(1, 1, 0, 1<<20, 1)
	p.Signal(Key{NS: ns, Counter: "slow"})
	eventually(t, "retry after timeout", func() bool { return rec.count(ns, "slow") == 1 })
	if s := stats(t, p, ns); s.Failures != 1 {
		t.Fatalf("stats %+v, want one failure", s)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A counter whose Func says no rollup can finish it before NotBefore is
// parked: not rolled up window after window, but at NotBefore, or as soon as
// a new signal comes (a new write wants a fresh count).
func TestParkUntilNotBefore(t *testing.T) {
	for _, tt := range []struct {
		name      string
		notBefore time.Duration // after the first call
		resignal  bool
		touch     bool // touched while parked, which leaves it parked
	}{
		{name: "woken by NotBefore", notBefore: 50 * time.Millisecond},
		{name: "woken by a signal", notBefore: time.Hour, resignal: true},
		{name: "not woken by a touch", notBefore: 100 * time.Millisecond, touch: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var calls []time.Time
			var wake time.Time
			fn := func(ctx context.Context, k Key) (Outcome, error) {
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, time.Now())
				if len(calls) == 1 {
					wake = time.Now().Add(tt.notBefore)
					return Outcome{NotBefore: wake}, nil
				}
				return Outcome{CaughtUp: true}, nil
			}
			p := start(t, fn, quiet())
			ns := namespace(1, 1, time.Millisecond, 1<<20, 4)
			p.Signal(Key{NS: ns, Counter: "c"})
			n := func() int { mu.Lock(); defer mu.Unlock(); return len(calls) }
			eventually(t, "first rollup", func() bool { return n() == 1 })
			if tt.touch {
				p.Touch(Key{NS: ns, Counter: "c"})
			}
			if tt.resignal || tt.touch {
				// Many windows pass: a parked counter is left alone.
				time.Sleep(30 * time.Millisecond)
				if got := n(); got != 1 {
					t.Fatalf("%d rollups while parked, want 1", got)
				}
			}
			if tt.resignal {
				p.Signal(Key{NS: ns, Counter: "c"})
			}
			eventually(t, "second rollup", func() bool { return n() == 2 })
			eventually(t, "counter done", func() bool { return stats(t, p, ns).Pending == 0 })
			mu.Lock()
			defer mu.Unlock()
			if !tt.resignal && calls[1].Before(wake) {
				t.Errorf("second rollup %v before NotBefore", wake.Sub(calls[1]))
			}
		})
	}
}

// A full queue makes room for a new signal by evicting its longest-parked
// counter (whose count is rolled up; only its checkpoint waits), rather than
// dropping the signal; with nothing parked the signal is dropped.
func TestFullQueueEvictsParked(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	fn := func(ctx context.Context, k Key) (Outcome, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[k.Counter]++
		if k.Counter == "new" || k.Counter == "extra" {
			return Outcome{CaughtUp: true}, nil
		}
		return Outcome{NotBefore: time.Now().Add(time.Hour)}, nil
	}
	p := start(t, fn, quiet())
	// Room for exactly two counters of one-letter names.
	ns := namespace(1, 1, time.Millisecond, 2*entrySize("a"), 4)
	p.Signal(Key{NS: ns, Counter: "a"})
	p.Signal(Key{NS: ns, Counter: "b"})
	n := func(c string) int { mu.Lock(); defer mu.Unlock(); return calls[c] }
	eventually(t, "a and b parked", func() bool { return n("a") == 1 && n("b") == 1 })
	if !p.Signal(Key{NS: ns, Counter: "c"}) {
		t.Fatal("signal refused while a parked counter could make room")
	}
	s := stats(t, p, ns)
	if s.Evicted != 1 || s.Dropped != 0 || s.Pending != 2 {
		t.Fatalf("stats %+v, want 1 evicted, 0 dropped, 2 pending", s)
	}
	if p.Lost() != 1 {
		t.Errorf("Lost() = %d, want 1", p.Lost())
	}
	// a was evicted (parked first): a new signal for it is a new entry.
	eventually(t, "c parked", func() bool { return n("c") == 1 })
	if !p.Signal(Key{NS: ns, Counter: "a"}) {
		t.Fatal("signal for the evicted a refused")
	}
	eventually(t, "a rolled up again", func() bool { return n("a") == 2 })
	if n("b") != 1 {
		t.Errorf("b rolled up %d times, want 1 (evicted, never rolled up again)", n("b"))
	}
}

// The list of parked counters kept for eviction stays within a small
// multiple of the counters parked now, in a queue that never fills (found in
// review: it used to grow with every park).
func TestParkedListBounded(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	fn := func(ctx context.Context, k Key) (Outcome, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[k.Counter]++
		if calls[k.Counter] == 1 {
			return Outcome{NotBefore: time.Now().Add(time.Millisecond)}, nil
		}
		return Outcome{CaughtUp: true}, nil
	}
	p := start(t, fn, quiet())
	ns := namespace(1, 1, time.Millisecond, 1<<30, 64)
	for round := range 10 {
		for i := range 500 {
			p.Signal(Key{NS: ns, Counter: strconv.Itoa(round*1000 + i)})
		}
		eventually(t, "round done", func() bool { return stats(t, p, ns).Pending == 0 })
	}
	q := (*p.spaces.Load())[ns.ID].queues[0]
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.parkedFIFO) - q.parkedHead; n > 1025 {
		t.Errorf("%d items listed after 5000 parks, none parked now; want at most 1025", n)
	}
}

// Parked counters whose wait has ended go after the set's counters that are
// not rolled up yet: their counts are cached, only their checkpoints wait.
func TestParkedGoLast(t *testing.T) {
	var mu sync.Mutex
	var order []string
	release := make(chan struct{})
	fn := func(ctx context.Context, k Key) (Outcome, error) {
		mu.Lock()
		order = append(order, k.Counter)
		first := len(order) <= 3
		mu.Unlock()
		switch {
		case k.Counter == "block":
			<-release
		case first:
			return Outcome{NotBefore: time.Now().Add(20 * time.Millisecond)}, nil
		}
		return Outcome{CaughtUp: true}, nil
	}
	p := start(t, fn, quiet())
	ns := namespace(1, 1, time.Millisecond, 1<<20, 1)
	// One set, rolled up one counter at a time: p1 and p2 park, then block
	// holds the queue while f1 and f2 arrive and the parks end.
	for _, c := range []string{"p1", "p2", "block"} {
		p.Signal(Key{NS: ns, Counter: c})
	}
	n := func() int { mu.Lock(); defer mu.Unlock(); return len(order) }
	eventually(t, "block running", func() bool { return n() == 3 })
	p.Signal(Key{NS: ns, Counter: "f1"})
	p.Signal(Key{NS: ns, Counter: "f2"})
	time.Sleep(40 * time.Millisecond) // past the parks' NotBefore
	close(release)
	eventually(t, "all done", func() bool { return stats(t, p, ns).Pending == 0 })
	mu.Lock()
	defer mu.Unlock()
	want := []string{"p1", "p2", "block", "f1", "f2", "p1", "p2"}
	if !slices.Equal(order, want) {
		t.Errorf("rollup order %v, want %v", order, want)
	}
}

// The duration that sets a batch's back-pressure pause starts when the batch
// got a slot: waiting for other queues' batches is not a slow store.
func TestBatchRanExcludesSlotWait(t *testing.T) {
	for _, batch := range []bool{false, true} {
		opts := quiet()
		opts.MaxConcurrency = 1
		if batch {
			opts.Batch = func(ctx context.Context, keys []Key, _ int) ([]Outcome, []error) {
				return make([]Outcome, len(keys)), make([]error, len(keys))
			}
		}
		p := start(t, func(context.Context, Key) (Outcome, error) { return Outcome{}, nil }, opts)
		ns := namespace(1, 1, time.Millisecond, 1<<20, 4)
		entries := []*entry{{key: Key{NS: ns, Counter: "a"}}, {key: Key{NS: ns, Counter: "b"}}}
		p.sem <- struct{}{} // another queue's batch holds the only slot
		done := make(chan time.Duration)
		go func() {
			_, ran := p.rollupBatch(entries)
			done <- ran
		}()
		time.Sleep(20 * time.Millisecond)
		freed := time.Now()
		<-p.sem
		ran := <-done
		if limit := time.Since(freed); ran > limit {
			t.Errorf("batch %v: ran %v, more than the %v since its slot was freed", batch, ran, limit)
		}
	}
}

// A write's signal during a counter's rollup has it rolled up once more (the
// rollup may have read the counter before the write); a read's touch does not.
func TestSignalWhileRunning(t *testing.T) {
	for _, tt := range []struct {
		name  string
		touch bool
		want  int
	}{
		{name: "signal", want: 2},
		{name: "touch", touch: true, want: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			calls := 0
			running, release := make(chan struct{}), make(chan struct{})
			fn := func(ctx context.Context, k Key) (Outcome, error) {
				mu.Lock()
				calls++
				first := calls == 1
				mu.Unlock()
				if first {
					close(running)
					<-release
				}
				return Outcome{CaughtUp: true}, nil
			}
			p := start(t, fn, quiet())
			ns := namespace(1, 1, time.Millisecond, 1<<20, 1)
			k := Key{NS: ns, Counter: "c"}
			p.Signal(k)
			<-running
			if tt.touch {
				p.Touch(k)
			} else {
				p.Signal(k)
			}
			close(release)
			eventually(t, "counter done", func() bool { return stats(t, p, ns).Pending == 0 })
			mu.Lock()
			defer mu.Unlock()
			if calls != tt.want {
				t.Errorf("%d rollups, want %d", calls, tt.want)
			}
		})
	}
}

// The oldest pending signal (the lag metric) is found in both parts of a
// closed set whose parked entries were put last.
func TestOldestPendingWithParkedLast(t *testing.T) {
	t0 := time.Now()
	fresh := &entry{since: t0.Add(2 * time.Second)}
	parked := &entry{since: t0}
	for _, tt := range []struct {
		name      string
		runStart  int
		lateStart int
		want      time.Time
	}{
		{"both parts waiting", 0, 1, t0},
		{"only the parked part left", 1, 1, t0},
		{"no parked part", 0, 2, fresh.since},
	} {
		q := &queue{held: map[string]*entry{}, closed: []*entry{fresh, parked}, runStart: tt.runStart, lateStart: tt.lateStart}
		if tt.lateStart == 2 {
			q.closed = []*entry{fresh, {since: t0.Add(3 * time.Second)}}
		}
		if got := q.stats().OldestPending; !got.Equal(tt.want) {
			t.Errorf("%s: OldestPending %v, want %v", tt.name, got.Sub(t0), tt.want.Sub(t0))
		}
	}
}
