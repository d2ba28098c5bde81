// Package embedded is abacus's default store: one Pebble database on the node's
// disk that serves as the EventStore, the RollupStore and the NamespaceStore, so
// a single abacusd needs no server to install [DEP-1].
//
// # Key layout
//
// Every key starts with a one-byte prefix that names its key space. Integers
// are big-endian so that byte order is numeric order; signed integers (slice,
// time bucket, event time) have their sign bit flipped for the same reason.
//
//	'e' | nsID u64 | slice i64 | counter | 0x00 | time_bucket i64 | 0xFFFF | last_event_time i64 | write_out u64
//	    → count | (varint(time − previous) | len | event_id | varint(delta) | clear flag)…
//	                                           a block: the counter's events of one time bucket from
//	                                           one write-out, in (time, id) order [TS-1]
//	'e' | nsID u64 | slice i64 | counter | 0x00 | time_bucket i64 | event_bucket u16 | event_time i64 | event_id
//	    → varint(delta) | clear flag (1 byte)  one event, as layout v1 stored events (read, not written)
//	'l' | seq u64            → (len | event key | len | event value)…   a batch record of the event log
//	                                           in memory (memlog.go), deleted once written out
//	'w' | nsID u64 | counter → event_time i64     last write time rounded up to 100ms, merged as a max [ROLL-2]
//	'c' | nsID u64 | counter → count hi i64 | count lo u64 | through i64        checkpoint [ROLL-1]
//	'r' | nsID u64 | counter → count hi i64 | count lo u64 | through i64        retained base: the count of
//	                                                                  the events retention deleted
//	'n' | name               → JSON of abacus.Namespace                        [API-1]
//	'm' | name               → store metadata: layout version, namespace ID sequence
//
// The write path (memlog.go): an Append's new events go to the WAL as one
// batch record ('l') and into an in-memory table, which reads merge with
// Pebble's keys; a flusher writes each table out as blocks in an sstable that
// Pebble ingests, with the tables' last write times ('w'), and deletes the
// records. One Pebble key per Append and one per counter and time bucket
// per write-out, instead of one per event and one merge per counter per
// Append.
//
// where, with times in Unix nanoseconds and floor division [TS-2],
//
//	slice        = event_time / Partition.SliceWidth
//	time_bucket  = event_time / Partition.BucketWidth
//	event_bucket = xxhash(event_id) mod Partition.BucketsPerID
//
// Why this order:
//
//   - The namespace ID and slice come first, so retention drops a whole slice
//     of a namespace, every counter at once, with one DeleteRange [TS-5], and
//     dropping a namespace is one DeleteRange per key space.
//   - Within a slice a counter's events are contiguous, and within a counter
//     they are grouped by time bucket, so a range scan reads only the time
//     buckets it needs, one at a time, and a hot counter's time bucket is
//     split into BucketsPerID runs (v1 events) or blocks that are read as
//     runs and merged; a scan seeks past the blocks that end before its range.
//   - The counter name is terminated by 0x00. Names never contain 0x00 (the API
//     refuses control characters) and the store refuses one that does with
//     InvalidArgument, so the terminator is unambiguous. The event ID is the
//     last component and needs no terminator, so any ID is stored as it is.
//   - 'w' and 'c' keys of a counter have the same suffix, so BehindCounters and
//     ListCounters can walk both key spaces in step (a merge join) without a
//     lookup per counter.
//
// The namespace ID, not its name, keys the data: IDs come from a persisted
// sequence and are never reused, so a namespace deleted and created again
// starts empty even if dropping the old data was interrupted.
//
// Event times, scan bounds and checkpoint times must lie within ±2^62 ns of the
// Unix epoch (years 1823–2116) and partition widths within (0, 2^60 ns], so
// that no slice or bucket arithmetic can overflow; anything else is refused
// with InvalidArgument. The counter service's accept window keeps real events
// far inside those limits.
//
// A namespace's TimePartition is part of the key layout: events written under
// one partition cannot be found under another. UpdateNamespace therefore
// refuses to change it.
package embedded
