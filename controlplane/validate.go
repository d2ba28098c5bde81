package controlplane

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/abacus-dev/abacus"
)

// Validator completes and checks namespaces for a binary that can serve the
// storage types in Supported. The zero Validator uses [DefaultSupported].
type Validator struct {
	Supported Supported
}

// Complete fills every zero setting of ns with its default (see [Defaults]),
// then checks every rule; it is the package-level form of [Validator.Complete]
// for this build's storage types.
func Complete(ns *abacus.Namespace) error { return Validator{}.Complete(ns) }

// Complete fills every zero setting of ns with its default and checks the
// result. An unspecified cardinality becomes LOW; an unspecified counter type
// is refused, because it decides whether counts are durable and nothing can
// guess that. All problems are reported at once, in one InvalidArgument error
// whose message names each field:
//
//	namespace "x": accept_limit: must be between 1ms and 1h, got 2h; time_partition.seconds_per_slice: must be a multiple of seconds_per_bucket (60), got 100
//
// On error ns is left unchanged. Complete of a completed namespace changes
// nothing, so it is safe to apply to namespaces read back from a store.
//
// The rules:
//
//	name                              1 to 128 characters, each a letter (A-Z, a-z), a digit (0-9), '_', '.' or '-'
//	counter_type                      BEST_EFFORT, EVENTUAL or ACCURATE (required)
//	counter_cardinality               LOW or HIGH
//	ttl                               > 0
//	accept_limit                      1ms to 1h
//	time_partition.buckets_per_id     1 to 1024
//	time_partition.seconds_per_bucket whole seconds, ≥ 1
//	time_partition.seconds_per_slice  whole seconds, a multiple of seconds_per_bucket, ≤ 366 days
//	queue_config.num_queues           1 to 1024
//	queue_config.coalesce_ms          0 to 3600000 (1h), whole milliseconds; 0 means the default
//	queue_config.capacity_bytes       ≥ 1024
//	rollup_batch_count                1 to 10000
//	retention.close_after             > accept_limit + 1s (abacus.SkewMargin)
//	retention.delete_after            ≥ close_after
//	storage.*.type                    a type listed in v.Supported for the role; BEST_EFFORT
//	                                  namespaces use no rollup or event store, so any type
//	                                  is accepted there
//	storage.*.cluster, .dataset       valid UTF-8 (protobuf strings must be)
//	description                       valid UTF-8
func (v Validator) Complete(ns *abacus.Namespace) error {
	c := *ns
	if probs := v.complete(&c); len(probs) > 0 {
		return problemsError(ns.Name, probs)
	}
	*ns = c
	return nil
}

// complete fills defaults in ns and returns the rules it breaks.
func (v Validator) complete(ns *abacus.Namespace) []problem {
	sup := v.Supported.withDefaults()
	fillDefaults(ns, sup)
	return validate(ns, sup)
}

// Limits of the settings. They are wide: they exist to catch mistakes (units
// confused, a digit too many), not to tune.
const (
	maxBucketsPerID = 1024
	minAcceptLimit  = time.Millisecond
	// maxAcceptLimit bounds how stale a count may be: a count converges only
	// after the accept limit has passed.
	maxAcceptLimit = time.Hour
	// maxSliceWidth: retention drops whole slices, so a slice wider than a
	// year would keep events far longer than any retention asks.
	maxSliceWidth  = 366 * 24 * time.Hour
	maxNumQueues   = 1024
	maxCoalesce    = time.Hour
	minCapacity    = 1024
	maxRollupBatch = 10000
)

func validate(ns *abacus.Namespace, sup Supported) []problem {
	var probs []problem
	add := func(field, format string, args ...any) {
		probs = append(probs, problem{field, fmt.Sprintf(format, args...)})
	}

	if msg := checkName(ns.Name); msg != "" {
		add("name", "%s", msg)
	}
	switch ns.Type {
	case abacus.BestEffort, abacus.Eventual, abacus.Accurate:
	case abacus.CounterTypeUnspecified:
		add("counter_type", "is required: BEST_EFFORT, EVENTUAL or ACCURATE")
	default:
		add("counter_type", "unknown counter type %d; want BEST_EFFORT, EVENTUAL or ACCURATE", ns.Type)
	}
	switch ns.Cardinality {
	case abacus.Low, abacus.High:
	default:
		add("counter_cardinality", "unknown cardinality %d; want LOW or HIGH", ns.Cardinality)
	}
	if ns.TTL <= 0 {
		add("ttl", "must be positive, got %s", fmtDur(ns.TTL))
	}
	acceptOK := ns.AcceptLimit >= minAcceptLimit && ns.AcceptLimit <= maxAcceptLimit
	if !acceptOK {
		add("accept_limit", "must be between %s and %s, got %s",
			fmtDur(minAcceptLimit), fmtDur(maxAcceptLimit), fmtDur(ns.AcceptLimit))
	}

	p := ns.Partition
	if p.BucketsPerID < 1 || p.BucketsPerID > maxBucketsPerID {
		add("time_partition.buckets_per_id", "must be between 1 and %d, got %d", maxBucketsPerID, p.BucketsPerID)
	}
	bucketOK := true
	if msg := checkSeconds(p.BucketWidth); msg != "" {
		add("time_partition.seconds_per_bucket", "%s", msg)
		bucketOK = false
	}
	if msg := checkSeconds(p.SliceWidth); msg != "" {
		add("time_partition.seconds_per_slice", "%s", msg)
	} else if p.SliceWidth > maxSliceWidth {
		add("time_partition.seconds_per_slice", "must be at most %d (366 days), got %s",
			int64(maxSliceWidth/time.Second), seconds(p.SliceWidth))
	} else if bucketOK && p.SliceWidth%p.BucketWidth != 0 {
		// A slice must hold whole time buckets: retention deletes whole slices,
		// and a bucket cut by a slice boundary would lose its older half.
		add("time_partition.seconds_per_slice", "must be a multiple of seconds_per_bucket (%s), got %s",
			seconds(p.BucketWidth), seconds(p.SliceWidth))
	}

	q := ns.Queue
	if q.NumQueues < 1 || q.NumQueues > maxNumQueues {
		add("queue_config.num_queues", "must be between 1 and %d, got %d", maxNumQueues, q.NumQueues)
	}
	switch {
	case q.Coalesce < 0 || q.Coalesce > maxCoalesce:
		add("queue_config.coalesce_ms", "must be between 0 and %d (1h), got %s",
			maxCoalesce.Milliseconds(), millis(q.Coalesce))
	case q.Coalesce%time.Millisecond != 0:
		add("queue_config.coalesce_ms", "must be a whole number of milliseconds, got %s", fmtDur(q.Coalesce))
	}
	if q.CapacityBytes < minCapacity {
		add("queue_config.capacity_bytes", "must be at least %d, got %d", minCapacity, q.CapacityBytes)
	}
	if ns.RollupBatchCount < 1 || ns.RollupBatchCount > maxRollupBatch {
		add("rollup_batch_count", "must be between 1 and %d, got %d", maxRollupBatch, ns.RollupBatchCount)
	}

	// A slice must stay open for writes as long as it can receive events: an
	// event is accepted until it is accept_limit old, and nodes' clocks differ
	// by up to the skew margin. The width of the slice does not matter,
	// because close_after counts from the slice's end.
	r := ns.Retention
	if acceptOK && r.CloseAfter <= ns.AcceptLimit+abacus.SkewMargin {
		add("retention.close_after", "must be greater than accept_limit + %s skew margin (%s), got %s",
			fmtDur(abacus.SkewMargin), fmtDur(ns.AcceptLimit+abacus.SkewMargin), fmtDur(r.CloseAfter))
	} else if r.CloseAfter <= 0 {
		add("retention.close_after", "must be positive, got %s", fmtDur(r.CloseAfter))
	}
	if r.DeleteAfter < r.CloseAfter {
		add("retention.delete_after", "must be at least close_after (%s), got %s",
			fmtDur(r.CloseAfter), fmtDur(r.DeleteAfter))
	}

	if rl := ns.RateLimit; rl != nil {
		for _, f := range []struct {
			name string
			v    float64
		}{{"requests_per_second", rl.RequestsPerSecond}, {"increments_per_second", rl.IncrementsPerSecond}} {
			if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
				add("rate_limit."+f.name, "must be a number ≥ 0 (0: no limit), got %v", f.v)
			}
		}
		if rl.Burst < 0 {
			add("rate_limit.burst", "must be ≥ 0 (0: one second's worth of the rate), got %d", rl.Burst)
		} else if rl.Burst > 0 && rl.IsZero() {
			add("rate_limit.burst", "needs requests_per_second or increments_per_second")
		}
	}

	for i := range roles {
		rl := &roles[i]
		ps := rl.of(&ns.Storage)
		// Protobuf strings must be valid UTF-8: a namespace that could not be
		// sent over the API must not be accepted from a file either.
		if !utf8.ValidString(ps.Cluster) {
			add("storage."+rl.field+".cluster", "must be valid UTF-8")
		}
		if !utf8.ValidString(ps.Dataset) {
			add("storage."+rl.field+".dataset", "must be valid UTF-8")
		}
	}
	if pr := storageProblem(ns, sup); pr != nil {
		probs = append(probs, *pr)
	}
	if !utf8.ValidString(ns.Description) {
		add("description", "must be valid UTF-8")
	}
	return probs
}

// checkName returns what is wrong with a namespace name, or "". The rule is
// abacus.CheckNamespaceName's; the message is in the file's terms.
func checkName(name string) string {
	if abacus.CheckNamespaceName(name) == nil {
		return ""
	}
	allowed := "must be 1 to " + strconv.Itoa(abacus.MaxNamespaceLen) +
		" characters, each a letter (A-Z, a-z), a digit (0-9), '_', '.' or '-'"
	switch {
	case name == "":
		return "is required; " + allowed
	case len(name) > abacus.MaxNamespaceLen:
		return allowed + "; got " + strconv.Itoa(len(name)) + " bytes"
	}
	return allowed + "; got " + strconv.Quote(name)
}

// checkSeconds returns what is wrong with a width the file formats give in
// whole seconds, or "".
func checkSeconds(d time.Duration) string {
	switch {
	case d < time.Second:
		return "must be at least 1, got " + seconds(d)
	case d%time.Second != 0:
		return "must be a whole number of seconds, got " + fmtDur(d)
	}
	return ""
}

// seconds formats d as the seconds the file formats use ("600"), or as a
// duration if it is not a whole number of seconds.
func seconds(d time.Duration) string {
	if d%time.Second != 0 {
		return fmtDur(d)
	}
	return strconv.FormatInt(int64(d/time.Second), 10)
}

// millis formats d in the file formats' milliseconds, or as a duration if it is
// not a whole number of milliseconds.
func millis(d time.Duration) string {
	if d%time.Millisecond != 0 {
		return fmtDur(d)
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}
