// Package postgres is abacus's shared store: a PostgreSQL database (15 or
// later) that serves as the EventStore, the RollupStore and the
// NamespaceStore of every node, so that several stateless abacusd nodes serve
// the same namespaces and counters, and any of them can die without losing an
// acknowledged write [DEP-2]. It passes the conformance suite of the embedded
// store (storetest) unchanged.
//
// # Schema
//
// Every object lives in one schema (Options.Schema, "abacus" by default),
// created and upgraded by Open (see schema.go):
//
//	meta(key text PK, value text)                   'schema_version' → "2"
//	namespaces(name text PK, id bigint identity UNIQUE, config jsonb,
//	           created timestamptz, updated timestamptz)              [API-1]
//	events(ns_id, slice, counter, time_bucket, event_bucket,
//	       event_time, event_id, delta, clear,
//	       PRIMARY KEY (counter, event_time, event_id, ns_id, slice))  [TS-1]
//	  PARTITION BY LIST (ns_id)
//	  events_n<ns>          PARTITION OF events FOR VALUES IN (<ns>)
//	                        PARTITION BY RANGE (slice)
//	  events_n<ns>_s<slice> PARTITION OF events_n<ns>
//	                        FOR VALUES FROM (<slice>) TO (<slice>+1)
//	slices(ns_id, slice, PK)                  the slice partitions that exist
//	counters(ns_id, counter, last_write, fence, PK (ns_id, counter))  [ROLL-2]
//	checkpoints(ns_id, counter, count_hi, count_lo, through, PK)       [ROLL-1]
//	retained_bases(ns_id, counter, count_hi, count_lo, through, PK)
//	                                          count of the events retention deleted
//	refuse_events(bigint)                     raises SQLSTATE AB409 if > 0
//
// Times (event_time, through, last_write, fence) are bigint Unix nanoseconds:
// event_time is part of the idempotency key and timestamptz keeps only
// microseconds. With the namespace's TimePartition [TS-2],
//
//	slice        = floor(event_time / SliceWidth)
//	time_bucket  = floor(event_time / BucketWidth)
//	event_bucket = xxhash(event_id) mod BucketsPerID
//
// exactly as the embedded store computes them.
//
// Why this shape:
//
//   - Events are partitioned by namespace, then by time slice, so retention
//     drops whole slices with DROP TABLE (no DELETE, no vacuum debt) [TS-5],
//     and dropping a namespace drops its table. Partitions are created on
//     demand, the first time a node writes to a slice (see ensurePartitions).
//   - The primary key is the idempotency key. The partition columns must be
//     in it; they come last because within one partition they are constant,
//     so the key also serves a counter's time-ordered scan: an index range
//     scan per slice, merged.
//   - time_bucket and event_bucket are stored for audits and exports that
//     read a hot counter's time bucket in parallel pieces; PostgreSQL needs
//     neither to spread a counter's rows, which the B-tree does.
//   - Text columns use the "C" collation, so ORDER BY matches Go's byte order
//     (Event.Before compares IDs as Go strings, ListNamespaces sorts names).
//     PostgreSQL text cannot hold NUL bytes or invalid UTF-8, so this store
//     refuses them in counter names and IDs with InvalidArgument, where the
//     embedded store accepts any ID; the API refuses both anyway.
//   - The 128-bit checkpoint count is two bigints, the low one holding the
//     bits of a uint64.
//   - counters holds, per counter, the latest event time appended and the
//     rollup fence, so every group that writes to a counter locks its row
//     until it commits, and Fence, which raises the fence in that row, waits
//     for those groups (see Store.Fence).
//
// # Writes
//
// Appends are group-committed (see committer and Store.commitGroup): the
// Appends waiting while a committer's transaction runs are written by its
// next transaction together, with one statement (a single multi-row INSERT
// ... ON CONFLICT fed by unnest arrays, plus the last-write upsert, as data-
// modifying CTEs), one round trip and one commit. The idempotency outcome of
// each Append stays its own: an Append that reuses a token with another
// payload, or writes behind a rollup, is refused, and the others in its group
// commit without it.
//
// Fences are group-committed the same way (see fencer): a rollup batch
// fences each of its counters at once, and the Fences queued together are
// raised by one statement and one commit, in the order groups lock the same
// rows.
//
// Every write commits with the server's synchronous_commit (on by default),
// so an acknowledged write is in the server's WAL. A commit whose outcome is
// unknown is reported as Unavailable: retrying it with the same token is a
// no-op if it did commit.
//
// # Failures
//
// Errors are classified by SQLSTATE and Go type, never by message text:
// connection failures, timeouts, shutdowns, serialization failures,
// deadlocks and lock timeouts are Unavailable; bad values are
// InvalidArgument. Options.Timeout bounds connecting and every call but the
// streaming reads' pages (5 × Timeout each), so a server that is down or
// unreachable makes calls fail fast; the pool reconnects by itself when it
// returns.
//
// # Limits
//
// DROP TABLE of a partition locks its parent (ACCESS EXCLUSIVE), so
// DeleteSlices pauses the namespace's writes, and DeleteNamespace and
// DropNamespace every namespace's, for the statement; both wait at most the Timeout for the lock
// and then fail with Unavailable, to be retried. Creating a partition does
// not: it is created detached and attached, which takes a weaker lock.
package postgres
