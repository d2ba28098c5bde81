package abacus

import (
	"context"
	"strconv"
	"time"
)

// Write is one event for one namespace, the unit of EventStore.Append.
type Write struct {
	NS    *Namespace
	Event Event
}

// Range selects events by time: [From, To), in time order, or in reverse time
// order when Reverse is set. A zero From means "from the first event", a zero To
// "through the last".
type Range struct {
	From, To time.Time
	Reverse  bool
}

// EventStore is the durable time-series event log [TS].
//
// Errors: every method returns an *Error; Unavailable means the store failed and
// the call may be retried (Append is idempotent, so a retry of an append whose
// outcome is unknown is safe).
type EventStore interface {
	// Append writes the events atomically and durably (fsync or commit) before
	// it returns nil. For an event whose key (namespace, counter, time, id) is
	// already stored with the same payload it writes nothing for that event and
	// succeeds; with another payload it returns AlreadyExists naming the token
	// and writes none of the events. A new event whose time is before its
	// counter's fence or stored checkpoint (see RollupStore.Fence) is refused
	// with FailedPrecondition, and none of the events are written. With the
	// events it records, atomically,
	// each counter's last write time: the latest event time ever appended.
	// Concurrent appends share fsyncs (group commit).
	Append(ctx context.Context, writes []Write) error

	// Scan calls fn for each event of one counter in r, ordered by Event.Before
	// (reversed when r.Reverse). fn's error stops the scan and is returned.
	Scan(ctx context.Context, ns *Namespace, counter string, r Range, fn func(Event) error) error

	// Counters calls fn once for each counter that has events in a slice
	// overlapping [from, to). Retention uses it to roll counters up before
	// their slices are deleted.
	Counters(ctx context.Context, ns *Namespace, from, to time.Time, fn func(counter string) error) error

	// DeleteSlices deletes every whole slice of ns that ends at or before t, and
	// returns how many it deleted. Before deleting, it makes every checkpoint
	// written so far durable, so no count depends on deleted events alone.
	DeleteSlices(ctx context.Context, ns *Namespace, t time.Time) (int, error)

	// DropNamespace deletes every event, checkpoint and last-write record of ns.
	DropNamespace(ctx context.Context, ns *Namespace) error
}

// RollupState is what the rollup store knows of one counter [ROLL-1, ROLL-2].
type RollupState struct {
	Checkpoint
	// LastWrite is the latest event time appended for the counter, or later
	// by less than LastWriteResolution; zero if none.
	LastWrite time.Time
}

// LastWriteResolution bounds how much later than a counter's latest event
// time a store may report its RollupState.LastWrite. A store may round it
// up (the embedded store does, so that a counter written many times a second
// needs few writes of it). Rollups use it as an upper bound, which delays
// their conclusion that a counter is caught up by at most this much and never
// moves a checkpoint, and subtract it where they need the earliest the last
// write can have been (the quiet rule for provisional counts).
const LastWriteResolution = 100 * time.Millisecond

// Behind reports whether events may exist past the checkpoint.
func (s RollupState) Behind() bool {
	return !s.LastWrite.IsZero() && !s.LastWrite.Before(s.Through)
}

// RollupStore keeps rollup checkpoints.
type RollupStore interface {
	// RollupState returns a counter's checkpoint and last write time; the zero
	// state for a counter never written.
	RollupState(ctx context.Context, ns *Namespace, counter string) (RollupState, error)

	// Fence promises that, once it returns, no event of the counter with a
	// time before end can still be appended: appends in flight have finished
	// and later ones with earlier times are refused (see Append). A rollup
	// calls it before it scans [checkpoint, end), so that the scan sees every
	// event the window will ever hold, even one whose write stalled between
	// its accept-window check and its commit for longer than the skew margin.
	// A fence never moves back.
	Fence(ctx context.Context, ns *Namespace, counter string, end time.Time) error

	// AdvanceCheckpoint stores to if the stored checkpoint is still from
	// (Checkpoint.Equal: the same 128-bit Count and the same Through; the
	// zero Checkpoint for a counter that has none) and to.Through is after
	// from.Through, and in every case returns the checkpoint stored
	// afterwards: to if it stored it, else the one that was stored.
	//
	// from is the checkpoint the caller's to was computed from (a rollup's
	// count is from's plus the events it folded after from.Through). The
	// compare-and-swap is what keeps a rollup that read a checkpoint before
	// a RepairCheckpoint from advancing after it with the count the repair
	// corrected; it also keeps any checkpoint from moving back, so
	// concurrent rollups converge: of two rollups from the same checkpoint
	// the first to write wins, and the other sees its checkpoint returned.
	// A caller whose from was stale does the rollup again from the returned
	// checkpoint. Checkpoint writes need not be fsynced one by one: they
	// can be recomputed while events are retained.
	AdvanceCheckpoint(ctx context.Context, ns *Namespace, counter string, from, to Checkpoint) (Checkpoint, error)

	// BehindCounters calls fn for every counter whose last write is at or after
	// its checkpoint: the counters a node must roll up after a restart.
	BehindCounters(ctx context.Context, fn func(nsID uint64, counter string) error) error

	// ListCounters returns, in name order, at most limit counters of ns
	// that the store has a record of (written at least once), whose names
	// start with prefix and sort after after (all of them for ""), each
	// with its state. Fewer than limit means there are no more. A limit
	// below 1 is InvalidArgument.
	ListCounters(ctx context.Context, ns *Namespace, prefix, after string, limit int) ([]CounterState, error)

	// RepairCheckpoint replaces a counter's stored checkpoint with fixed if
	// it is still old (same Count and Through) and fixed.Through equals
	// old.Through, and returns the checkpoint stored afterwards and whether
	// it replaced it. It is how a recount corrects a wrong count without
	// moving a checkpoint's time: a rollup that advanced the checkpoint
	// meanwhile makes it fail (ok false), and the recount starts again from
	// the new one, so no write that raced it is lost. A rollup that read the
	// checkpoint before the repair cannot carry the old error forward after
	// it: its AdvanceCheckpoint from the old checkpoint fails, and it rolls
	// up again from the repaired one. A zero fixed.Through is
	// InvalidArgument.
	RepairCheckpoint(ctx context.Context, ns *Namespace, counter string, old, fixed Checkpoint) (stored Checkpoint, ok bool, err error)

	// RetainedBase returns the count of a counter's events that retention
	// has deleted, and the time they end at: the base a recount starts from
	// (the zero Checkpoint if none were deleted).
	RetainedBase(ctx context.Context, ns *Namespace, counter string) (Checkpoint, error)

	// SetRetainedBase records base as the count of the counter's events
	// before base.Through, before retention deletes them. It only moves
	// forward (a base with an earlier Through, or a zero one, is ignored),
	// and is durable by the time EventStore.DeleteSlices deletes them.
	SetRetainedBase(ctx context.Context, ns *Namespace, counter string, base Checkpoint) error
}

// CounterState is one counter as RollupStore.ListCounters returns it.
type CounterState struct {
	Counter string
	RollupState
}

// BatchRollupStore is implemented by rollup stores that read and advance
// the checkpoints of many counters of one namespace at once for less than
// one call each (one snapshot and one pass in key order, one write).
// Callers type-assert a RollupStore for it and fall back to RollupState and
// AdvanceCheckpoint.
type BatchRollupStore interface {
	// RollupStates returns the state of each of counters, in their order, as
	// RollupState would.
	RollupStates(ctx context.Context, ns *Namespace, counters []string) ([]RollupState, error)
	// AdvanceCheckpoints is AdvanceCheckpoint from froms[i] to tos[i] for
	// each counters[i] (distinct counters), in one write; each
	// compare-and-swap succeeds or fails on its own. It returns the
	// checkpoints stored afterwards, in order. Slices of different lengths
	// are InvalidArgument.
	AdvanceCheckpoints(ctx context.Context, ns *Namespace, counters []string, froms, tos []Checkpoint) ([]Checkpoint, error)
}

// Equal reports whether c and o are the same checkpoint: the same count
// and the same time. It is the comparison of the compare-and-swaps
// RollupStore.AdvanceCheckpoint and RollupStore.RepairCheckpoint.
func (c Checkpoint) Equal(o Checkpoint) bool {
	return c.Count == o.Count && c.Through.Equal(o.Through)
}

// ScanRequest is one counter's part of a MultiScanner.ScanMany.
type ScanRequest struct {
	Counter string
	Range   Range
}

// MultiScanner is implemented by event stores that scan several counters of
// one namespace in one pass for less than one Scan each. Callers type-assert
// an EventStore for it and fall back to Scan.
type MultiScanner interface {
	// ScanMany calls fn(i, e) for every event of reqs[i].Counter in
	// reqs[i].Range, as Scan would (forwards only; Reverse is refused with
	// InvalidArgument), each counter's events in Event.Before order; the
	// requests' events may interleave. An error from fn stops the scan and
	// is returned.
	ScanMany(ctx context.Context, ns *Namespace, reqs []ScanRequest, fn func(i int, e Event) error) error
}

// FoldRequest is one counter's part of a ManyFolder.FoldMany: the fold of
// its events in [From, Mid) and, separately, in [Mid, To), as a rollup
// needs them (its window and the provisional tail after it). A zero From or
// To is unbounded, as in Range.
type FoldRequest struct {
	Counter       string
	From, Mid, To time.Time
}

// FoldResult is the answer to one FoldRequest. OK is false when the store
// could not fold it without reading the events (they are not all in its
// memory, or a clear among them makes their order matter): the caller then
// scans them.
type FoldResult struct {
	Before, After Partial
	// NBefore is the number of events in [From, Mid).
	NBefore int
	OK      bool
}

// ManyFolder is implemented by event stores that can fold recent events
// from per-counter sums they keep, for much less than a scan of them.
// Callers type-assert an EventStore for it and scan what it leaves.
type ManyFolder interface {
	// FoldMany answers each request, results[i] for reqs[i]. A result is
	// OK only when it is what a scan of the events would fold to.
	FoldMany(ctx context.Context, ns *Namespace, reqs []FoldRequest) ([]FoldResult, error)
}

// NamespaceStore persists namespace configurations [API-1].
type NamespaceStore interface {
	// CreateNamespace stores a new namespace, assigning ID, Created and Updated,
	// and returns it. AlreadyExists if the name is taken.
	CreateNamespace(ctx context.Context, ns *Namespace) (*Namespace, error)
	// GetNamespace returns the namespace named name; NotFound if there is none.
	GetNamespace(ctx context.Context, name string) (*Namespace, error)
	// ListNamespaces returns every namespace, ordered by name.
	ListNamespaces(ctx context.Context) ([]*Namespace, error)
	// UpdateNamespace replaces the stored configuration of ns.Name, keeping its ID
	// and Created, setting Updated, and returns it; NotFound if there is none.
	UpdateNamespace(ctx context.Context, ns *Namespace) (*Namespace, error)
	// DeleteNamespace removes the configuration and returns what it was; NotFound
	// if there is none. A store that also holds the namespace's data (the
	// embedded store, PostgreSQL) drops it in the same atomic step; the service
	// still calls EventStore.DropNamespace after it, for writes in flight.
	DeleteNamespace(ctx context.Context, name string) (*Namespace, error)
}

// Cache holds BEST_EFFORT counts: incremented in place, not durable, not
// idempotent [TYPE-1].
type Cache interface {
	// Add adds delta to key's count (absent counts as 0), refreshes its ttl and
	// returns the new count. OutOfRange, with the count unchanged, if the result
	// would not fit in int64.
	Add(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// Get returns key's count, 0 if absent or expired.
	Get(ctx context.Context, key string) (int64, error)
	// Delete removes key.
	Delete(ctx context.Context, key string) error
}

// RollupCache keeps a counter's count and checkpoint time together as one value,
// so they never disagree [ROLL-3].
type RollupCache interface {
	// GetCheckpoint returns the cached checkpoint of key, if any.
	GetCheckpoint(ctx context.Context, key string) (Checkpoint, bool, error)
	// PutCheckpoint caches cp for key unless a newer checkpoint is cached.
	PutCheckpoint(ctx context.Context, key string, cp Checkpoint, ttl time.Duration) error
}

// Backends gives the stores of a namespace, chosen by the storage types in
// its configuration. The counter service writes and reads through it, and
// the rollup pipeline rolls counters up through it. Its methods never return
// nil: a store the node lacks is represented by one that fails with
// Unavailable.
type Backends interface {
	EventStore(ns *Namespace) EventStore
	RollupStore(ns *Namespace) RollupStore
	Cache(ns *Namespace) Cache
	RollupCache(ns *Namespace) RollupCache
	// AllRollupStores returns each distinct rollup store once, for recovery.
	AllRollupStores() []RollupStore
}

// CacheKey names a counter in the caches (Cache and RollupCache). The
// namespace ID, never reused, keeps a re-created namespace from seeing a
// deleted one's counts.
func CacheKey(ns *Namespace, counter string) string {
	return strconv.FormatUint(ns.ID, 36) + ":" + counter
}
