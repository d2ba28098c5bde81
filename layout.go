package abacus

import (
	"time"

	"github.com/cespare/xxhash/v2"
)

// Bounds of the partition arithmetic, shared by every store so that a
// namespace and its events are accepted or refused alike by each.
const (
	// MaxEventNanos bounds stored event and checkpoint times (±2^62 ns, years
	// 1823–2116), so that slice and bucket arithmetic cannot overflow int64.
	MaxEventNanos = int64(1) << 62
	// MaxPartitionWidth bounds bucket and slice widths, in nanoseconds.
	MaxPartitionWidth = int64(1) << 60
	// MaxBucketsPerID is the most event buckets a namespace may have.
	MaxBucketsPerID = 1 << 16
)

// MinEventTime and MaxEventTime are the event times MaxEventNanos allows.
var (
	MinEventTime = time.Unix(0, -MaxEventNanos)
	MaxEventTime = time.Unix(0, MaxEventNanos)
)

// Layout is a namespace's partitioning in nanoseconds, validated [TS-2]:
// where an event goes is decided here, once, for every store.
type Layout struct {
	NSID        uint64
	BucketWidth int64
	SliceWidth  int64
	Buckets     uint64
}

// LayoutOf validates ns's partitioning and returns its Layout, or
// InvalidArgument.
func LayoutOf(ns *Namespace) (Layout, error) {
	if ns == nil {
		return Layout{}, Errorf(InvalidArgument, "namespace is required")
	}
	p := ns.Partition
	bw, sw := int64(p.BucketWidth), int64(p.SliceWidth)
	if bw <= 0 || bw > MaxPartitionWidth || sw <= 0 || sw > MaxPartitionWidth {
		return Layout{}, Errorf(InvalidArgument,
			"namespace %q: bucket width %s and slice width %s must be positive and at most %s",
			ns.Name, p.BucketWidth, p.SliceWidth, time.Duration(MaxPartitionWidth))
	}
	if p.BucketsPerID < 1 || p.BucketsPerID > MaxBucketsPerID {
		return Layout{}, Errorf(InvalidArgument,
			"namespace %q: buckets per id %d must be between 1 and %d", ns.Name, p.BucketsPerID, MaxBucketsPerID)
	}
	return Layout{NSID: ns.ID, BucketWidth: bw, SliceWidth: sw, Buckets: uint64(p.BucketsPerID)}, nil
}

// Slice returns the retention slice of an event time (Unix ns).
func (l Layout) Slice(nanos int64) int64 { return floorDiv(nanos, l.SliceWidth) }

// TimeBucket returns the time bucket of an event time (Unix ns).
func (l Layout) TimeBucket(nanos int64) int64 { return floorDiv(nanos, l.BucketWidth) }

// EventBucket returns the event bucket of an event id: a hash spreads one hot
// counter's events over Buckets partitions.
func (l Layout) EventBucket(id string) uint64 { return xxhash.Sum64String(id) % l.Buckets }

// floorDiv divides rounding towards negative infinity, so that times before
// the epoch fall into the slice or bucket that contains them. b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// EventNanos returns t as Unix nanoseconds, or InvalidArgument if t is zero or
// outside [MinEventTime, MaxEventTime]; what names the time in the message.
func EventNanos(t time.Time, what string) (int64, error) {
	if t.IsZero() {
		return 0, Errorf(InvalidArgument, "%s is required", what)
	}
	if t.Before(MinEventTime) || t.After(MaxEventTime) {
		return 0, Errorf(InvalidArgument, "%s %s is outside the supported range %s to %s",
			what, t.Format(time.RFC3339Nano), MinEventTime.UTC().Format(time.RFC3339), MaxEventTime.UTC().Format(time.RFC3339))
	}
	return t.UnixNano(), nil
}

// NanoBounds converts a half-open [from, to) to inclusive Unix-nanosecond
// bounds within [MinEventTime, MaxEventTime], zero ends meaning unbounded; ok
// is false if the range is empty.
func NanoBounds(from, to time.Time) (lo, hi int64, ok bool) {
	lo, hi = -MaxEventNanos, MaxEventNanos
	if !from.IsZero() {
		if from.After(MaxEventTime) {
			return 0, 0, false
		}
		if !from.Before(MinEventTime) {
			lo = from.UnixNano()
		}
	}
	if !to.IsZero() {
		if !to.After(MinEventTime) {
			return 0, 0, false
		}
		if !to.After(MaxEventTime) {
			hi = to.UnixNano() - 1
		}
	}
	return lo, hi, lo <= hi
}
