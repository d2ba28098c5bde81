package postgres

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-dev/abacus"
)

// committer group-commits Appends. An Append queues a request and, if fewer
// than Options.Committers committer goroutines are running, starts one. A
// committer takes every request queued (up to MaxBatchEvents events), writes
// them in one transaction (see Store.commitGroup), answers each, and takes
// the next lot, until the queue is empty. So under light load an Append is
// committed at once, alone, with no added wait; under heavy load the Appends
// that arrive while the committers' transactions run are written by the next
// transaction together, and the number of transactions per second stays
// bounded by what the committers can do, not by the number of callers.
type committer struct {
	s      *Store
	mu     sync.Mutex
	queue  []*request
	active int
	closed bool
	wg     sync.WaitGroup
}

// request is one Append waiting for its group.
type request struct {
	evs   []pendingEvent
	state atomic.Int32 // reqQueued, then reqTaken by a committer or reqAbandoned by the caller
	done  chan error   // buffered: the committer never waits for the caller
}

const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

func newCommitter(s *Store) *committer { return &committer{s: s} }

// submit queues evs and waits for the outcome, the caller's context, or the
// Timeout. A caller that stops waiting before a committer took its request
// abandons it, and it is never written.
func (c *committer) submit(ctx context.Context, evs []pendingEvent) error {
	r := &request{evs: evs, done: make(chan error, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return closedError()
	}
	c.queue = append(c.queue, r)
	if c.active < c.s.opts.Committers {
		c.active++
		c.wg.Add(1)
		go c.run()
	}
	c.mu.Unlock()

	timer := time.NewTimer(c.s.opts.Timeout)
	defer timer.Stop()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		r.state.CompareAndSwap(reqQueued, reqAbandoned)
		return ctxError(ctx.Err())
	case <-timer.C:
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return abacus.Errorf(abacus.Unavailable,
				"postgres: append: not committed within %s (the store is overloaded or the server does not answer); nothing was written", c.s.opts.Timeout)
		}
		return timeoutError("append", c.s.opts.Timeout)
	}
}

// run is a committer goroutine: it commits groups until the queue is empty.
func (c *committer) run() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		batch := c.take()
		if len(batch) == 0 {
			c.active--
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		live := batch[:0]
		for _, r := range batch {
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				live = append(live, r)
			}
		}
		if len(live) > 0 {
			c.s.commitGroup(live)
		}
	}
}

// take removes from the queue the requests of the next group: the oldest
// ones, up to MaxBatchEvents events, and at least one. c.mu is held.
func (c *committer) take() []*request {
	n, events := 0, 0
	for _, r := range c.queue {
		if n > 0 && events+len(r.evs) > c.s.opts.MaxBatchEvents {
			break
		}
		n++
		events += len(r.evs)
	}
	if n == len(c.queue) {
		batch := c.queue
		c.queue = nil
		return batch
	}
	batch := slices.Clone(c.queue[:n])
	c.queue = slices.Delete(c.queue, 0, n)
	return batch
}

// close refuses new requests and waits until the queued ones are answered.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
}
