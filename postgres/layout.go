package postgres

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/abacus-dev/abacus"
	"github.com/cespare/xxhash/v2"
)

// The limits below are the embedded store's, so that a namespace and its
// events are accepted or refused alike by both backends.
const (
	// maxAbsNanos bounds stored times so that slice and bucket arithmetic on
	// them, with widths up to maxWidth, cannot overflow int64.
	maxAbsNanos = int64(1) << 62
	// maxWidth bounds partition widths, in nanoseconds.
	maxWidth = int64(1) << 60
	// maxBuckets is the most event buckets a namespace may have.
	maxBuckets = 1 << 16
)

var (
	minTime = time.Unix(0, -maxAbsNanos)
	maxTime = time.Unix(0, maxAbsNanos)
)

// layout is a namespace's validated partitioning, in nanoseconds.
type layout struct {
	id          int64
	bucketWidth int64
	sliceWidth  int64
	buckets     uint64
}

func layoutOf(ns *abacus.Namespace) (layout, error) {
	if ns == nil {
		return layout{}, abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	p := ns.Partition
	bw, sw := int64(p.BucketWidth), int64(p.SliceWidth)
	if bw <= 0 || bw > maxWidth || sw <= 0 || sw > maxWidth {
		return layout{}, abacus.Errorf(abacus.InvalidArgument,
			"namespace %q: bucket width %s and slice width %s must be positive and at most %s",
			ns.Name, p.BucketWidth, p.SliceWidth, time.Duration(maxWidth))
	}
	if p.BucketsPerID < 1 || p.BucketsPerID > maxBuckets {
		return layout{}, abacus.Errorf(abacus.InvalidArgument,
			"namespace %q: buckets per id %d must be between 1 and %d", ns.Name, p.BucketsPerID, maxBuckets)
	}
	return layout{id: int64(ns.ID), bucketWidth: bw, sliceWidth: sw, buckets: uint64(p.BucketsPerID)}, nil
}

func (l layout) slice(nanos int64) int64      { return floorDiv(nanos, l.sliceWidth) }
func (l layout) timeBucket(nanos int64) int64 { return floorDiv(nanos, l.bucketWidth) }
func (l layout) eventBucket(id string) int32  { return int32(xxhash.Sum64String(id) % l.buckets) }

// floorDiv divides rounding towards negative infinity, so that times before
// the epoch fall into the slice or bucket that contains them. b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// checkText refuses what a PostgreSQL text column cannot hold: a NUL byte or
// invalid UTF-8 (the database encoding is UTF8). The API refuses both long
// before they reach a store, so only a direct caller can meet this.
func checkText(what, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return abacus.Errorf(abacus.InvalidArgument, "%s %q contains a NUL byte", what, s)
	}
	if !utf8.ValidString(s) {
		return abacus.Errorf(abacus.InvalidArgument, "%s %q is not valid UTF-8", what, s)
	}
	return nil
}

func checkCounter(counter string) error {
	if counter == "" {
		return abacus.Errorf(abacus.InvalidArgument, "counter name is required")
	}
	return checkText("counter name", counter)
}

func checkNamespaceCounter(ns *abacus.Namespace, counter string) error {
	if ns == nil {
		return abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	return checkCounter(counter)
}

// timeNanos returns t as Unix nanoseconds, or InvalidArgument if t is zero or
// outside the range the layout supports.
func timeNanos(t time.Time, what string) (int64, error) {
	if t.IsZero() {
		return 0, abacus.Errorf(abacus.InvalidArgument, "%s is required", what)
	}
	if t.Before(minTime) || t.After(maxTime) {
		return 0, abacus.Errorf(abacus.InvalidArgument, "%s %s is outside the supported range %s to %s",
			what, t.Format(time.RFC3339Nano), minTime.UTC().Format(time.RFC3339), maxTime.UTC().Format(time.RFC3339))
	}
	return t.UnixNano(), nil
}

func nanosTime(n int64) time.Time { return time.Unix(0, n).UTC() }

// scanBounds converts a half-open [from, to) to inclusive nanosecond bounds
// within the supported time range, zero ends meaning unbounded; ok is false if
// the range is empty.
func scanBounds(from, to time.Time) (lo, hi int64, ok bool) {
	lo, hi = -maxAbsNanos, maxAbsNanos
	if !from.IsZero() {
		if from.After(maxTime) {
			return 0, 0, false
		}
		if !from.Before(minTime) {
			lo = from.UnixNano()
		}
	}
	if !to.IsZero() {
		if !to.After(minTime) {
			return 0, 0, false
		}
		if !to.After(maxTime) {
			hi = to.UnixNano() - 1
		}
	}
	return lo, hi, lo <= hi
}
