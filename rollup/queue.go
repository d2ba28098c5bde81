package rollup

import (
	"strings"
	"sync"
	"time"
)

// EntryOverhead estimates the bytes a queue spends per held counter besides
// the counter's name: the entry, its map slot and its place in the window
// slices. CapacityBytes is compared against len(counter) + EntryOverhead per
// counter.
const EntryOverhead = 144

// entry is one held counter.
type entry struct {
	key   Key
	size  int64
	since time.Time // when the signal or re-queue that made it pending came
	// notBefore is the end of a retry backoff; zero for a counter waiting for
	// its window to close.
	notBefore time.Time
	parked    bool // notBefore is from Outcome.NotBefore, not a failure backoff
	parks     int  // times parked: a parkedFIFO item is current if its park matches
	evicted   bool // let go while parked, to make room; still in open until the next closeSet
	attempts  int  // consecutive failures
	running   bool // its Func call is running
	again     bool // signalled while running: roll it up once more
	drained   bool // started during the drain: never started again
}

// queue is one of a namespace's rollup queues: a set of held counters and the
// goroutine (run) that rolls them up.
type queue struct {
	p    *Pipeline
	nq   *nsQueues
	wake chan struct{} // poke: the goroutine's wake-up time may have moved

	mu   sync.Mutex
	held map[string]*entry
	// open gathers the next set, in arrival order (so oldest first).
	open []*entry
	// closed is the set being rolled up; closed[next:] have not started and
	// closed[runStart:next] are running.
	closed         []*entry
	next, runStart int
	lateStart      int // closed[lateStart:] are the parked entries closeSet put last
	bytes          int64
	closeAt        time.Time // when the open set's window ends; zero if it holds no fresh entry
	retryAt        time.Time // earliest backoff end in the open set; zero if none
	retrying       int       // open entries waiting for a backoff
	pauseUntil     time.Time // back-pressure: no batch starts before
	// parkedFIFO lists parked entries in the order they were parked, from
	// parkedHead on; items no longer current (un-parked, parked again
	// later, evicted) are skipped when read, and dropped when they
	// outnumber the entries waiting in the open set (retrying, which counts
	// every parked one), so the list stays within a small multiple of them.
	parkedFIFO []parkedItem
	parkedHead int
	evictedIn  int // evicted entries still in open
	removed    bool
	st         Stats // counters only; the rest is computed by stats
}

func newQueue(p *Pipeline, nq *nsQueues) *queue {
	return &queue{p: p, nq: nq, wake: make(chan struct{}, 1), held: make(map[string]*entry)}
}

// entrySize is the estimated memory of holding counter.
func entrySize(counter string) int64 { return int64(len(counter)) + EntryOverhead }

// signal queues k unless the queue is full; see Pipeline.Signal. write
// (Signal) sends a parked k back to the next window and has a running one
// rolled up again; without it (Touch) neither.
func (q *queue) signal(k Key, write bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.signalLocked(k, write)
}

// signalLocked is signal for a caller that holds q.mu.
func (q *queue) signalLocked(k Key, write bool) bool {
	// draining is read under mu so that a signal taken here is either seen by
	// the drain or refused: the goroutine decides to stop under mu too.
	if q.removed || q.p.draining.Load() {
		return false
	}
	q.st.Received++
	if e := q.held[k.Counter]; e != nil {
		if e.running {
			// The rollup may have read the counter before this write.
			e.again = e.again || write
		} else {
			e.key.NS = k.NS // running entries' keys are read without mu
			if e.parked && write {
				// Parked until its window passes, but a new write wants a
				// fresh (provisional) count: back to the next window.
				e.notBefore, e.parked = time.Time{}, false
				q.retrying--
				q.openWindow(time.Now())
			}
		}
		return true
	}
	size := entrySize(k.Counter)
	if c := q.nq.config().capacity; c > 0 {
		// A full queue makes room by letting go of parked counters first: a
		// new signal is a write whose count is not rolled up at all yet,
		// while a parked counter's count is (only its checkpoint is left to
		// finish, which a later signal or Pipeline's caller's sweep does).
		for q.bytes+size > c && q.evictParked() {
		}
		if q.bytes+size > c {
			q.st.Dropped++
			q.p.lost.Add(1)
			return false
		}
	}
	now := time.Now()
	// The queue keeps the name for as long as it holds the counter: a copy
	// of its own, not a slice of the caller's request that would keep all
	// of it.
	k.Counter = strings.Clone(k.Counter)
	e := &entry{key: k, size: size, since: now}
	q.held[k.Counter] = e
	q.bytes += size
	q.push(e, now)
	return true
}

// push adds e to the open set and wakes the goroutine if that brings its
// wake-up time forward.
func (q *queue) push(e *entry, now time.Time) {
	e.running = false
	q.open = append(q.open, e)
	if e.notBefore.IsZero() {
		q.openWindow(now)
		return
	}
	q.retrying++
	if q.retryAt.IsZero() || e.notBefore.Before(q.retryAt) {
		q.retryAt = e.notBefore
		q.poke()
	}
}

// parkedItem is one park of an entry, current while e.parks == parks.
type parkedItem struct {
	e     *entry
	parks int
}

func (it parkedItem) current() bool { return it.e.parked && it.e.parks == it.parks }

// park marks e, in the open set, as waiting for its NotBefore (set by the
// caller) and lists it for eviction.
func (q *queue) park(e *entry) {
	e.parked = true
	e.parks++
	if n := len(q.parkedFIFO) - q.parkedHead; n > 1024 && n > 2*q.retrying {
		live := make([]parkedItem, 0, q.retrying+1)
		for _, it := range q.parkedFIFO[q.parkedHead:] {
			if it.current() {
				live = append(live, it)
			}
		}
		q.parkedFIFO, q.parkedHead = live, 0
	}
	q.parkedFIFO = append(q.parkedFIFO, parkedItem{e, e.parks})
}

// evictParked lets the longest-parked counter go; false if none is parked.
func (q *queue) evictParked() bool {
	for q.parkedHead < len(q.parkedFIFO) {
		it := q.parkedFIFO[q.parkedHead]
		q.parkedFIFO[q.parkedHead] = parkedItem{}
		q.parkedHead++
		if !it.current() {
			continue
		}
		e := it.e
		e.parked, e.evicted = false, true
		q.retrying--
		q.evictedIn++
		q.drop(e)
		q.st.Evicted++
		q.p.lost.Add(1)
		return true
	}
	return false
}

// openWindow starts the open set's coalescing window unless it runs. Called
// with mu held, for a fresh entry in the open set.
func (q *queue) openWindow(now time.Time) {
	if q.closeAt.IsZero() {
		q.closeAt = now.Add(q.nq.config().coalesce)
		q.poke()
	}
}

// poke wakes the goroutine: its wake-up time may have moved.
func (q *queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// drop lets e go. Called with mu held.
func (q *queue) drop(e *entry) {
	delete(q.held, e.key.Counter)
	q.bytes -= e.size
}

// remove forgets everything the queue holds and stops its goroutine after
// its running batch, whose outcome is then ignored.
func (q *queue) remove() {
	q.mu.Lock()
	q.removed = true
	q.held, q.open, q.closed, q.next, q.runStart, q.bytes, q.retrying = nil, nil, nil, 0, 0, 0, 0
	q.parkedFIFO, q.parkedHead, q.evictedIn = nil, 0, 0
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// stats returns the queue's Stats.
func (q *queue) stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.st
	s.Queues = 1
	s.Pending = len(q.held)
	s.Bytes = q.bytes
	// The open set is in arrival order, so its first entry is the oldest.
	for _, e := range q.open {
		if !e.evicted {
			s.OldestPending = e.since
			break
		}
	}
	// The closed set is in arrival order in two parts (see closeSet): the
	// first not started of each part is the part's oldest.
	for _, i := range []int{q.runStart, max(q.runStart, q.lateStart)} {
		if i < len(q.closed) {
			if t := q.closed[i].since; s.OldestPending.IsZero() || t.Before(s.OldestPending) {
				s.OldestPending = t
			}
		}
	}
	return s
}
