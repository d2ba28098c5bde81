package rollup

import (
	"time"
)

// run is the queue's goroutine: it waits for sets to close and rolls them up
// batch by batch, until the pipeline has drained or stopped or the queue is
// removed.
func (q *queue) run() {
	for {
		batch := q.nextBatch()
		if batch == nil {
			return
		}
		start := time.Now()
		results, ran := q.p.rollupBatch(batch)
		q.nq.batch.Observe(time.Since(start).Seconds())
		q.finish(batch, results, ran)
	}
}

// nextBatch waits until a batch may start and returns it, its entries marked
// running; nil when the goroutine should return.
func (q *queue) nextBatch() []*entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.removed {
			return nil
		}
		if q.p.ctx.Err() != nil {
			q.abandonAll()
			return nil
		}
		draining := q.p.draining.Load()
		now := time.Now()
		if q.next < len(q.closed) {
			if !draining && now.Before(q.pauseUntil) {
				q.sleep(q.pauseUntil)
				continue
			}
			return q.take(q.batchSize(), draining)
		}
		q.resetClosed()
		switch {
		case len(q.open) == 0 && draining:
			return nil
		case len(q.open) == 0:
			q.sleep(time.Time{})
		case draining:
			q.closeSet(now, true)
		default:
			if at := q.dueAt(); now.Before(at) {
				q.sleep(at)
			} else {
				q.closeSet(now, false)
			}
		}
	}
}

// dueAt is when the open set has work: its window's end or the first backoff
// end, and not before the back-pressure pause ends.
func (q *queue) dueAt() time.Time {
	at := q.closeAt
	if at.IsZero() || (!q.retryAt.IsZero() && q.retryAt.Before(at)) {
		at = q.retryAt
	}
	if at.Before(q.pauseUntil) {
		at = q.pauseUntil
	}
	return at
}

// sleep releases mu until t (forever if zero), a poke, the drain or the stop.
func (q *queue) sleep(t time.Time) {
	q.mu.Unlock()
	defer q.mu.Lock()
	var timeout <-chan time.Time
	if !t.IsZero() {
		timer := time.NewTimer(time.Until(t))
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-timeout:
	case <-q.wake:
	case <-q.p.drainCh:
	case <-q.p.ctx.Done():
	}
}

// closeSet moves the open entries that are due (every one if all) to the
// closed set, which is empty, keeping their order except that parked entries
// go last. An entry is due when its window has ended, or when it waits for a
// backoff that has ended.
//
// A parked counter's count is rolled up and cached already; what is left is
// its checkpoint, which nothing waits for. The other entries' counts are not
// rolled up yet, and under a backlog (a million fresh counters, whose parks
// all end within seconds of each other) finishing parked checkpoints first
// would keep those counts inexact for as long.
func (q *queue) closeSet(now time.Time, all bool) {
	windowEnded := !q.closeAt.IsZero() && !now.Before(q.closeAt)
	if q.retrying == 0 && q.evictedIn == 0 && (all || windowEnded) {
		// The common case: every entry is due. Swapping keeps the lock, which
		// signals wait for, held for O(1) rather than O(set).
		q.open, q.closed = q.closed[:0], q.open
		q.lateStart = len(q.closed)
		q.closeAt = time.Time{}
		return
	}
	keep := q.open[:0]
	var late []*entry
	freshLeft := false
	q.retryAt, q.retrying = time.Time{}, 0
	q.evictedIn = 0
	for _, e := range q.open {
		if e.evicted {
			continue
		}
		fresh := e.notBefore.IsZero()
		if all || (fresh && windowEnded) || (!fresh && !now.Before(e.notBefore)) {
			if e.parked {
				late = append(late, e)
			} else {
				q.closed = append(q.closed, e)
			}
			e.notBefore, e.parked = time.Time{}, false
			continue
		}
		keep = append(keep, e)
		if fresh {
			freshLeft = true
			continue
		}
		q.retrying++
		if q.retryAt.IsZero() || e.notBefore.Before(q.retryAt) {
			q.retryAt = e.notBefore
		}
	}
	q.lateStart = len(q.closed)
	q.closed = append(q.closed, late...)
	clear(q.open[len(keep):])
	q.open = keep
	if !freshLeft {
		q.closeAt = time.Time{}
	}
}

// batchSize is how many counters the next batch takes: the namespace's
// rollup_batch_count, or with Options.Batch up to BatchGrowth times that
// while the closed set has that many waiting. A batch call's fixed cost
// (its store passes, its goroutines) then spreads over more counters when
// there is a backlog, and a single counter is not held back by it.
func (q *queue) batchSize() int {
	n := q.nq.config().batch
	if q.p.opts.Batch == nil || q.p.opts.BatchGrowth <= 1 {
		return n
	}
	return max(n, min(len(q.closed)-q.next, n*q.p.opts.BatchGrowth))
}

// take starts the next batch of at most n entries of the closed set.
func (q *queue) take(n int, draining bool) []*entry {
	end := min(q.next+n, len(q.closed))
	batch := q.closed[q.next:end]
	for _, e := range batch {
		e.running = true
		e.drained = draining
	}
	q.runStart, q.next = q.next, end
	return batch
}

// resetClosed empties the finished closed set, keeping a small array for the
// next one and letting a large one go.
func (q *queue) resetClosed() {
	if cap(q.closed) > 1024 {
		q.closed = nil
	} else {
		clear(q.closed)
		q.closed = q.closed[:0]
	}
	q.next, q.runStart, q.lateStart = 0, 0, 0
}

// abandonAll lets every held counter go once the pipeline has stopped.
func (q *queue) abandonAll() {
	q.st.Abandoned += uint64(len(q.held))
	q.held, q.open, q.closed, q.next, q.runStart, q.bytes, q.retrying = nil, nil, nil, 0, 0, 0, 0
	q.parkedFIFO, q.parkedHead, q.evictedIn = nil, 0, 0
}

// finish records the outcome of a batch: done counters are let go, the
// others re-queued, and the back-pressure pause is set.
func (q *queue) finish(batch []*entry, results []result, ran time.Duration) {
	var failed []failure
	q.mu.Lock()
	now := time.Now()
	draining := q.p.draining.Load()
	stopped := q.p.ctx.Err() != nil
	for i, e := range batch {
		if q.removed {
			break
		}
		r := results[i]
		again := e.again
		e.again = false
		done := r.err == nil && r.out.CaughtUp && !again
		if stopped {
			// Calls fail now because they were cancelled: no failure to count
			// or log. What is not done, abandonAll lets go.
			if r.err == nil {
				q.st.Rollups++
			}
			if done {
				q.drop(e)
			}
			continue
		}
		if r.err == nil {
			q.st.Rollups++
			e.attempts = 0
		} else {
			q.st.Failures++
			e.attempts++
			failed = append(failed, failure{key: e.key, err: r.err, attempts: e.attempts})
		}
		switch {
		case done:
			q.drop(e)
		case r.err != nil && permanent(r.err), draining && e.drained:
			q.st.Abandoned++
			q.drop(e)
		default:
			switch {
			case r.err != nil:
				// A failed rollup keeps its pending time, so the lag metric
				// grows while the stores are out instead of resetting.
				e.notBefore = now.Add(q.p.backoff(e.attempts))
			case !again && !draining && r.out.NotBefore.After(now):
				e.since, e.notBefore = now, r.out.NotBefore
				q.park(e)
			default:
				e.since = now
			}
			q.st.Requeued++
			q.push(e, now)
		}
	}
	if !draining {
		q.pauseUntil = now.Add(q.p.opts.pause(ran))
	}
	q.runStart = q.next
	q.mu.Unlock()

	for _, f := range failed {
		q.p.logFailure(f)
	}
}
