package controlplane

import (
	"encoding/json"
	"time"

	"github.com/abacus-dev/abacus"
)

// MarshalFile renders namespaces as a namespaces file in the native shape,
// as indented JSON that [ParseFile] reads back to the same namespaces. The
// namespaces should be complete (see [Complete]): every setting is written,
// so the file documents the values in force, defaults included. Durations are
// written as protobuf's JSON writes them ("518400s"); identity and timestamps
// (ID, Created, Updated) are not settings and are left out.
func MarshalFile(nss []*abacus.Namespace) []byte {
	f := fileJSON{Namespaces: make([]namespaceJSON, len(nss))}
	for i, ns := range nss {
		f.Namespaces[i] = namespaceJSON{
			Name:               ns.Name,
			CounterType:        ns.Type.String(),
			CounterCardinality: ns.Cardinality.String(),
			TTL:                protoDur(ns.TTL),
			AcceptLimit:        protoDur(ns.AcceptLimit),
			TimePartition: timePartitionJSON{
				BucketsPerID:     ns.Partition.BucketsPerID,
				SecondsPerBucket: int64(ns.Partition.BucketWidth / time.Second),
				SecondsPerSlice:  int64(ns.Partition.SliceWidth / time.Second),
			},
			QueueConfig: queueConfigJSON{
				NumQueues:     ns.Queue.NumQueues,
				CoalesceMs:    ns.Queue.Coalesce.Milliseconds(),
				CapacityBytes: ns.Queue.CapacityBytes,
			},
			RollupBatchCount: ns.RollupBatchCount,
			Retention: retentionJSON{
				CloseAfter:  protoDur(ns.Retention.CloseAfter),
				DeleteAfter: protoDur(ns.Retention.DeleteAfter),
			},
			Storage: storageJSON{
				Cache:         physicalJSON(ns.Storage.Cache),
				CounterRollup: physicalJSON(ns.Storage.Rollup),
				EventStorage:  physicalJSON(ns.Storage.Events),
			},
			RateLimit:   (*rateLimitJSON)(ns.RateLimit),
			Description: ns.Description,
		}
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		// Only strings, numbers and structs: encoding cannot fail.
		panic("controlplane: MarshalFile: " + err.Error())
	}
	return append(out, '\n')
}

// The JSON types fix the order of the keys to the protobuf message's.
type (
	fileJSON struct {
		Namespaces []namespaceJSON `json:"namespaces"`
	}
	namespaceJSON struct {
		Name               string            `json:"name"`
		CounterType        string            `json:"counter_type"`
		CounterCardinality string            `json:"counter_cardinality"`
		TTL                string            `json:"ttl"`
		AcceptLimit        string            `json:"accept_limit"`
		TimePartition      timePartitionJSON `json:"time_partition"`
		QueueConfig        queueConfigJSON   `json:"queue_config"`
		RollupBatchCount   int               `json:"rollup_batch_count"`
		Retention          retentionJSON     `json:"retention"`
		Storage            storageJSON       `json:"storage"`
		RateLimit          *rateLimitJSON    `json:"rate_limit,omitempty"`
		Description        string            `json:"description,omitempty"`
	}
	timePartitionJSON struct {
		BucketsPerID     int   `json:"buckets_per_id"`
		SecondsPerBucket int64 `json:"seconds_per_bucket"`
		SecondsPerSlice  int64 `json:"seconds_per_slice"`
	}
	queueConfigJSON struct {
		NumQueues     int   `json:"num_queues"`
		CoalesceMs    int64 `json:"coalesce_ms"`
		CapacityBytes int64 `json:"capacity_bytes"`
	}
	retentionJSON struct {
		CloseAfter  string `json:"close_after"`
		DeleteAfter string `json:"delete_after"`
	}
	storageJSON struct {
		Cache         physicalJSON `json:"cache"`
		CounterRollup physicalJSON `json:"counter_rollup"`
		EventStorage  physicalJSON `json:"event_storage"`
	}
	rateLimitJSON struct {
		RequestsPerSecond   float64 `json:"requests_per_second,omitempty"`
		IncrementsPerSecond float64 `json:"increments_per_second,omitempty"`
		Burst               int     `json:"burst,omitempty"`
	}
	physicalJSON struct {
		Type    string `json:"type"`
		Cluster string `json:"cluster,omitempty"`
		Dataset string `json:"dataset,omitempty"`
	}
)
