package postgres

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// groupQueue group-commits requests of one kind: Appends (committer) and
// Fences (fencer). A request is queued and, if fewer than
// Options.Committers writer goroutines are running, starts one. A writer
// takes every request queued (up to limit by weight, and at least one),
// writes them together, answers each, and takes the next lot, until the
// queue is empty. So under light load a request is written at once, alone,
// with no added wait; under heavy load the requests that arrive while the
// writers work are written by the next lot together, and the number of
// transactions per second stays bounded by what the writers can do, not by
// the number of callers.
type groupQueue[T any] struct {
	s      *Store
	what   string      // "append", "fence": for errors
	weight func(T) int // a request's share of limit
	limit  int
	// write writes the live requests of a lot and answers each of them.
	write func(live []*groupRequest[T])
	// abandoned, if set, is the error of a request the Timeout abandoned
	// before a writer took it (it is never written); otherwise that is a
	// timeoutError, as for a request taken.
	abandoned func() error

	mu     sync.Mutex
	queue  []*groupRequest[T]
	active int
	closed bool
	wg     sync.WaitGroup
}

// groupRequest is one request waiting for its lot.
type groupRequest[T any] struct {
	item  T
	state atomic.Int32 // reqQueued, then reqTaken by a writer or reqAbandoned by the caller
	done  chan error   // buffered: the writer never waits for the caller
}

const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

// submit queues item and waits for the outcome, the caller's context, or
// the Timeout. A caller that stops waiting before a writer took its request
// abandons it, and it is never written.
func (q *groupQueue[T]) submit(ctx context.Context, item T) error {
	r := &groupRequest[T]{item: item, done: make(chan error, 1)}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return closedError()
	}
	q.queue = append(q.queue, r)
	if q.active < q.s.opts.Committers {
		q.active++
		q.wg.Add(1)
		go q.run()
	}
	q.mu.Unlock()

	timer := time.NewTimer(q.s.opts.Timeout)
	defer timer.Stop()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		r.state.CompareAndSwap(reqQueued, reqAbandoned)
		return ctxError(ctx.Err())
	case <-timer.C:
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) && q.abandoned != nil {
			return q.abandoned()
		}
		return timeoutError(q.what, q.s.opts.Timeout)
	}
}

// run is a writer goroutine: it writes lots until the queue is empty.
func (q *groupQueue[T]) run() {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		batch := q.take()
		if len(batch) == 0 {
			q.active--
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		live := batch[:0]
		for _, r := range batch {
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				live = append(live, r)
			}
		}
		if len(live) > 0 {
			q.write(live)
		}
	}
}

// take removes from the queue the requests of the next lot: the oldest
// ones, up to limit by weight, and at least one. q.mu is held.
func (q *groupQueue[T]) take() []*groupRequest[T] {
	n, w := 0, 0
	for _, r := range q.queue {
		if n > 0 && w+q.weight(r.item) > q.limit {
			break
		}
		n++
		w += q.weight(r.item)
	}
	if n == len(q.queue) {
		batch := q.queue
		q.queue = nil
		return batch
	}
	batch := slices.Clone(q.queue[:n])
	q.queue = slices.Delete(q.queue, 0, n)
	return batch
}

// close refuses new requests and waits until the queued ones are answered.
func (q *groupQueue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wg.Wait()
}
