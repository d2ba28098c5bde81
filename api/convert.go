package api

import (
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/abacus-dev/abacus"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// Wire ↔ domain conversion. Requests convert zero proto fields to zero domain
// fields, so that the service, not the transport, decides defaults and
// validity. Responses fill every field, so clients see the configuration in
// force rather than guessing defaults.

// tokenFromProto converts an idempotency token. An absent token is the zero
// Token (the service assigns one). A token without generation_time keeps a
// zero Time, which the service refuses with its own message.
func tokenFromProto(field string, t *abacusv1.IdempotencyToken) (abacus.Token, error) {
	if t == nil {
		return abacus.Token{}, nil
	}
	if t.GetToken() == "" {
		// The domain reads an empty ID as "no token" and would assign one,
		// silently making a write the client meant to be retry-safe unsafe.
		return abacus.Token{}, abacus.Errorf(abacus.InvalidArgument, "%s.token is required when %s is given", field, field)
	}
	tok := abacus.Token{ID: t.GetToken()}
	if gt := t.GetGenerationTime(); gt != nil {
		if err := gt.CheckValid(); err != nil {
			return abacus.Token{}, abacus.Errorf(abacus.InvalidArgument, "%s.generation_time: %w", field, err)
		}
		tok.Time = gt.AsTime()
	}
	return tok, nil
}

func tokenToProto(t abacus.Token) *abacusv1.IdempotencyToken {
	if t == (abacus.Token{}) {
		return nil
	}
	p := &abacusv1.IdempotencyToken{Token: t.ID}
	if !t.Time.IsZero() {
		p.GenerationTime = timestamppb.New(t.Time)
	}
	return p
}

func addFromProto(r *abacusv1.AddCountRequest) (abacus.AddRequest, error) {
	tok, err := tokenFromProto("idempotency_token", r.GetIdempotencyToken())
	if err != nil {
		return abacus.AddRequest{}, err
	}
	return abacus.AddRequest{
		Namespace: r.GetNamespace(),
		Counter:   r.GetCounterName(),
		Delta:     r.GetDelta(),
		Token:     tok,
	}, nil
}

// checkBatch refuses oversized batches before converting them: the bound is
// what keeps one call's memory and atomic write small.
func checkBatch(field string, n int) error {
	if n > abacus.MaxBatch {
		return abacus.Errorf(abacus.InvalidArgument, "%s has %d items; at most %d are allowed per call (split the batch)", field, n, abacus.MaxBatch)
	}
	return nil
}

func addsFromProto(r *abacusv1.AddCountsRequest) ([]abacus.AddRequest, error) {
	adds := r.GetAdds()
	if err := checkBatch("adds", len(adds)); err != nil {
		return nil, err
	}
	out := make([]abacus.AddRequest, len(adds))
	for i, a := range adds {
		var err error
		if out[i], err = addFromProto(a); err != nil {
			return nil, positioned("adds", i, err)
		}
	}
	return out, nil
}

// positioned prefixes err's message with the position of the item of the
// repeated field that caused it. Only on error: formatting the position
// for every item would cost an allocation per add on the hot path.
func positioned(field string, i int, err error) error {
	return &abacus.Error{Code: abacus.ErrorCode(err), Msg: fmt.Sprintf("%s[%d].%s", field, i, abacus.ErrorMessage(err)), Err: err}
}

// refFromProto reads the counter a GetCount or ClearCount request names.
func refFromProto(r interface {
	GetNamespace() string
	GetCounterName() string
}) abacus.Ref {
	return abacus.Ref{Namespace: r.GetNamespace(), Counter: r.GetCounterName()}
}

func refsFromProto(r *abacusv1.GetCountsRequest) ([]abacus.Ref, error) {
	cs := r.GetCounters()
	if err := checkBatch("counters", len(cs)); err != nil {
		return nil, err
	}
	out := make([]abacus.Ref, len(cs))
	for i, c := range cs {
		out[i] = refFromProto(c)
	}
	return out, nil
}

// namespaceFromProto converts a namespace given by a client. ID, create_time
// and update_time are not read: the store assigns them.
func namespaceFromProto(p *abacusv1.Namespace) (*abacus.Namespace, error) {
	if p == nil {
		return nil, abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	var c conv
	ns := &abacus.Namespace{
		Name:        p.GetName(),
		Type:        c.counterType(p.GetCounterType()),
		Cardinality: c.cardinality(p.GetCounterCardinality()),
		TTL:         c.duration("ttl", p.GetTtl()),
		AcceptLimit: c.duration("accept_limit", p.GetAcceptLimit()),
		Partition: abacus.TimePartition{
			BucketsPerID: int(p.GetTimePartition().GetBucketsPerId()),
			BucketWidth:  c.scaled("time_partition.seconds_per_bucket", p.GetTimePartition().GetSecondsPerBucket(), time.Second),
			SliceWidth:   c.scaled("time_partition.seconds_per_slice", p.GetTimePartition().GetSecondsPerSlice(), time.Second),
		},
		Queue: abacus.QueueConfig{
			NumQueues:     int(p.GetQueueConfig().GetNumQueues()),
			Coalesce:      c.scaled("queue_config.coalesce_ms", p.GetQueueConfig().GetCoalesceMs(), time.Millisecond),
			CapacityBytes: p.GetQueueConfig().GetCapacityBytes(),
		},
		RollupBatchCount: int(p.GetRollupBatchCount()),
		Retention: abacus.Retention{
			CloseAfter:  c.duration("retention.close_after", p.GetRetention().GetCloseAfter()),
			DeleteAfter: c.duration("retention.delete_after", p.GetRetention().GetDeleteAfter()),
		},
		Storage: abacus.Storage{
			Cache:  storageFromProto(p.GetStorage().GetCache()),
			Rollup: storageFromProto(p.GetStorage().GetCounterRollup()),
			Events: storageFromProto(p.GetStorage().GetEventStorage()),
		},
		RateLimit:   rateLimitFromProto(p.GetRateLimit()),
		Description: p.GetDescription(),
	}
	if c.err != nil {
		return nil, c.err
	}
	return ns, nil
}

// conv keeps the first conversion error, so namespaceFromProto reads as one
// field list instead of a check after every field.
type conv struct{ err error }

func (c *conv) fail(format string, args ...any) {
	if c.err == nil {
		c.err = abacus.Errorf(abacus.InvalidArgument, format, args...)
	}
}

// counterType maps the enum explicitly: protojson accepts any number for an
// open enum, and an unknown value must not become some domain value by accident.
func (c *conv) counterType(t abacusv1.CounterType) abacus.CounterType {
	switch t {
	case abacusv1.CounterType_COUNTER_TYPE_UNSPECIFIED:
		return abacus.CounterTypeUnspecified
	case abacusv1.CounterType_BEST_EFFORT:
		return abacus.BestEffort
	case abacusv1.CounterType_EVENTUAL:
		return abacus.Eventual
	case abacusv1.CounterType_ACCURATE:
		return abacus.Accurate
	}
	c.fail("counter_type: unknown value %d; use BEST_EFFORT, EVENTUAL or ACCURATE", int32(t))
	return abacus.CounterTypeUnspecified
}

func (c *conv) cardinality(v abacusv1.Cardinality) abacus.Cardinality {
	switch v {
	case abacusv1.Cardinality_CARDINALITY_UNSPECIFIED:
		return abacus.CardinalityUnspecified
	case abacusv1.Cardinality_LOW:
		return abacus.Low
	case abacusv1.Cardinality_HIGH:
		return abacus.High
	}
	c.fail("counter_cardinality: unknown value %d; use LOW or HIGH", int32(v))
	return abacus.CardinalityUnspecified
}

// duration converts a google.protobuf.Duration, refusing values that
// time.Duration cannot hold (AsDuration would silently saturate them).
func (c *conv) duration(field string, d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	if err := d.CheckValid(); err != nil {
		c.fail("%s: %w", field, err)
		return 0
	}
	return c.scaled(field, d.GetSeconds(), time.Second) + time.Duration(d.GetNanos())
}

// scaled returns n units, refusing products that overflow time.Duration.
func (c *conv) scaled(field string, n int64, unit time.Duration) time.Duration {
	limit := int64(math.MaxInt64 / unit)
	if n > limit || n < -limit {
		c.fail("%s: %d is out of range (at most %d)", field, n, limit)
		return 0
	}
	return time.Duration(n) * unit
}

// rateLimitFromProto keeps the difference between an unset rate_limit (nil:
// no limit, or in an update the current one) and an empty one (no limit).
func rateLimitFromProto(p *abacusv1.RateLimit) *abacus.RateLimit {
	if p == nil {
		return nil
	}
	return &abacus.RateLimit{RequestsPerSecond: p.GetRequestsPerSecond(), IncrementsPerSecond: p.GetIncrementsPerSecond(), Burst: int(p.GetBurst())}
}

func storageFromProto(p *abacusv1.PhysicalStorage) abacus.PhysicalStorage {
	return abacus.PhysicalStorage{Type: p.GetType(), Cluster: p.GetCluster(), Dataset: p.GetDataset()}
}

func storageToProto(s abacus.PhysicalStorage) *abacusv1.PhysicalStorage {
	return &abacusv1.PhysicalStorage{Type: s.Type, Cluster: s.Cluster, Dataset: s.Dataset}
}

// namespaceToProto converts a stored namespace. Every message field is set,
// zero or not, so a JSON client sees the whole configuration.
func namespaceToProto(ns *abacus.Namespace) *abacusv1.Namespace {
	p := &abacusv1.Namespace{
		Name:               ns.Name,
		CounterType:        counterTypeToProto(ns.Type),
		CounterCardinality: cardinalityToProto(ns.Cardinality),
		Ttl:                durationpb.New(ns.TTL),
		AcceptLimit:        durationpb.New(ns.AcceptLimit),
		TimePartition: &abacusv1.TimePartition{
			BucketsPerId:     int32(ns.Partition.BucketsPerID),
			SecondsPerBucket: int64(ns.Partition.BucketWidth / time.Second),
			SecondsPerSlice:  int64(ns.Partition.SliceWidth / time.Second),
		},
		QueueConfig: &abacusv1.QueueConfig{
			NumQueues:     int32(ns.Queue.NumQueues),
			CoalesceMs:    ns.Queue.Coalesce.Milliseconds(),
			CapacityBytes: ns.Queue.CapacityBytes,
		},
		RollupBatchCount: int32(ns.RollupBatchCount),
		Retention: &abacusv1.Retention{
			CloseAfter:  durationpb.New(ns.Retention.CloseAfter),
			DeleteAfter: durationpb.New(ns.Retention.DeleteAfter),
		},
		Storage: &abacusv1.Storage{
			Cache:         storageToProto(ns.Storage.Cache),
			CounterRollup: storageToProto(ns.Storage.Rollup),
			EventStorage:  storageToProto(ns.Storage.Events),
		},
		Description: ns.Description,
	}
	if r := ns.RateLimit; r != nil {
		p.RateLimit = &abacusv1.RateLimit{RequestsPerSecond: r.RequestsPerSecond, IncrementsPerSecond: r.IncrementsPerSecond, Burst: int32(r.Burst)}
	}
	if !ns.Created.IsZero() {
		p.CreateTime = timestamppb.New(ns.Created)
	}
	if !ns.Updated.IsZero() {
		p.UpdateTime = timestamppb.New(ns.Updated)
	}
	return p
}

func counterTypeToProto(t abacus.CounterType) abacusv1.CounterType {
	switch t {
	case abacus.BestEffort:
		return abacusv1.CounterType_BEST_EFFORT
	case abacus.Eventual:
		return abacusv1.CounterType_EVENTUAL
	case abacus.Accurate:
		return abacusv1.CounterType_ACCURATE
	}
	return abacusv1.CounterType_COUNTER_TYPE_UNSPECIFIED
}

func cardinalityToProto(c abacus.Cardinality) abacusv1.Cardinality {
	switch c {
	case abacus.Low:
		return abacusv1.Cardinality_LOW
	case abacus.High:
		return abacusv1.Cardinality_HIGH
	}
	return abacusv1.Cardinality_CARDINALITY_UNSPECIFIED
}
