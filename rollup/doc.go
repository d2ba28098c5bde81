// Package rollup owns the rollup of counters: when each counter is rolled up
// (the Pipeline [ROLL-4]), how (Roller, which folds a counter's events into
// its checkpoint [ROLL-1]), and over which stores (abacus.Backends). Fold is
// the one fold of a counter's events, shared by rollups and the counter
// service's ACCURATE reads.
//
//	counter ──Signal/Touch {ns, counter}──► Pipeline: queues → coalesce → batches
//	                                              │ Func / BatchFunc
//	                                              ▼
//	                                  Roller ──► RollupStore, EventStore, RollupCache
//
// The Pipeline knows nothing of stores: it calls a Func (Roller.Rollup in a
// node; a stand-in in this package's tests), so its scheduling is tested
// apart from the stores.
//
// Writes and reads send light signals {namespace, counter} with Signal. The
// pipeline turns a stream of signals into few rollups:
//
//   - Queues. Each namespace gets Queue.NumQueues queues, created the first
//     time it is signalled. A counter is routed to queue
//     xxhash(counter) mod NumQueues, so on one node a counter always lands in
//     the same queue, and since a queue runs one batch at a time and a batch
//     holds a counter once, no two goroutines of a node roll up one counter at
//     once. NumQueues is read when the queues are created: changing it takes a
//     restart, as the spec says. The other settings (Coalesce, CapacityBytes,
//     RollupBatchCount) follow the newest Namespace seen in a signal.
//
//   - Coalescing. A queue gathers signals into a set. The first signal into an
//     empty set opens a window of Queue.Coalesce; when it ends the set is
//     closed and rolled up, oldest signal first, however often each counter
//     was touched. Signals arriving meanwhile gather into the next set. A
//     counter signalled while its rollup is running is rolled up once more in
//     a later window, because that rollup may have read its state before the
//     write that caused the signal. Coalesce 0 rolls up as soon as possible,
//     still deduplicating.
//
//   - Batching and back-pressure. A closed set is rolled up in batches of
//     RollupBatchCount counters, each counter in its own goroutine; a batch
//     starts only when the previous one of the same queue has finished. After
//     a batch that took d, the queue pauses for
//
//     pause = min(Options.PauseRatio × d, Options.MaxPause)
//
//     before its next batch, from the same set or a later one; d runs from
//     when the batch got its first node-wide slot, since time spent waiting
//     for other queues' batches says nothing of the stores. With the
//     default ratio 1 a queue spends at most about half of its time rolling
//     up; when the stores slow down, batches take longer and the pauses grow
//     with them, so rollups yield to foreground traffic instead of piling on;
//     when the stores are fast the pause is negligible. The concurrency of a
//     namespace is thus at most NumQueues × RollupBatchCount, and
//     Options.MaxConcurrency bounds the whole node.
//
//   - Bounded memory. Each queue estimates its memory as
//     len(counter) + EntryOverhead bytes per counter it holds (pending or
//     running). A signal for a counter the queue does not hold that would
//     exceed Queue.CapacityBytes is dropped and counted: the counter heals at
//     its next read or write, which signals it again. A signal for a counter
//     already held costs nothing and is never dropped. Re-queues (below) keep
//     the entry they already hold, so they are never dropped either.
//
//   - Re-queues. When Func reports caughtUp=false (the counter has writes
//     past its new checkpoint, usually because they are still inside the
//     accept window), the counter is put back into the next set; with an
//     Outcome.NotBefore it is parked until then instead. Signal (a write)
//     brings a parked counter back to the next window; Touch (a read served
//     from the cache) leaves it.
//     When its wait ends a parked counter goes after the counters of its set
//     that are not rolled up at all. When Func
//     fails, the failure is logged (at most once per Options.ErrorLogInterval,
//     with a count of the ones left out) and the counter is retried after an
//     exponential backoff between Options.RetryMin and Options.RetryMax.
//     Errors coded NotFound or InvalidArgument cannot be fixed by a retry and
//     drop the counter instead.
//
//   - Drain. Drain stops taking signals and rolls up what the queues hold,
//     without waiting for coalesce windows, backoffs or pauses. During a drain
//     each counter is started at most once: a counter that is still behind
//     after its drain rollup (its writes are inside the accept window, so
//     another pass could not catch it up either) is abandoned and counted;
//     whatever the node leaves behind is found again after a restart through
//     RollupStore.BehindCounters. A counter whose rollup was already running
//     when Drain began may thus run once more.
package rollup
