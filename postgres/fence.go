package postgres

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-dev/abacus"
)

// fencesSQL raises the fences of many counters, creating their rows if need
// be, one row per counter, fed by unnest arrays sorted by (ns_id, counter).
// ON CONFLICT DO UPDATE locks each row even where the fence does not rise,
// and the insert of a new row waits for a concurrent insert of the same key:
// either way the statement waits for every group transaction that holds one
// of the rows, which every group writing to the counter does until it
// commits. Rows are locked in the order of the
// arrays, the order in which groups lock them too (groupCountersSQL), so a
// fence batch and a group wait for each other in one direction only and
// cannot deadlock. A counter appears once: ON CONFLICT DO UPDATE may not
// touch a row twice in one statement.
const fencesSQL = `
INSERT INTO {{S}}.counters AS w (ns_id, counter, fence)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])
ON CONFLICT (ns_id, counter) DO UPDATE SET fence = excluded.fence
    WHERE w.fence IS NULL OR w.fence < excluded.fence`

// maxFenceBatch is the most counters one fence transaction raises. A rollup
// batch fences its counters all at once, so a batch of fences is about as
// big as a rollup batch; the bound keeps a statement, and the time its row
// locks are held, small whatever the callers do.
const maxFenceBatch = 1024

// fencer group-commits Fences, as committer does Appends. A rollup fences
// each counter of its batch on its own goroutine, so Fences come in bursts:
// one transaction each made a commit (a WAL flush) and a round trip per
// counter rolled up, more than the Appends being rolled up cost. A Fence
// queues a request and, if fewer than Options.Committers fencer goroutines
// are running, starts one; a fencer takes every request queued (up to
// maxFenceBatch), raises their fences in one statement, its own implicit
// transaction, answers each once it has committed, and takes the next lot
// until the queue is empty. A lone Fence is written at once, with no added
// wait.
type fencer struct {
	s      *Store
	mu     sync.Mutex
	queue  []*fenceRequest
	active int
	closed bool
	wg     sync.WaitGroup
}

// fenceKey names a counter's row in the counters table.
type fenceKey struct {
	ns      int64
	counter string
}

func compareFenceKeys(a, b fenceKey) int {
	return cmp.Or(cmp.Compare(a.ns, b.ns), strings.Compare(a.counter, b.counter))
}

// fenceRequest is one Fence waiting for its batch.
type fenceRequest struct {
	key   fenceKey
	end   int64        // Unix nanoseconds
	state atomic.Int32 // reqQueued, then reqTaken or reqAbandoned, as a request's
	done  chan error   // buffered: the fencer never waits for the caller
}

func newFencer(s *Store) *fencer { return &fencer{s: s} }

// submit queues a fence and waits for the outcome, the caller's context, or
// the Timeout. A caller that stops waiting before a fencer took its request
// abandons it, and it is not written; one taken may be written (raising a
// fence is always safe: it only refuses writes that a rollup could miss).
func (f *fencer) submit(ctx context.Context, key fenceKey, end int64) error {
	r := &fenceRequest{key: key, end: end, done: make(chan error, 1)}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return closedError()
	}
	f.queue = append(f.queue, r)
	if f.active < f.s.opts.Committers {
		f.active++
		f.wg.Add(1)
		go f.run()
	}
	f.mu.Unlock()

	timer := time.NewTimer(f.s.opts.Timeout)
	defer timer.Stop()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		r.state.CompareAndSwap(reqQueued, reqAbandoned)
		return ctxError(ctx.Err())
	case <-timer.C:
		r.state.CompareAndSwap(reqQueued, reqAbandoned)
		return timeoutError("fence", f.s.opts.Timeout)
	}
}

// run is a fencer goroutine: it writes batches until the queue is empty.
func (f *fencer) run() {
	defer f.wg.Done()
	for {
		f.mu.Lock()
		n := min(len(f.queue), maxFenceBatch)
		if n == 0 {
			f.active--
			f.mu.Unlock()
			return
		}
		batch := slices.Clone(f.queue[:n])
		f.queue = slices.Delete(f.queue, 0, n)
		f.mu.Unlock()
		live := batch[:0]
		for _, r := range batch {
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				live = append(live, r)
			}
		}
		if len(live) > 0 {
			err := f.s.fenceBatch(live)
			for _, r := range live {
				r.done <- err
			}
		}
	}
}

// close refuses new requests and waits until the queued ones are answered.
func (f *fencer) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
}

// fenceArgs returns fencesSQL's arguments for reqs: each counter once, with
// the highest of its fences, in key order.
func fenceArgs(reqs []*fenceRequest) (ns []int64, counters []string, ends []int64) {
	sorted := slices.Clone(reqs)
	slices.SortFunc(sorted, func(a, b *fenceRequest) int { return compareFenceKeys(a.key, b.key) })
	for i, r := range sorted {
		if i > 0 && sorted[i-1].key == r.key {
			ends[len(ends)-1] = max(ends[len(ends)-1], r.end)
			continue
		}
		ns, counters, ends = append(ns, r.key.ns), append(counters, r.key.counter), append(ends, r.end)
	}
	return ns, counters, ends
}

// fenceBatch raises the fences of reqs in one statement, retrying
// transient failures (a broken connection, a lock timeout) within the
// Timeout: raising a fence again is a no-op.
func (s *Store) fenceBatch(reqs []*fenceRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	ns, counters, ends := fenceArgs(reqs)
	var err error
	for attempt := 0; attempt < maxGroupAttempts && ctx.Err() == nil; attempt++ {
		if _, err = s.pool.Exec(ctx, s.sql(fencesSQL), ns, counters, ends); err == nil || codeOf(err) != abacus.Unavailable {
			break
		}
	}
	if err == nil {
		s.fences.Add(int64(len(reqs)))
		s.fenceCommits.Add(1)
		return nil
	}
	if ctx.Err() != nil {
		return timeoutError("fence", s.opts.Timeout)
	}
	return classify(context.Background(), err, "fence")
}
