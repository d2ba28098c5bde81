// Package client is the Go client of abacus's CounterService over gRPC.
//
// A Client has two faces. Its own methods (AddCount, GetCount, AddCounts,
// ...) take names and deltas and return gRPC status errors. Service gives
// the same calls as an abacus.CounterService, in the vocabulary of the
// root package (requests with tokens of the caller's choosing, *abacus.Error
// values), so that a program can run over the network or in-process
// alike. Namespaces gives the NamespaceService over the same connections.
// Both faces follow the rules below.
//
// A Client makes writes safe to retry where the server makes that possible,
// and cheap to send concurrently:
//
//   - Idempotency. Every write (AddCount, AddAndGetCount, ClearCount, each
//     item of AddCounts) gets a token, a version 4 UUID unique across
//     clients and restarts (74 bits drawn from crypto/rand per client, and
//     a count of the client's tokens), and a generation time from the
//     client's clock, fixed before the first attempt. On an EVENTUAL or ACCURATE namespace the
//     server applies a (token, time) pair at most once, so retries and hedges
//     of a write are harmless there. A BEST_EFFORT namespace does not
//     deduplicate tokens: a write sent twice may be counted twice.
//
//   - Counter types. So the client learns each namespace's counter type,
//     with NamespaceService.GetNamespace over its own connections, in the
//     background of the first write to the namespace, and caches it for
//     WithCounterTypeTTL (30s; the first write after that looks it up again).
//     A write costs one map lookup, never an RPC. A write to a namespace
//     that is not known to be EVENTUAL or ACCURATE (BEST_EFFORT, not looked
//     up yet, not found, lookup failed) is sent once: it is neither retried
//     nor hedged, and a failure after which it may have been applied is an
//     *AmbiguousError (even for UNAVAILABLE, which may also mean a refused
//     connection: the client cannot tell). A write whose attempt failed, or
//     is due for a hedge, while a lookup of its namespace is under way waits
//     for it before it decides. A lookup that fails never fails a write; it
//     keeps the type last known, if any, and is tried again within a second.
//     WithBestEffortRetries(true) retries and hedges every write alike, and
//     accepts double counts on BEST_EFFORT namespaces; the client then makes
//     no lookups.
//
//   - Retries. An attempt that fails with UNAVAILABLE (which grpc-go also
//     reports for a broken or refused connection) or DEADLINE_EXCEEDED (of
//     the attempt; see WithAttemptTimeout) is retried with the same token,
//     after an exponential backoff with jitter, up to WithRetries times and
//     while the caller's context lasts: reads always, writes when they may be
//     sent again (above). A retry may arrive after the write's accept window
//     has closed: the server answers it from the stored event, with the
//     reply of a first attempt if the write was counted, and
//     FAILED_PRECONDITION if it was not (and never will be, since the server
//     fences out attempts still in flight before it says so). So a late
//     retry settles the outcome. When a write fails after an attempt that
//     may have been applied, and no later answer ruled that out, the error
//     is an *AmbiguousError carrying its token and time; any other error
//     means the write was not applied.
//
//   - Hedging (WithHedging, off by default) sends a duplicate of a slow
//     request, with the same token, and takes the first answer: reads, and
//     writes that may be sent again.
//
// # Natural batching
//
// Many goroutines calling AddCount at once would make one RPC each, and one
// RPC per increment cannot outrun the gRPC floor (about 45,000 calls/s on a
// 2-core machine). So, with batching on (the default), concurrent AddCount
// calls are coalesced into AddCounts RPCs, and GetCount calls into
// GetCounts, with no linger for company:
//
//   - A call that finds fewer than WithBatchesInFlight batches in flight
//     (default one per connection) is sent at once, alone, as the unary RPC,
//     from the caller's goroutine. A lone caller never waits for company.
//   - A call that finds the limit reached joins a queue. When a batch in
//     flight returns, the queued calls leave together, up to WithMaxBatch
//     per RPC, on a goroutine of the client's. So batches are as large as
//     the concurrency the caller offers, and grow with the server's latency.
//   - Before the queued calls leave, the goroutine yields the processor
//     until the callers the returned batch has just released have queued
//     their next calls beside them, at most 16 times and for about 100 µs
//     at most (a yield is about a microsecond when nothing else runs). A
//     call that arrives meanwhile waits for it too. This happens only once
//     calls queue, i.e. under load. Without it, closed-loop callers
//     split into two halves taking turns, and each RPC carried half of
//     them: 28–42% more adds/s with 64 callers (docs/benchmarks.md).
//   - Each caller gets its own result. AddCounts is all-or-nothing on the
//     server: a retryable failure retries the whole batch with the same
//     tokens; any other failure (one bad item fails the call and writes
//     nothing) makes the client re-send each item alone, so that only the
//     bad item's caller sees the error. Items that may not be sent again
//     (BEST_EFFORT, type unknown) leave in an RPC of their own, beside the
//     batch of the others, and are not retried, hedged or, after a failure
//     that may have applied them, re-sent alone.
//   - A caller whose context ends stops waiting. If its item had not been
//     sent, it is dropped and the caller gets the context's error. If it had,
//     the batch goes on for the other callers (it may still be applied), and
//     the caller of a write gets an *AmbiguousError. A batch that no caller
//     waits for any more is cancelled.
//   - A queued call costs no allocation and no goroutine of its own: its
//     item (counter, delta, token, time) is appended to the open batch under
//     a lock, and its caller waits on the batch's channel, which one close
//     wakes for all. The batch's request is written onto the wire straight
//     from the items, with no message per item, unless the caller passed
//     WithDialOptions (which may install interceptors): they are then given
//     the generated messages, as always.
//
// AddAndGetCount and ClearCount are never batched; AddCounts and GetCounts
// are batches already, split into RPCs of WithMaxBatch items.
//
// On a 2-core machine with the node in the same process, 64 goroutines
// calling AddCount on an EVENTUAL namespace (every RPC waits for an fsync)
// made 30,000–45,000 adds/s with batching (32 adds per RPC) against
// 7,000–20,000 without; on a BEST_EFFORT namespace, 120,000–160,000 adds/s.
// See BenchmarkAddCountParallel and BenchmarkAddCountTuning, and
// BenchmarkAddCountSink for the client's own CPU and allocations per call.
package client
