package abacus

import (
	"math"
	"math/bits"
	"time"
)

// Event is one durable write to a counter [TS-1]. (Counter, Time, ID) is the
// idempotency key: a second write with the same key and payload is a no-op, one
// with another payload is refused.
type Event struct {
	// Counter is the counter's name within its namespace.
	Counter string
	// Time is the event time: the idempotency token's generation_time.
	Time time.Time
	// ID is the idempotency token. It may carry provenance.
	ID string
	// Delta is added to the count. It is zero for a clear.
	Delta int64
	// Clear marks a clear: it wipes every event of the counter at or before Time.
	Clear bool
}

// SamePayload reports whether two events with the same key carry the same write.
func (e Event) SamePayload(o Event) bool { return e.Delta == o.Delta && e.Clear == o.Clear }

// TokenReused is the AlreadyExists error of a write whose key (token and
// time) is already stored with another payload than e's.
func TokenReused(e Event) error {
	return Errorf(AlreadyExists,
		"idempotency token %q at %s was already used with another payload", e.ID, e.Time.UTC().Format(time.RFC3339Nano))
}

// Before orders events for folding: by time, and at equal times deltas before
// clears (a clear at t wipes events at t), then by ID.
func (e Event) Before(o Event) bool {
	if !e.Time.Equal(o.Time) {
		return e.Time.Before(o.Time)
	}
	if e.Clear != o.Clear {
		return !e.Clear
	}
	return e.ID < o.ID
}

// CompareEvents is Before as a three-way comparison, for slices.SortFunc.
func CompareEvents(a, b Event) int {
	switch {
	case a.Before(b):
		return -1
	case b.Before(a):
		return 1
	}
	return 0
}

// Sum is a 128-bit signed count. Folding int64 deltas into it never wraps, so a
// count that leaves the int64 range is reported as OutOfRange, never wrapped.
type Sum struct {
	Hi int64
	Lo uint64
}

// SumOf returns v as a Sum.
func SumOf(v int64) Sum {
	var hi int64
	if v < 0 {
		hi = -1
	}
	return Sum{Hi: hi, Lo: uint64(v)}
}

// Add returns s + d.
func (s Sum) Add(d int64) Sum {
	o := SumOf(d)
	lo, carry := bits.Add64(s.Lo, o.Lo, 0)
	return Sum{Hi: s.Hi + o.Hi + int64(carry), Lo: lo}
}

// Neg returns -s.
func (s Sum) Neg() Sum {
	lo, borrow := bits.Sub64(0, s.Lo, 0)
	return Sum{Hi: -s.Hi - int64(borrow), Lo: lo}
}

// AddSum returns s + o.
func (s Sum) AddSum(o Sum) Sum {
	lo, carry := bits.Add64(s.Lo, o.Lo, 0)
	return Sum{Hi: s.Hi + o.Hi + int64(carry), Lo: lo}
}

// Int64 returns s as an int64 and whether it fits.
func (s Sum) Int64() (int64, bool) {
	v := int64(s.Lo)
	if (s.Hi == 0 && s.Lo <= math.MaxInt64) || (s.Hi == -1 && s.Lo > math.MaxInt64) {
		return v, true
	}
	return 0, false
}

// Fold applies events, already in Before order, to a running count: deltas add,
// a clear resets to zero.
func (s Sum) Fold(events []Event) Sum {
	for _, e := range events {
		s = s.Apply(e)
	}
	return s
}

// Apply returns the count after one event.
func (s Sum) Apply(e Event) Sum {
	if e.Clear {
		return Sum{}
	}
	return s.Add(e.Delta)
}

// Checkpoint is a counter's rollup state [ROLL-1].
type Checkpoint struct {
	// Count is the count of every event before Through.
	Count Sum
	// Through is the exclusive end of the aggregated window; zero if never rolled up.
	Through time.Time
}

// Newer reports whether c has aggregated further than o. Checkpoints only move
// forward: a store keeps the newer of two.
func (c Checkpoint) Newer(o Checkpoint) bool { return c.Through.After(o.Through) }

// Partial is the fold of a run of consecutive events, independent of the count
// before them. Folds of adjacent time ranges combine with Then, which is
// associative, so a long range can be folded in parallel pieces: a clear in a
// later piece discards everything before it, as a clear in a single fold does.
type Partial struct {
	// Cleared reports whether the run contains a clear.
	Cleared bool
	// Sum is the sum of the deltas after the run's last clear.
	Sum Sum
}

// Apply returns the partial fold extended by one event.
func (p Partial) Apply(e Event) Partial {
	if e.Clear {
		return Partial{Cleared: true}
	}
	return Partial{Cleared: p.Cleared, Sum: p.Sum.Add(e.Delta)}
}

// Then returns the fold of p's run followed by q's run.
func (p Partial) Then(q Partial) Partial {
	if q.Cleared {
		return q
	}
	return Partial{Cleared: p.Cleared, Sum: p.Sum.AddSum(q.Sum)}
}

// On returns the count after the run, starting from base.
func (p Partial) On(base Sum) Sum {
	if p.Cleared {
		return p.Sum
	}
	return base.AddSum(p.Sum)
}
