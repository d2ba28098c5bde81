package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"pgregory.net/rapid"
)

// eventKey is the idempotency key of an event.
type eventKey struct {
	counter string
	nanos   int64
	id      string
}

func keyOf(e abacus.Event) eventKey { return eventKey{e.Counter, e.Time.UnixNano(), e.ID} }

// model is the reference event store: a map of stored events.
type model map[eventKey]abacus.Event

// apply returns whether the batch is accepted, and stores it if so: it is
// refused whole if any event reuses a key with another payload, stored or
// earlier in the batch.
func (m model) apply(batch []abacus.Event) bool {
	pending := map[eventKey]abacus.Event{}
	for _, e := range batch {
		k := keyOf(e)
		if old, ok := m[k]; ok && !old.SamePayload(e) {
			return false
		}
		if old, ok := pending[k]; ok && !old.SamePayload(e) {
			return false
		}
		pending[k] = e
	}
	for k, e := range pending {
		if _, ok := m[k]; !ok {
			m[k] = e
		}
	}
	return true
}

func (m model) scan(counter string, r abacus.Range) []abacus.Event {
	var out []abacus.Event
	for _, e := range m {
		if e.Counter == counter && (r.From.IsZero() || !e.Time.Before(r.From)) && (r.To.IsZero() || e.Time.Before(r.To)) {
			out = append(out, e)
		}
	}
	return sorted(out, r.Reverse)
}

// counters returns the counters with an event in a slice overlapping [from, to).
func (m model) counters(from, to time.Time) string {
	sliceOf := func(t time.Time) int64 {
		n, w := t.UnixNano(), int64(sliceWidth)
		q := n / w
		if n%w < 0 {
			q--
		}
		return q
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return "" // an empty range overlaps no slice
	}
	seen := map[string]bool{}
	for _, e := range m {
		s := sliceOf(e.Time)
		if (from.IsZero() || s >= sliceOf(from)) && (to.IsZero() || s <= sliceOf(to.Add(-1))) {
			seen[e.Counter] = true
		}
	}
	var out []string
	for c := range seen {
		out = append(out, c)
	}
	return sortedStrings(out)
}

func (m model) lastWrite(counter string) time.Time {
	var last time.Time
	for _, e := range m {
		if e.Counter == counter && e.Time.After(last) {
			last = e.Time
		}
	}
	return last
}

// testModel appends random batches, rich in key collisions, equal times and
// partition boundaries, and compares every read with the model. rapid prints
// the failing case, shrunk, with a seed to replay it.
func testModel(t *testing.T, b Backend) {
	var n atomic.Int64
	counters := []string{"a", "b", "c"}
	rapid.Check(t, func(rt *rapid.T) {
		ns := newNamespace(rt, b, fmt.Sprintf("model-%d", n.Add(1)))
		ctx := context.Background()
		// Offsets on and next to bucket and slice boundaries, spanning 7 slices.
		offset := rapid.Custom(func(rt *rapid.T) time.Duration {
			base := time.Duration(rapid.IntRange(-6, 30).Draw(rt, "bucket")) * bucketWidth
			return base + rapid.SampledFrom([]time.Duration{0, 1, 5 * time.Second, bucketWidth - 1}).Draw(rt, "within")
		})
		event := rapid.Custom(func(rt *rapid.T) abacus.Event {
			c := rapid.SampledFrom(counters).Draw(rt, "counter")
			off := offset.Draw(rt, "offset")
			id := rapid.SampledFrom([]string{"t1", "t2", "t3", "t4", "t5", "t6"}).Draw(rt, "id")
			if rapid.IntRange(0, 5).Draw(rt, "kind") == 0 {
				return clr(c, off, id)
			}
			d := rapid.Int64Range(-5, 5).Filter(func(d int64) bool { return d != 0 }).Draw(rt, "delta")
			return add(c, off, id, d)
		})
		m := model{}
		batches := rapid.SliceOfN(rapid.SliceOfN(event, 1, 6), 1, 10).Draw(rt, "batches")
		for i, batch := range batches {
			err := b.Append(ctx, writes(ns, batch...))
			if m.apply(batch) {
				if err != nil {
					rt.Fatalf("batch %d %v: Append: %v", i, recs(batch), err)
				}
			} else if abacus.ErrorCode(err) != abacus.AlreadyExists {
				rt.Fatalf("batch %d %v: Append = %v, want AlreadyExists", i, recs(batch), err)
			}
		}

		bound := rapid.Custom(func(rt *rapid.T) time.Time {
			if rapid.IntRange(0, 4).Draw(rt, "unbounded") == 0 {
				return time.Time{}
			}
			return at(offset.Draw(rt, "bound"))
		})
		for _, c := range counters {
			for range 3 {
				r := abacus.Range{From: bound.Draw(rt, "from"), To: bound.Draw(rt, "to"), Reverse: rapid.Bool().Draw(rt, "reverse")}
				got := scanAll(rt, b, ns, c, r)
				checkEvents(rt, fmt.Sprintf("Scan(%s, %s)", c, fmtRange(r)), got, m.scan(c, r))
			}
			st, err := b.RollupState(ctx, ns, c)
			if err != nil {
				rt.Fatal(err)
			}
			if want := m.lastWrite(c); !lastWriteOK(st.LastWrite, want) {
				rt.Fatalf("LastWrite(%s) = %v, want %v", c, st.LastWrite, want)
			}
		}
		from, to := bound.Draw(rt, "counters from"), bound.Draw(rt, "counters to")
		var got []string
		if err := b.Counters(ctx, ns, from, to, func(c string) error {
			got = append(got, c)
			return nil
		}); err != nil {
			rt.Fatal(err)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
			rt.Fatalf("Counters reported a counter twice: %v", got)
		}
		if g, w := sortedStrings(got), m.counters(from, to); g != w {
			rt.Fatalf("Counters%s = %q, want %q", fmtRange(abacus.Range{From: from, To: to}), g, w)
		}
	})
}
