package rollup

import (
	"sync/atomic"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// nsQueues are the queues of one namespace on this node.
type nsQueues struct {
	id     uint64
	name   string
	ns     atomic.Pointer[abacus.Namespace] // newest configuration seen
	queues []*queue                         // fixed at creation: routing depends on len
	batch  prometheus.Observer              // batch durations, seconds
}

func newNSQueues(p *Pipeline, ns *abacus.Namespace) *nsQueues {
	nq := &nsQueues{id: ns.ID, name: ns.Name, batch: p.met.batchObserver(ns.Name)}
	nq.ns.Store(ns)
	nq.queues = make([]*queue, max(ns.Queue.NumQueues, 1))
	for i := range nq.queues {
		nq.queues[i] = newQueue(p, nq)
	}
	return nq
}

// observe keeps the newest configuration of the namespace, so that a config
// change reaches the queues (all but NumQueues) without a restart. Signals
// may carry older configurations than one already seen: Updated orders them.
func (nq *nsQueues) observe(ns *abacus.Namespace) {
	cur := nq.ns.Load()
	if cur != ns && ns.Updated.After(cur.Updated) {
		nq.ns.CompareAndSwap(cur, ns)
	}
}

// route returns the queue of counter. The hash is of the counter name alone
// because the queues are already the namespace's own.
func (nq *nsQueues) route(counter string) *queue {
	return nq.queues[queueIndex(counter, len(nq.queues))]
}

// queueIndex returns the queue of counter among n.
func queueIndex(counter string, n int) int {
	if n <= 1 {
		return 0
	}
	return int(xxhash.Sum64String(counter) % uint64(n))
}

// config is the part of a namespace's configuration the queues use, with
// out-of-range values (which controlplane never produces) made harmless.
type config struct {
	coalesce time.Duration
	capacity int64 // ≤ 0: unbounded
	batch    int
}

func (nq *nsQueues) config() config {
	ns := nq.ns.Load()
	return config{
		coalesce: max(ns.Queue.Coalesce, 0),
		capacity: ns.Queue.CapacityBytes,
		batch:    max(ns.RollupBatchCount, 1),
	}
}

// Stats describes the queues of one namespace on this node. Counts are since
// the queues were created.
type Stats struct {
	// Queues is the number of queues.
	Queues int
	// Pending is the number of counters held: waiting for a rollup or running one.
	Pending int
	// Bytes is the estimated memory of the held counters (see EntryOverhead).
	Bytes int64
	// OldestPending is when the oldest signal still waiting arrived; zero if
	// none is waiting. Its age is the rollup lag.
	OldestPending time.Time
	// Received counts signals, Dropped those refused for capacity.
	Received, Dropped uint64
	// Rollups counts Func calls that succeeded, Failures those that failed.
	Rollups, Failures uint64
	// Requeued counts counters put back for another window: behind after a
	// rollup, signalled while running, or failed.
	Requeued uint64
	// Abandoned counts counters let go while still behind: by a drain, by a
	// cancelled pipeline, or after a permanent error.
	Abandoned uint64
	// Evicted counts parked counters let go to make room for a new signal in
	// a full queue (see Outcome.NotBefore).
	Evicted uint64
}

// add folds o into s.
func (s *Stats) add(o Stats) {
	s.Queues += o.Queues
	s.Pending += o.Pending
	s.Bytes += o.Bytes
	if !o.OldestPending.IsZero() && (s.OldestPending.IsZero() || o.OldestPending.Before(s.OldestPending)) {
		s.OldestPending = o.OldestPending
	}
	s.Received += o.Received
	s.Dropped += o.Dropped
	s.Rollups += o.Rollups
	s.Failures += o.Failures
	s.Requeued += o.Requeued
	s.Abandoned += o.Abandoned
	s.Evicted += o.Evicted
}

func (nq *nsQueues) stats() Stats {
	var s Stats
	for _, q := range nq.queues {
		s.add(q.stats())
	}
	return s
}
