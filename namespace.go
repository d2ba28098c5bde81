// Package abacus holds the domain of the abacus counting service: namespaces,
// events, checkpoints, error codes, the service's vocabulary (CounterService,
// AddRequest, Ref, Token) and the store interfaces that backends implement.
// It has no dependency on any store or wire format.
//
// A request travels one way through the packages:
//
//	cmd/abacusd → node (wiring only) → api (gRPC, HTTP/JSON) → counter → stores
//	                                                              │ signals
//	                                                              ▼
//	                                                           rollup → stores
//
// counter (the CounterService) validates a request, writes or reads through
// Backends, and signals rollup with each touch of a durable counter; rollup
// decides when each counter is rolled up and does it over the same
// Backends. The stores (embedded, postgres, cache/...) implement the
// interfaces of this package and import nothing else of abacus; client
// implements CounterService over the network, for cli and bench.
//
// Comments here and in the other packages cite contracts by tag, such as
// [ROLL-1]; docs/contracts.md states each one.
package abacus

import "time"

// CounterType selects how a namespace's counters are stored and read.
type CounterType int8

// Counter types, after Netflix's Distributed Counter Abstraction.
const (
	// CounterTypeUnspecified is the zero value; a valid namespace never has it.
	CounterTypeUnspecified CounterType = iota
	// BestEffort counters live only in a cache: fast, not durable, not idempotent.
	BestEffort
	// Eventual counters are durable events; reads return the last rollup.
	Eventual
	// Accurate counters are Eventual counters whose reads add the live delta
	// of events since the last rollup.
	Accurate
)

// String returns the name used in configuration files and the API.
func (t CounterType) String() string {
	switch t {
	case BestEffort:
		return "BEST_EFFORT"
	case Eventual:
		return "EVENTUAL"
	case Accurate:
		return "ACCURATE"
	}
	return "COUNTER_TYPE_UNSPECIFIED"
}

// Durable reports whether the counter type writes events to the event store.
func (t CounterType) Durable() bool { return t == Eventual || t == Accurate }

// Cardinality is the expected number of counters in a namespace; it chooses
// defaults for partitioning and rollup queues.
type Cardinality int8

// Cardinalities.
const (
	CardinalityUnspecified Cardinality = iota
	// Low: few, possibly very hot, counters.
	Low
	// High: many (millions of) counters, each touched rarely.
	High
)

// String returns the name used in configuration files and the API.
func (c Cardinality) String() string {
	switch c {
	case Low:
		return "LOW"
	case High:
		return "HIGH"
	}
	return "CARDINALITY_UNSPECIFIED"
}

// Storage types that this build can serve.
const (
	// StorageMemory is the in-process cache.
	StorageMemory = "MEMORY"
	// StorageEmbedded is the node's embedded Pebble store.
	StorageEmbedded = "EMBEDDED"
	// StoragePostgres is a PostgreSQL database shared by the nodes.
	StoragePostgres = "POSTGRES"
	// StorageRedis is a Redis server or Redis Cluster shared by the nodes.
	StorageRedis = "REDIS"
	// StorageMemcached is a memcached pool shared by the nodes.
	StorageMemcached = "MEMCACHED"
	// StorageEVCache is accepted as an alias of StorageMemcached (EVCache is
	// Netflix's memcached); namespaces store StorageMemcached.
	StorageEVCache = "EVCACHE"
)

// PhysicalStorage names where one part of a namespace lives.
type PhysicalStorage struct {
	// Type is one of the Storage* constants.
	Type string
	// Cluster and Dataset are free-form labels kept for the article's shape.
	Cluster string
	Dataset string
}

// Storage names the stores of the three parts of a namespace.
type Storage struct {
	// Cache holds BEST_EFFORT counts and cached rollups.
	Cache PhysicalStorage
	// Rollup holds rollup checkpoints.
	Rollup PhysicalStorage
	// Events holds the time-series events.
	Events PhysicalStorage
}

// TimePartition spreads a counter's events over partitions [TS-2].
type TimePartition struct {
	// BucketsPerID is the number of event buckets one counter's events are
	// hashed into by event id, so one hot counter spreads over several partitions.
	BucketsPerID int
	// BucketWidth is the width of a time bucket (seconds_per_bucket).
	BucketWidth time.Duration
	// SliceWidth is the width of a retention slice (seconds_per_slice); a
	// multiple of BucketWidth. Retention drops whole slices.
	SliceWidth time.Duration
}

// QueueConfig configures a node's rollup queues for a namespace [ROLL-4].
type QueueConfig struct {
	// NumQueues is the number of in-memory queues counters are hashed to.
	NumQueues int
	// Coalesce is how long signals for one counter are gathered into one rollup.
	Coalesce time.Duration
	// CapacityBytes bounds the memory of each queue; signals beyond it are dropped
	// and counted (a later read or write of the counter signals it again).
	CapacityBytes int64
}

// Retention ages out event slices [TS-5].
type Retention struct {
	// CloseAfter: a slice that ended longer ago than this accepts no more writes.
	CloseAfter time.Duration
	// DeleteAfter: a slice that ended longer ago than this is deleted, after every
	// counter with events in it has been rolled up past it.
	DeleteAfter time.Duration
}

// Namespace is the configuration shared by a set of counters. A valid Namespace
// has every field set; controlplane fills defaults and validates.
type Namespace struct {
	// ID is assigned by the NamespaceStore when the namespace is created and never
	// reused, so a namespace deleted and created again starts empty.
	ID uint64
	// Name is 1–128 characters of [A-Za-z0-9_.-].
	Name        string
	Type        CounterType
	Cardinality Cardinality
	// TTL of BEST_EFFORT counts and of cached rollups.
	TTL time.Duration
	// AcceptLimit: events older than now − AcceptLimit are refused, so that older
	// events form an immutable window that rollups aggregate [TS-3].
	AcceptLimit time.Duration
	Partition   TimePartition
	Queue       QueueConfig
	// RollupBatchCount is the number of counters aggregated concurrently in one
	// rollup batch.
	RollupBatchCount int
	Retention        Retention
	Storage          Storage
	// RateLimit bounds the requests this node serves for the namespace; nil
	// sets no limit. In an update, nil keeps the current limit and a zero
	// RateLimit removes it.
	RateLimit   *RateLimit `json:",omitempty"`
	Description string
	Created     time.Time
	Updated     time.Time
}

// RateLimit is a namespace's rate limit, enforced by each node on its own
// (N nodes together allow N times the rates). A zero rate sets no limit of
// that kind. A request over a limit is refused with ResourceExhausted before
// anything is applied.
type RateLimit struct {
	// RequestsPerSecond bounds the calls naming the namespace: a batch call
	// counts once per namespace it names.
	RequestsPerSecond float64 `json:",omitzero"`
	// IncrementsPerSecond bounds the adds (AddCount, AddAndGetCount, and
	// each item of AddCounts), whatever their deltas.
	IncrementsPerSecond float64 `json:",omitzero"`
	// Burst is how many requests, and how many increments, may pass at
	// once above the rates. Zero: one second's worth of each rate.
	Burst int `json:",omitzero"`
}

// IsZero reports whether r sets no limit; a nil r sets none.
func (r *RateLimit) IsZero() bool {
	return r == nil || r.RequestsPerSecond == 0 && r.IncrementsPerSecond == 0
}

// FutureLimit is how far in the future a generation_time may be. It bounds the
// damage of a client with a fast clock: its events would otherwise sit beyond
// every rollup window.
const FutureLimit = 5 * time.Second

// SkewMargin is added to the accept limit to find the end of the immutable
// window a rollup may aggregate: it covers clock differences between nodes.
const SkewMargin = time.Second

// AcceptWindow returns the half-open range [from, to) of event times the
// namespace accepts at now.
func (ns *Namespace) AcceptWindow(now time.Time) (from, to time.Time) {
	return now.Add(-ns.AcceptLimit), now.Add(FutureLimit)
}

// RollupGrain is the step of rollup windows: RollupEnd is a multiple of it
// (since the Unix epoch), so checkpoints are too, and a store may fold a
// window from per-counter sums over grains of this width (ManyFolder).
const RollupGrain = 100 * time.Millisecond

// RollupEnd returns the exclusive end of the immutable window at now: every
// event before it is older than the accept limit plus the skew margin, so no
// new event can land there. It is rounded down to a RollupGrain.
func (ns *Namespace) RollupEnd(now time.Time) time.Time {
	end := now.Add(-ns.AcceptLimit - SkewMargin)
	r := end.UnixNano() % int64(RollupGrain)
	if r < 0 {
		r += int64(RollupGrain)
	}
	return end.Add(-time.Duration(r))
}

// RollupCovers returns the earliest time at which RollupEnd is after t: when
// a rollup can first cover an event at t.
func (ns *Namespace) RollupCovers(t time.Time) time.Time {
	r := t.UnixNano() % int64(RollupGrain)
	if r < 0 {
		r += int64(RollupGrain)
	}
	return t.Add(-time.Duration(r) + RollupGrain + ns.AcceptLimit + SkewMargin)
}
