package rollup

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-dev/abacus"
)

// Key names one counter of one namespace. Queues route and coalesce by
// (NS.ID, Counter); NS is the configuration passed on to Func.
type Key struct {
	NS      *abacus.Namespace
	Counter string
}

// Func rolls one counter up: it reads the counter's checkpoint, aggregates
// the immutable window after it and writes the new checkpoint. It reports
// CaughtUp=false when the counter has writes at or after the new checkpoint
// (lastWriteTs ≥ checkpoint), so that the pipeline rolls it up again: at
// Outcome.NotBefore if set (when the window will have passed the last
// write), else in the next window.
//
// Func runs concurrently for different counters, never for one counter on
// one Pipeline. It must return promptly once ctx is cancelled: Drain waits
// for running calls so that the stores can be closed after it.
type Func func(ctx context.Context, k Key) (Outcome, error)

// BatchFunc rolls up a batch of counters, all of one namespace, on at most
// parallelism goroutines, and returns an Outcome and an error per key, in
// order. It lets a store read what the batch needs together (see
// Options.Batch). The contract of Func holds for each key.
type BatchFunc func(ctx context.Context, keys []Key, parallelism int) ([]Outcome, []error)

// Outcome is what a Func reports of one rollup.
type Outcome struct {
	// CaughtUp: the checkpoint covers every write; the pipeline lets the
	// counter go until its next signal.
	CaughtUp bool
	// NotBefore, for a counter not caught up, is the earliest time a further
	// rollup can finish it. The pipeline parks the counter until then rather
	// than rolling it up every window to no end; a Signal (a new write)
	// brings it back to the next window, a Touch (a read) does not: Func
	// should return the soonest time a rollup could give reads a better
	// count. Zero: the next window.
	NotBefore time.Time
}

// Pipeline schedules the rollups of one node. Its methods are safe for
// concurrent use.
type Pipeline struct {
	fn   Func
	opts Options
	sem  chan struct{} // nil: no node-wide bound on running rollups
	errs errLimiter
	met  *metrics

	// ctx is the parent of every Func call; cancel stops the pipeline hard.
	ctx    context.Context
	cancel context.CancelFunc

	// spaces maps namespace IDs to their queues. Signal reads it without a
	// lock; it is replaced, never changed, under mu.
	spaces atomic.Pointer[map[uint64]*nsQueues]

	// draining is set once, under mu, by the first Drain; drainCh closes then.
	draining atomic.Bool
	drainCh  chan struct{}
	done     chan struct{} // closed when every queue goroutine has returned

	// lost counts dropped signals and evicted counters, over every
	// namespace ever; unlike Stats it never goes down (see Lost).
	lost atomic.Uint64

	mu      sync.Mutex
	removed map[uint64]struct{} // IDs of removed namespaces; IDs are never reused
	wg      sync.WaitGroup      // queue goroutines
}

// New returns a running pipeline that rolls counters up with fn. It fails if
// fn is nil or if the metrics cannot be registered on opts.Registerer.
func New(fn Func, opts Options) (*Pipeline, error) {
	if fn == nil {
		return nil, errors.New("rollup: nil Func")
	}
	opts = opts.withDefaults()
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{
		fn:      fn,
		opts:    opts,
		errs:    errLimiter{every: opts.ErrorLogInterval},
		met:     met,
		drainCh: make(chan struct{}),
		done:    make(chan struct{}),
		removed: make(map[uint64]struct{}),
	}
	if opts.MaxConcurrency > 0 {
		p.sem = make(chan struct{}, opts.MaxConcurrency)
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	spaces := make(map[uint64]*nsQueues)
	p.spaces.Store(&spaces)
	if opts.Registerer != nil {
		met.pipeline = p
		if err := opts.Registerer.Register(met); err != nil {
			p.cancel()
			return nil, err
		}
	}
	return p, nil
}

// Signal asks for a rollup of k after a write. It never blocks on a rollup
// and never fails the caller: it returns false when the signal was not queued
// (the pipeline is draining, the namespace was removed, k.NS is nil, or the
// queue is full), in which case the counter heals at its next signal. A
// parked counter (see Outcome.NotBefore) goes back to the next window: the
// write makes the count its last rollup cached stale.
func (p *Pipeline) Signal(k Key) bool { return p.signal(k, true) }

// Touch is Signal for a caller that has seen no new write: a read served the
// count a rollup cached, or a sweep for signals lost to full queues. It
// leaves a parked counter parked, since by Outcome.NotBefore's contract a
// rollup before then could not give reads a better count (a read sweep over
// a million parked counters would otherwise roll each of them up once more),
// and does not make a running rollup run again.
func (p *Pipeline) Touch(k Key) bool { return p.signal(k, false) }

func (p *Pipeline) signal(k Key, write bool) bool {
	q := p.queueOf(k)
	return q != nil && q.signal(k, write)
}

// queueOf returns the queue of k, creating its namespace's queues if
// needed; nil if k is not to be queued.
func (p *Pipeline) queueOf(k Key) *queue {
	if k.NS == nil || p.draining.Load() {
		return nil
	}
	nq := (*p.spaces.Load())[k.NS.ID]
	if nq == nil {
		if nq = p.addNamespace(k.NS); nq == nil {
			return nil
		}
	}
	nq.observe(k.NS)
	return nq.route(k.Counter)
}

// SignalAll is Signal for the counters of one batch write: each queue is
// locked once for all of its counters, not once per counter.
func (p *Pipeline) SignalAll(ks []Key) {
	qs := make([]*queue, len(ks))
	for i, k := range ks {
		qs[i] = p.queueOf(k)
	}
	for i, q := range qs {
		if q == nil {
			continue
		}
		q.mu.Lock()
		for j := i; j < len(ks); j++ {
			if qs[j] == q {
				q.signalLocked(ks[j], true)
				qs[j] = nil
			}
		}
		q.mu.Unlock()
	}
}

// addNamespace returns the queues of ns, creating and starting them if
// needed; nil if the pipeline drains or ns was removed.
func (p *Pipeline) addNamespace(ns *abacus.Namespace) *nsQueues {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining.Load() {
		return nil
	}
	if _, gone := p.removed[ns.ID]; gone {
		return nil
	}
	old := *p.spaces.Load()
	if nq := old[ns.ID]; nq != nil {
		return nq
	}
	nq := newNSQueues(p, ns)
	spaces := make(map[uint64]*nsQueues, len(old)+1)
	for id, q := range old {
		spaces[id] = q
	}
	spaces[ns.ID] = nq
	p.spaces.Store(&spaces)
	for _, q := range nq.queues {
		p.wg.Go(q.run)
	}
	return nq
}

// RemoveNamespace forgets the queued signals of a deleted namespace and stops
// its queues; rollups already running finish, and their outcome is ignored.
// Because namespace IDs are never reused, later signals for id are refused.
func (p *Pipeline) RemoveNamespace(id uint64) {
	p.mu.Lock()
	p.removed[id] = struct{}{}
	old := *p.spaces.Load()
	nq := old[id]
	if nq == nil {
		p.mu.Unlock()
		return
	}
	spaces := make(map[uint64]*nsQueues, len(old))
	nameLive := false
	for qid, q := range old {
		if qid != id {
			spaces[qid] = q
			nameLive = nameLive || q.name == nq.name
		}
	}
	p.spaces.Store(&spaces)
	p.mu.Unlock()

	for _, q := range nq.queues {
		q.remove()
	}
	if !nameLive {
		p.met.forget(nq.name)
	}
}

// Drain stops taking signals, rolls up what the queues hold (see the package
// documentation for what "once" means during a drain) and stops the queues.
// It returns nil when everything is done. When ctx ends first, Drain cancels
// the running rollups, waits for their Func calls to return, and returns
// ctx.Err(); what was left is abandoned. Drain may be called more than once;
// every call waits.
func (p *Pipeline) Drain(ctx context.Context) error {
	p.mu.Lock()
	if !p.draining.Load() {
		p.draining.Store(true)
		close(p.drainCh)
		go func() {
			p.wg.Wait()
			p.logDrained()
			close(p.done)
		}()
	}
	p.mu.Unlock()

	select {
	case <-p.done:
		p.cancel()
		return nil
	case <-ctx.Done():
	}
	select {
	case <-p.done:
		p.cancel()
		return nil
	default:
	}
	p.cancel()
	<-p.done
	return ctx.Err()
}

// Lost returns how many signals were dropped and parked counters evicted,
// over every namespace, since the pipeline started: counters that may be
// behind with nothing queued for them (see Pipeline's caller's sweep).
// The count only grows, so a caller can compare two readings.
func (p *Pipeline) Lost() uint64 { return p.lost.Load() }

// Stats returns the state of the queues of the namespace with this id, and
// false if the namespace has no queues (never signalled, or removed).
func (p *Pipeline) Stats(id uint64) (Stats, bool) {
	nq := (*p.spaces.Load())[id]
	if nq == nil {
		return Stats{}, false
	}
	return nq.stats(), true
}

// logDrained logs what the pipeline left behind, which a restart picks up.
func (p *Pipeline) logDrained() {
	var s Stats
	for _, nq := range *p.spaces.Load() {
		s.add(nq.stats())
	}
	p.opts.Logger.Info("rollup pipeline stopped",
		slog.Uint64("rollups", s.Rollups),
		slog.Uint64("abandoned", s.Abandoned),
		slog.Bool("cancelled", p.ctx.Err() != nil))
}
