package controlplane

import (
	"slices"
	"time"

	"github.com/abacus-dev/abacus"
)

// Defaults returns the settings a namespace of cardinality c takes for every
// setting it leaves zero. Name, counter type and description have no default;
// neither has storage here, because it depends on the build: each store role
// defaults to the first type its [Supported] list names (MEMORY for the cache,
// EMBEDDED for rollups and events in this build). An unspecified or unknown
// cardinality gets LOW's defaults, as [Complete] treats an unspecified one as LOW.
//
//	setting                           LOW        HIGH       unit / format
//	ttl                               24h        24h        duration
//	accept_limit                      5s         5s         duration
//	time_partition.buckets_per_id     4          1          count
//	time_partition.seconds_per_bucket 600        3600       seconds
//	time_partition.seconds_per_slice  86400      86400      seconds
//	queue_config.num_queues           8          32         count
//	queue_config.coalesce_ms          1000       2000       milliseconds
//	queue_config.capacity_bytes       16777216   16777216   bytes (16 MiB, per queue)
//	rollup_batch_count                32         256        counters
//	retention.close_after             144h (6d)  144h (6d)  duration
//	retention.delete_after            168h (7d)  168h (7d)  duration
//	storage.cache.type                MEMORY     MEMORY
//	storage.counter_rollup.type       EMBEDDED   EMBEDDED
//	storage.event_storage.type        EMBEDDED   EMBEDDED
//
// Why these values:
//
//   - A count converges within accept_limit + 1s skew margin + coalesce of the
//     last write [TYPE-2]: 5s + 1s + 1s ≈ 7s for LOW, 8s for HIGH. The article's
//     coalesce_ms of 10000 would make that 16s; a user of the default expects
//     seconds, and a hot LOW counter is rolled up once per coalesce window
//     however often it is touched, so 1s costs little.
//   - LOW namespaces have few, possibly very hot, counters: 4 event buckets per
//     counter and 10-minute time buckets keep one counter's partitions small.
//     HIGH namespaces have millions of rarely touched counters, each with few
//     events: one event bucket and hour-wide time buckets mean that a rollup of
//     a counter idle for a day reads 24 partitions instead of 144 (or 576 with
//     LOW's 4 event buckets).
//   - HIGH namespaces signal many distinct counters, so they get more queues
//     (more rollups in parallel), bigger batches and a longer coalesce window
//     (more counters per batch).
//   - Retention follows the article (518400s / 604800s): events are kept a week,
//     long enough to audit or recount a window after an incident.
//   - ttl is how long the cache keeps a BEST_EFFORT count or a cached rollup:
//     a day keeps counters used daily warm, and bounds the memory of counters
//     no longer used.
func Defaults(c abacus.Cardinality) abacus.Namespace {
	ns := abacus.Namespace{
		Cardinality: c,
		TTL:         24 * time.Hour,
		AcceptLimit: 5 * time.Second,
		Partition: abacus.TimePartition{
			BucketsPerID: 4,
			BucketWidth:  600 * time.Second,
			SliceWidth:   86400 * time.Second,
		},
		Queue: abacus.QueueConfig{
			NumQueues:     8,
			Coalesce:      time.Second,
			CapacityBytes: 16 << 20,
		},
		RollupBatchCount: 32,
		Retention: abacus.Retention{
			CloseAfter:  518400 * time.Second,
			DeleteAfter: 604800 * time.Second,
		},
	}
	if c == abacus.High {
		ns.Partition.BucketsPerID = 1
		ns.Partition.BucketWidth = 3600 * time.Second
		ns.Queue.NumQueues = 32
		ns.Queue.Coalesce = 2 * time.Second
		ns.RollupBatchCount = 256
	} else {
		ns.Cardinality = abacus.Low
	}
	return ns
}

// fillDefaults sets every zero setting of ns to its default. A negative or
// otherwise invalid value is kept, so that validation reports it rather than
// silently replacing it.
func fillDefaults(ns *abacus.Namespace, sup Supported) {
	if ns.RateLimit != nil && *ns.RateLimit == (abacus.RateLimit{}) {
		ns.RateLimit = nil // {} is no limit, as absent is
	}
	if ns.Cardinality == abacus.CardinalityUnspecified {
		ns.Cardinality = abacus.Low
	}
	d := Defaults(ns.Cardinality)
	orSettings(ns, &d)
	for _, r := range roles {
		ps := r.of(&ns.Storage)
		switch ps.Type {
		case "":
			ps.Type = r.types(sup)[0]
		case abacus.StorageEVCache:
			// EVCache is Netflix's memcached: the article's configurations
			// name it, and memcached serves them where this node has one.
			if slices.Contains(r.types(sup), abacus.StorageMemcached) {
				ps.Type = abacus.StorageMemcached
			}
		}
	}
}

// orSettings sets every zero tunable setting of ns (ttl, accept limit,
// partitioning, queues, batch size, retention) to from's: the defaults when
// a namespace is completed, the current values when it is updated.
func orSettings(ns, from *abacus.Namespace) {
	orDur(&ns.TTL, from.TTL)
	orDur(&ns.AcceptLimit, from.AcceptLimit)
	orInt(&ns.Partition.BucketsPerID, from.Partition.BucketsPerID)
	orDur(&ns.Partition.BucketWidth, from.Partition.BucketWidth)
	orDur(&ns.Partition.SliceWidth, from.Partition.SliceWidth)
	orInt(&ns.Queue.NumQueues, from.Queue.NumQueues)
	orDur(&ns.Queue.Coalesce, from.Queue.Coalesce)
	if ns.Queue.CapacityBytes == 0 {
		ns.Queue.CapacityBytes = from.Queue.CapacityBytes
	}
	orInt(&ns.RollupBatchCount, from.RollupBatchCount)
	orDur(&ns.Retention.CloseAfter, from.Retention.CloseAfter)
	orDur(&ns.Retention.DeleteAfter, from.Retention.DeleteAfter)
}

func orDur(p *time.Duration, d time.Duration) {
	if *p == 0 {
		*p = d
	}
}

func orInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}
