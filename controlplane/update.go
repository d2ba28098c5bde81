package controlplane

import (
	"github.com/abacus-dev/abacus"
)

// CheckUpdate completes updated and checks that it may replace old; it is the
// package-level form of [Validator.CheckUpdate] for this build's storage types.
func CheckUpdate(old, updated *abacus.Namespace) error {
	return Validator{}.CheckUpdate(old, updated)
}

// CheckUpdate checks that updated may replace old, a completed namespace
// that may have counters in it, and completes updated. Every setting updated
// leaves zero keeps old's value, so an update needs to give only what it
// changes (which also means that an update cannot clear a description; it can
// replace it). It reports every problem at once, in one InvalidArgument error,
// under old's name; on error updated is left unchanged.
//
// Settings that decide where existing events and checkpoints are, or how they
// are found, cannot change: name, counter_type, time_partition and storage.
// accept_limit may only shrink. The others may change: counter_cardinality
// (it chose defaults and tunes rollup parallelism, but does not decide where
// data lives), ttl, queue_config (new queues take effect when a node
// restarts its pipeline [ROLL-4]), rollup_batch_count, retention and
// description. The new values must pass [Validator.Complete]'s rules.
func (v Validator) CheckUpdate(old, updated *abacus.Namespace) error {
	c := *updated
	keepOld(old, &c)
	probs := v.complete(&c)
	add := func(field, msg string) { probs = append(probs, problem{field, msg}) }

	if c.Name != old.Name {
		add("name", "cannot change (from "+quote(old.Name)+" to "+quote(c.Name)+")")
	}
	if c.Type != old.Type {
		add("counter_type", "cannot change (from "+old.Type.String()+" to "+c.Type.String()+
			"); create a new namespace instead")
	}
	// An accept limit only shrinks. Rollups have already aggregated every
	// event older than the old limit (plus skew) into checkpoints, which only
	// move forward. A larger limit would accept new events behind such a
	// checkpoint, and no rollup would ever count them. A smaller limit only
	// refuses events earlier and moves the immutable window forward.
	if c.AcceptLimit > old.AcceptLimit {
		add("accept_limit", "may only shrink, from "+fmtDur(old.AcceptLimit)+" to "+fmtDur(c.AcceptLimit)+
			": a larger limit would accept events behind existing rollup checkpoints, which would never be counted")
	}
	// The partitioning decides the keys of stored events: events written under
	// one layout cannot be found under another.
	op, np := old.Partition, c.Partition
	if np.BucketsPerID != op.BucketsPerID {
		add("time_partition.buckets_per_id", immutable(itoa(op.BucketsPerID), itoa(np.BucketsPerID)))
	}
	if np.BucketWidth != op.BucketWidth {
		add("time_partition.seconds_per_bucket", immutable(seconds(op.BucketWidth), seconds(np.BucketWidth)))
	}
	if np.SliceWidth != op.SliceWidth {
		add("time_partition.seconds_per_slice", immutable(seconds(op.SliceWidth), seconds(np.SliceWidth)))
	}
	// Moving a store would leave the namespace's existing data behind.
	for i := range roles {
		r := &roles[i]
		o, n := *r.of(&old.Storage), *r.of(&c.Storage)
		if o != n {
			add("storage."+r.field, immutable(fmtStorage(o), fmtStorage(n)))
		}
	}

	if err := problemsError(old.Name, probs); err != nil {
		return err
	}
	*updated = c
	return nil
}

// keepOld copies into u old's value of every setting u leaves zero, and
// old's identity (ID and creation time), which belong to the namespace rather
// than to a version of its settings. Zero means "unchanged" rather than "the
// default" so that an update of one setting cannot silently change another:
// resetting an accept limit of 10s to the default 5s would start refusing
// events that clients send late.
func keepOld(old, u *abacus.Namespace) {
	if u.ID == 0 {
		u.ID = old.ID
	}
	if u.Created.IsZero() {
		u.Created = old.Created
	}
	orStr(&u.Name, old.Name)
	if u.Type == abacus.CounterTypeUnspecified {
		u.Type = old.Type
	}
	if u.Cardinality == abacus.CardinalityUnspecified {
		u.Cardinality = old.Cardinality
	}
	orSettings(u, old)
	for i := range roles {
		ps, ops := roles[i].of(&u.Storage), roles[i].of(&old.Storage)
		orStr(&ps.Type, ops.Type)
		orStr(&ps.Cluster, ops.Cluster)
		orStr(&ps.Dataset, ops.Dataset)
	}
	if u.RateLimit == nil {
		u.RateLimit = old.RateLimit
	}
	orStr(&u.Description, old.Description)
}

func orStr(p *string, s string) {
	if *p == "" {
		*p = s
	}
}

func immutable(from, to string) string {
	return "cannot change (from " + from + " to " + to + ")"
}

func fmtStorage(ps abacus.PhysicalStorage) string {
	return "{type: " + quote(ps.Type) + ", cluster: " + quote(ps.Cluster) + ", dataset: " + quote(ps.Dataset) + "}"
}
