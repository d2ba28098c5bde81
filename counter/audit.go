package counter

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/abacus-dev/abacus"
)

var _ abacus.AuditService = (*Service)(nil)

// exportChunk is how many events ExportEvents hands over at once: large
// enough that a stream message per chunk costs little, small enough that an
// export of millions of events never holds more than a chunk.
const exportChunk = 1000

// durableNamespace resolves a namespace that keeps events, refusing a
// BEST_EFFORT one, and takes a request from its rate limit.
func (s *Service) durableNamespace(name, what string) (*abacus.Namespace, error) {
	ns, err := s.namespace(name)
	if err != nil {
		return nil, err
	}
	if !ns.Type.Durable() {
		return nil, abacus.Errorf(abacus.FailedPrecondition,
			"namespace %q is BEST_EFFORT: it keeps no events, only a cached count, so it has no %s", name, what)
	}
	if err := s.admit(use{ns, 0}); err != nil {
		return nil, err
	}
	return ns, nil
}

// retainedFrom is the earliest time whose events retention has certainly
// kept at now: it deletes whole slices that ended delete_after ago.
func retainedFrom(ns *abacus.Namespace, now time.Time) time.Time {
	w := ns.Partition.SliceWidth
	if w <= 0 {
		return time.Time{}
	}
	return sliceFloor(now.Add(-ns.Retention.DeleteAfter), w)
}

// sliceFloor is the start of the slice of width w that holds t: slices are
// aligned on the Unix epoch (abacus.Layout), not on time.Time's zero, which
// Truncate uses.
func sliceFloor(t time.Time, w time.Duration) time.Time {
	n, d := t.UnixNano(), int64(w)
	q := n / d
	if n%d < 0 {
		q--
	}
	return time.Unix(0, q*d)
}

func pageSize(n int) (int, error) {
	switch {
	case n == 0:
		return abacus.DefaultPageSize, nil
	case n < 0 || n > abacus.MaxPageSize:
		return 0, abacus.Errorf(abacus.InvalidArgument, "page_size must be between 1 and %d, got %d", abacus.MaxPageSize, n)
	}
	return n, nil
}

// An event cursor is the key of the last event of a page, in the order of
// Event.Before: its time, whether it is a clear, and its id.
func encodeEventCursor(e abacus.Event) string {
	b := make([]byte, 0, 9+len(e.ID))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	if e.Clear {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = append(b, e.ID...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeEventCursor(tok string) (abacus.Event, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 9 || b[8] > 1 {
		return abacus.Event{}, abacus.Errorf(abacus.InvalidArgument, "page_token is not one this service issued")
	}
	return abacus.Event{
		Time:  time.Unix(0, int64(binary.BigEndian.Uint64(b))),
		Clear: b[8] == 1,
		ID:    string(b[9:]),
	}, nil
}

// afterCursor narrows r to the events after cursor c in r's order, as far
// as a time range can (the scan skips the rest of c's time). It never widens
// r: a cursor from another query's page cannot bring back events outside
// the range asked for.
func afterCursor(r abacus.Range, c abacus.Event) abacus.Range {
	if r.Reverse {
		if to := c.Time.Add(time.Nanosecond); r.To.IsZero() || to.Before(r.To) {
			r.To = to
		}
	} else if c.Time.After(r.From) {
		r.From = c.Time
	}
	return r
}

// past reports whether e comes after cursor c in the scan's order.
func past(e, c abacus.Event, reverse bool) bool {
	if reverse {
		return e.Before(c)
	}
	return c.Before(e)
}

// ListEvents returns a page of one counter's events in rollup order (or its
// reverse). A page token is the key of the page's last event, so a page
// starts strictly after it: events written meanwhile can appear in a later
// page, never twice.
func (s *Service) ListEvents(ctx context.Context, q abacus.EventQuery) (abacus.EventPage, error) {
	if err := q.Ref.Check(); err != nil {
		return abacus.EventPage{}, err
	}
	size, err := pageSize(q.PageSize)
	if err != nil {
		return abacus.EventPage{}, err
	}
	ns, err := s.durableNamespace(q.Namespace, "events to list")
	if err != nil {
		return abacus.EventPage{}, err
	}
	r := q.Range
	var cursor *abacus.Event
	if q.PageToken != "" {
		c, err := decodeEventCursor(q.PageToken)
		if err != nil {
			return abacus.EventPage{}, err
		}
		cursor, r = &c, afterCursor(r, c)
	}
	page := abacus.EventPage{RetainedFrom: retainedFrom(ns, s.now())}
	more := false
	err = s.cfg.Backends.EventStore(ns).Scan(ctx, ns, q.Counter, r, func(e abacus.Event) error {
		if cursor != nil && !past(e, *cursor, r.Reverse) {
			return nil
		}
		if len(page.Events) == size {
			more = true
			return errStop
		}
		page.Events = append(page.Events, e)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return abacus.EventPage{}, err
	}
	if more {
		page.NextPageToken = encodeEventCursor(page.Events[len(page.Events)-1])
	}
	return page, nil
}

var errStop = errors.New("stop")

// ExportEvents streams the events of one counter, or of every counter of
// the namespace in name order, each counter's in rollup order, in chunks.
// Counters are listed a page at a time and events read by one scan per
// counter, so memory stays bounded by a chunk and a page whatever the size
// of the export.
func (s *Service) ExportEvents(ctx context.Context, q abacus.ExportQuery, fn func(time.Time, []abacus.Event) error) error {
	if q.Counter != "" {
		if err := (abacus.Ref{Namespace: q.Namespace, Counter: q.Counter}).Check(); err != nil {
			return err
		}
	} else if err := abacus.CheckNamespaceName(q.Namespace); err != nil {
		return err
	}
	if q.Range.Reverse {
		return abacus.Errorf(abacus.InvalidArgument, "an export is in rollup order only")
	}
	ns, err := s.durableNamespace(q.Namespace, "events to export")
	if err != nil {
		return err
	}
	kept := retainedFrom(ns, s.now())
	chunk := make([]abacus.Event, 0, exportChunk)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := fn(kept, chunk)
		chunk = chunk[:0]
		return err
	}
	export := func(counter string, after *abacus.Event) error {
		r := q.Range
		if after != nil {
			r = afterCursor(r, *after)
		}
		return s.cfg.Backends.EventStore(ns).Scan(ctx, ns, counter, r, func(e abacus.Event) error {
			if after != nil && !past(e, *after, false) {
				return nil
			}
			e.Counter = counter
			chunk = append(chunk, e)
			if len(chunk) == exportChunk {
				return flush()
			}
			return nil
		})
	}
	resume := q.ResumeAfter
	if q.Counter != "" {
		if resume != nil && resume.Counter != q.Counter {
			return abacus.Errorf(abacus.InvalidArgument, "resume_after names counter %q, not the exported %q", resume.Counter, q.Counter)
		}
		if err := export(q.Counter, resume); err != nil {
			return err
		}
		return flush()
	}
	after := ""
	if resume != nil {
		// The resumed counter first, from after its last event; then the
		// counters after it.
		if err := export(resume.Counter, resume); err != nil {
			return err
		}
		after = resume.Counter
	}
	for {
		page, err := s.cfg.Backends.RollupStore(ns).ListCounters(ctx, ns, "", after, abacus.DefaultPageSize)
		if err != nil {
			return err
		}
		for _, c := range page {
			if err := export(c.Counter, nil); err != nil {
				return err
			}
		}
		if len(page) < abacus.DefaultPageSize {
			return flush()
		}
		after = page[len(page)-1].Counter
	}
}

// maxRecountTries bounds how often a recount starts again because a
// rollup or retention moved what it was comparing with.
const maxRecountTries = 10

// Recount recomputes a counter's count from its events before its
// checkpoint's time, on top of the count retention kept of the events it
// deleted, and compares it with the checkpoint. With repair, a mismatch is
// rewritten by a compare-and-swap that keeps the checkpoint's time: a rollup
// that advances the checkpoint meanwhile makes it fail, and the recount
// starts again from the new checkpoint, so a repair never moves a
// checkpoint back and never loses a write that races it. A repaired counter
// is signalled, so that its cached count is rolled up again.
func (s *Service) Recount(ctx context.Context, r abacus.Ref, repair bool) (abacus.RecountResult, error) {
	if err := r.Check(); err != nil {
		return abacus.RecountResult{}, err
	}
	ns, err := s.durableNamespace(r.Namespace, "events to recount")
	if err != nil {
		return abacus.RecountResult{}, err
	}
	rs := s.cfg.Backends.RollupStore(ns)
	for range maxRecountTries {
		st, err := rs.RollupState(ctx, ns, r.Counter)
		if err != nil {
			return abacus.RecountResult{}, err
		}
		base, err := rs.RetainedBase(ctx, ns, r.Counter)
		if err != nil {
			return abacus.RecountResult{}, err
		}
		if b := retainedFrom(ns, s.now()); unverifiable(ns, base, s.now()) && !st.Through.Before(b) {
			// Retention may have deleted events of this counter before
			// their count was recorded: the checkpoint is the only record.
			if err := s.baseFromCheckpoint(ctx, ns, r.Counter, b, st.Checkpoint); err != nil {
				return abacus.RecountResult{}, err
			}
			continue
		}
		res := abacus.RecountResult{Checkpoint: st.Checkpoint, RetainedFrom: base.Through}
		var p abacus.Partial
		if st.Through.After(base.Through) {
			if p, err = s.foldEvents(ctx, ns, r.Counter, base.Through, st.Through, &res.EventsScanned); err != nil {
				return abacus.RecountResult{}, err
			}
		}
		again, err := rs.RetainedBase(ctx, ns, r.Counter)
		if err != nil {
			return abacus.RecountResult{}, err
		}
		if !again.Through.Equal(base.Through) {
			continue // retention deleted events while they were read
		}
		sum := p.On(base.Count)
		n, ok := sum.Int64()
		if !ok {
			return abacus.RecountResult{}, abacus.Errorf(abacus.OutOfRange, "the recount of %q in namespace %q does not fit in int64", r.Counter, ns.Name)
		}
		res.Recounted = n
		res.Match = sum == st.Count
		if res.Match || !repair {
			return res, nil
		}
		fixed := abacus.Checkpoint{Count: sum, Through: st.Through}
		_, swapped, err := rs.RepairCheckpoint(ctx, ns, r.Counter, st.Checkpoint, fixed)
		if err != nil {
			return abacus.RecountResult{}, err
		}
		if !swapped {
			continue // a rollup moved the checkpoint: recount from the new one
		}
		res.Repaired = true
		was, _ := st.Count.Int64()
		s.log.Warn("recount repaired a checkpoint", "namespace", ns.Name, "counter", r.Counter,
			"checkpoint_time", st.Through, "was", was, "now", n)
		s.signal(ns, r.Counter, true)
		return res, nil
	}
	return abacus.RecountResult{}, abacus.Errorf(abacus.Unavailable,
		"the checkpoint of %q in namespace %q kept moving during the recount; try again", r.Counter, ns.Name)
}

// A counter cursor is the name of the last counter of a page.
func encodeCounterCursor(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(name))
}

func decodeCounterCursor(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) == 0 {
		return "", abacus.Errorf(abacus.InvalidArgument, "page_token is not one this service issued")
	}
	return string(b), nil
}

// ListCounters returns a page of the namespace's counters in name order.
func (s *Service) ListCounters(ctx context.Context, q abacus.CounterQuery) (abacus.CounterPage, error) {
	if err := abacus.CheckNamespaceName(q.Namespace); err != nil {
		return abacus.CounterPage{}, err
	}
	size, err := pageSize(q.PageSize)
	if err != nil {
		return abacus.CounterPage{}, err
	}
	ns, err := s.durableNamespace(q.Namespace, "counters to list (their counts live only in the cache)")
	if err != nil {
		return abacus.CounterPage{}, err
	}
	after := ""
	if q.PageToken != "" {
		if after, err = decodeCounterCursor(q.PageToken); err != nil {
			return abacus.CounterPage{}, err
		}
	}
	// One more than the page tells whether there is a next one.
	cs, err := s.cfg.Backends.RollupStore(ns).ListCounters(ctx, ns, q.Prefix, after, size+1)
	if err != nil {
		return abacus.CounterPage{}, err
	}
	page := abacus.CounterPage{Counters: cs}
	if len(cs) > size {
		page.Counters = cs[:size]
		page.NextPageToken = encodeCounterCursor(cs[size-1].Counter)
	}
	return page, nil
}
