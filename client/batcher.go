package client

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// slot is one caller's item in a natural batch, and later its result.
type slot struct {
	ctx   context.Context // the caller's: bounds the item's re-send on its own
	it    item
	count int64
	err   error
	// gone is set, under batcher.mu, when the caller left before the batch
	// was sent: the item is then left out of it.
	gone bool
}

// batch is a group of queued calls that leave in one RPC. Its results are
// written by the one goroutine that sends it, and read by each caller after
// done is closed.
//
// Batches are recycled (batchPool), slots and all, so that a call costs no
// allocation of its own: refs counts who still uses a batch (each of its
// callers until it has read its result, and its sender, or the queue, until
// done is closed), and the last of them puts it back.
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
	refs    atomic.Int32
	// live holds the slots sent (see live), kept for the next use.
	liveBuf []*slot
}

var batchPool = sync.Pool{New: func() any { return new(batch) }}

// newBatch returns an empty batch with n references.
func newBatch(n int32) *batch {
	b := batchPool.Get().(*batch)
	b.refs.Store(n)
	return b
}

// unref drops a reference to b, and recycles it after the last one. The
// caller must not touch b afterwards.
func (b *batch) unref() {
	if b.refs.Add(-1) != 0 {
		return
	}
	clear(b.slots) // drops the callers' contexts, names and errors
	b.slots = b.slots[:0]
	clear(b.liveBuf)
	b.liveBuf = b.liveBuf[:0]
	b.done, b.taken, b.ctx, b.cancel = nil, false, nil, nil
	b.waiting.Store(0)
	// A batch grown by a burst is not kept: it would hold its memory for
	// every later small batch.
	if cap(b.slots) <= 1024 {
		batchPool.Put(b)
	}
}

// sender sends a batch that has been taken and sets every live slot's result.
type sender func(c *Client, b *batch)

// batcher coalesces concurrent calls of one kind (adds or reads) into batch
// RPCs, delaying a call only while gather runs: see the package
// documentation.
//
// Invariant: the queue is empty whenever fewer than o.inFlight batches are
// in flight. So a call that finds a free slot goes out at once, alone, and a
// call that queues has a batch in flight ahead of it whose return sends it.
//
// A call costs a lock, an append to the open batch and a wait on its done
// channel: no goroutine is started, nothing is allocated, and one close
// wakes every caller of a batch. The goroutine that sends a batch (a lone
// caller, or run) takes the next queued one when it returns.
type batcher struct {
	c        *Client
	send     sender
	writes   bool // adds: a caller who leaves a batch in flight gets an *AmbiguousError
	mu       sync.Mutex
	queue    []*batch
	inFlight int
	closed   bool
	wg       sync.WaitGroup // one per batch in flight
}

func newBatcher(c *Client, send sender, writes bool) *batcher {
	return &batcher{c: c, send: send, writes: writes}
}

// submit sends the item it, in a batch of its own when a slot is free and
// otherwise with the calls queued beside it, and returns its result.
func (q *batcher) submit(ctx context.Context, it item) (int64, error) {
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
		b := newBatch(1)
		b.slots = append(b.slots, slot{ctx: ctx, it: it})
		b.taken, b.ctx = true, ctx
		q.send(q.c, b)
		q.release()
		n, err := b.slots[0].count, b.slots[0].err
		b.unref()
		return n, err
	}
	var b *batch
	if n := len(q.queue); n > 0 && len(q.queue[n-1].slots) < q.c.o.maxBatch {
		b = q.queue[n-1]
	} else {
		b = newBatch(1) // the queue's reference, which the sender inherits
		b.done = make(chan struct{})
		q.queue = append(q.queue, b)
	}
	i := len(b.slots)
	b.slots = append(b.slots, slot{ctx: ctx, it: it})
	b.refs.Add(1)
	q.mu.Unlock()

	if d := ctx.Done(); d != nil {
		select {
		case <-b.done:
		case <-d:
			return q.leave(ctx, b, i)
		}
	} else {
		<-b.done
	}
	n, err := b.slots[i].count, b.slots[i].err
	b.unref()
	return n, err
}

// leave is a queued caller giving up because its context ended. An item
// not yet sent is dropped, and the caller gets the context's error; an item
// already sent may still be applied, so a write gets an *AmbiguousError.
// The batch goes on for the other callers, and stops retrying once none is
// left waiting.
func (q *batcher) leave(ctx context.Context, b *batch, i int) (int64, error) {
	defer b.unref()
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
	if q.writes {
		tok, at := b.slots[i].it.key()
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
		// The callers still waiting when it leaves; those that left
		// before will not be back at once.
		released := int(b.waiting.Load())
		if released > 0 {
			q.send(q.c, b)
		}
		b.cancel()
		close(b.done)
		b.unref()
		q.gather(released)
		b = q.next()
	}
}

// gatherYields and gatherFor bound gather. A yield lets the goroutines that
// close(b.done) made runnable have the processor first; it takes about a
// microsecond when none is runnable, and up to a scheduling round when the
// processor is busy with other work, so gather also stops once gatherFor
// has passed (checked after each yield).
const (
	gatherYields = 16
	gatherFor    = 100 * time.Microsecond
)

// gather gives the callers that a returned batch has just released the
// chance to queue their next call before the queued batch leaves, waiting
// for nothing else: it yields the processor until the queue has grown by
// released items, at most gatherYields times and for about gatherFor.
// Without it, closed-loop callers split into two halves that take turns
// (one batch in flight, the other queued), and every RPC, whose fixed cost
// in syscalls and wake-ups is many times an item's, carries half of them;
// with it, the returned callers mostly join the queued ones
// (docs/benchmarks.md, "Fifth round"). It keeps the in-flight slot while
// it runs, even with nothing queued: that is what lets a whole group of
// returned callers leave as one batch, rather than the first of them alone
// and the rest behind it. So a call that arrives meanwhile queues and waits
// for the gather (about gatherFor at most). It runs only in run, i.e. after
// a queued batch, under load: at low load a call still goes out at once.
func (q *batcher) gather(released int) {
	start, until := q.queued(), time.Now().Add(gatherFor)
	for range gatherYields {
		runtime.Gosched()
		if q.queued()-start >= released || time.Now().After(until) {
			return
		}
	}
}

// queued returns the number of calls queued, gone ones included.
func (q *batcher) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, b := range q.queue {
		n += len(b.slots)
	}
	return n
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
	// Shifted rather than resliced, so that the queue (a batch or two)
	// keeps reusing its array.
	b := q.queue[0]
	n := copy(q.queue, q.queue[1:])
	q.queue[n] = nil
	q.queue = q.queue[:n]
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
		b.unref() // the queue's: no sender will have it
	}
	q.queue = nil
}

// wait returns when no batch is in flight any more.
func (q *batcher) wait() { q.wg.Wait() }

// live returns the slots whose callers still wait.
func (b *batch) live() []*slot {
	live := b.liveBuf[:0]
	for i := range b.slots {
		if !b.slots[i].gone {
			live = append(live, &b.slots[i])
		}
	}
	b.liveBuf = live
	return live
}
