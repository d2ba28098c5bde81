package client

import (
	"context"
	"sync"
	"sync/atomic"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// slot is one caller's item in a natural batch, and later its result.
type slot struct {
	ctx   context.Context // the caller's: bounds the item's re-send on its own
	add   *abacusv1.AddCountRequest
	get   *abacusv1.GetCountRequest
	count int64
	err   error
	// gone is set, under batcher.mu, when the caller left before the batch
	// was sent: the item is then left out of it.
	gone bool
}

// batch is a group of queued calls that leave in one RPC. Its results are
// written by the one goroutine that sends it, and read by each caller after
// done is closed.
type batch struct {
	slots []slot
	done  chan struct{}
	// taken is set, under batcher.mu, when the batch leaves the queue; from
	// then on slots does not grow and gone does not change.
	taken bool
	// ctx bounds the batch's RPCs; cancel is called when the last caller
	// waiting for it leaves, so that a batch nobody waits for stops retrying.
	ctx     context.Context
	cancel  context.CancelFunc
	waiting atomic.Int32
}

// sender sends a batch that has been taken and sets every live slot's result.
type sender func(c *Client, b *batch)

// batcher coalesces concurrent calls of one kind (adds or reads) into batch
// RPCs without delaying any call: see the package documentation.
//
// Invariant: the queue is empty whenever fewer than o.inFlight batches are
// in flight. So a call that finds a free slot goes out at once, alone, and a
// call that queues has a batch in flight ahead of it whose return sends it.
type batcher struct {
	c        *Client
	send     sender
	mu       sync.Mutex
	queue    []*batch
	inFlight int
	closed   bool
	wg       sync.WaitGroup // one per batch in flight
}

func newBatcher(c *Client, send sender) *batcher {
	return &batcher{c: c, send: send}
}

// submit sends s, in a batch of its own when a slot is free and otherwise
// with the calls queued beside it, and returns its result.
func (q *batcher) submit(ctx context.Context, s slot) (int64, error) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, ErrClosed
	}
	if q.inFlight < q.c.o.inFlight {
		// The queue is empty (see the invariant): nothing to wait for.
		q.inFlight++
		q.wg.Add(1)
		q.mu.Unlock()
		b := &batch{slots: []slot{s}, taken: true, ctx: ctx}
		q.send(q.c, b)
		q.release()
		return b.slots[0].count, b.slots[0].err
	}
	var b *batch
	if n := len(q.queue); n > 0 && len(q.queue[n-1].slots) < q.c.o.maxBatch {
		b = q.queue[n-1]
	} else {
		b = &batch{slots: make([]slot, 0, min(q.c.o.maxBatch, 64)), done: make(chan struct{})}
		q.queue = append(q.queue, b)
	}
	i := len(b.slots)
	b.slots = append(b.slots, s)
	q.mu.Unlock()

	select {
	case <-b.done:
		return b.slots[i].count, b.slots[i].err
	case <-ctx.Done():
		return q.leave(ctx, b, i)
	}
}

// leave is a queued caller giving up because its context ended. An item
// not yet sent is dropped, and the caller gets the context's error; an item
// already sent may still be applied, so a write gets an *AmbiguousError.
// The batch goes on for the other callers, and stops retrying once none is
// left waiting.
func (q *batcher) leave(ctx context.Context, b *batch, i int) (int64, error) {
	q.mu.Lock()
	if !b.taken {
		b.slots[i].gone = true
		q.mu.Unlock()
		return 0, ctx.Err()
	}
	q.mu.Unlock()
	select {
	case <-b.done:
		return b.slots[i].count, b.slots[i].err
	default:
	}
	if b.waiting.Add(-1) == 0 {
		b.cancel()
	}
	if a := b.slots[i].add; a != nil {
		tok, at := keyOf(a.GetIdempotencyToken())
		return 0, &AmbiguousError{Token: tok, Time: at, Err: ctx.Err()}
	}
	return 0, ctx.Err()
}

// release is called when a batch in flight has returned: it takes the next
// queued batch, if any, for the freed slot, and otherwise frees the slot.
func (q *batcher) release() {
	if b := q.next(); b != nil {
		go q.run(b)
	}
}

// run sends batches until the queue is empty.
func (q *batcher) run(b *batch) {
	for b != nil {
		if b.waiting.Load() > 0 {
			q.send(q.c, b)
		}
		b.cancel()
		close(b.done)
		b = q.next()
	}
}

// next takes the first queued batch for the caller's slot, or frees the
// slot when the queue is empty.
func (q *batcher) next() *batch {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		q.inFlight--
		q.wg.Done()
		return nil
	}
	b := q.queue[0]
	q.queue[0] = nil
	q.queue = q.queue[1:]
	q.take(b)
	return b
}

// take marks b as leaving the queue. Called with q.mu held.
func (q *batcher) take(b *batch) {
	b.taken = true
	live := int32(0)
	for i := range b.slots {
		if !b.slots[i].gone {
			live++
		}
	}
	b.waiting.Store(live)
	b.ctx, b.cancel = context.WithCancel(q.c.root)
}

// close fails every queued call with ErrClosed and refuses new ones. The
// batches in flight finish on their own (Close cancels them).
func (q *batcher) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	// Under the lock, so that a caller leaving at the same time sees the
	// batch both taken and done, and returns its result.
	for _, b := range q.queue {
		b.taken = true
		for i := range b.slots {
			b.slots[i].err = ErrClosed
		}
		close(b.done)
	}
	q.queue = nil
}

// wait returns when no batch is in flight any more.
func (q *batcher) wait() { q.wg.Wait() }

// live returns the indexes of the slots whose callers still wait.
func (b *batch) live() []int {
	idx := make([]int, 0, len(b.slots))
	for i := range b.slots {
		if !b.slots[i].gone {
			idx = append(idx, i)
		}
	}
	return idx
}
