package postgres

import (
	"cmp"
	"context"
	"strings"
	"time"

	"github.com/abacus-dev/abacus"
)

// pendingEvent is one validated event of an Append, with the columns derived
// from the namespace's partitioning [TS-2].
type pendingEvent struct {
	ev          abacus.Event
	ns          int64
	slice       int64
	timeBucket  int64
	eventBucket int32
	nanos       int64
}

// eventKey is the idempotency key of an event.
type eventKey struct {
	ns      int64
	counter string
	nanos   int64
	id      string
}

func (e *pendingEvent) key() eventKey { return eventKey{e.ns, e.ev.Counter, e.nanos, e.ev.ID} }

// compareEventKeys orders events by key. Every transaction writes its rows in
// this order, so two transactions that write some of the same keys wait for
// each other in one direction only and cannot deadlock. strings.Compare is
// byte order, which is also the order of the COLLATE "C" columns.
func compareEventKeys(a, b *pendingEvent) int {
	return cmp.Or(
		cmp.Compare(a.ns, b.ns),
		strings.Compare(a.ev.Counter, b.ev.Counter),
		cmp.Compare(a.nanos, b.nanos),
		strings.Compare(a.ev.ID, b.ev.ID),
	)
}

// Append implements abacus.EventStore. The events are validated here, then
// queued for the group committer (see committer), which writes the Appends
// waiting together in one transaction: one statement, one round trip, one
// commit. Append returns when that transaction has committed or failed.
//
// If ctx ends first, Append returns Canceled or DeadlineExceeded at once and
// the group goes on without it: the Append is then written if its group had
// already started, and not otherwise, so the caller must treat the outcome as
// unknown (a retry with the same events is safe). After the Timeout it
// returns Unavailable on the same terms.
func (s *Store) Append(ctx context.Context, writes []abacus.Write) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	evs, err := prepareEvents(writes)
	if err != nil || len(evs) == 0 {
		return err
	}
	return s.group.submit(ctx, evs)
}

// prepareEvents validates writes, derives their partition columns and folds
// duplicates within the call: the same key with the same payload once, with
// another payload AlreadyExists, as the embedded store does.
func prepareEvents(writes []abacus.Write) ([]pendingEvent, error) {
	evs := make([]pendingEvent, 0, len(writes))
	var seen map[eventKey]int
	if len(writes) > 1 {
		seen = make(map[eventKey]int, len(writes))
	}
	for _, w := range writes {
		l, err := abacus.LayoutOf(w.NS)
		if err != nil {
			return nil, err
		}
		e := w.Event
		if err := checkCounter(e.Counter); err != nil {
			return nil, err
		}
		if err := checkText("idempotency token", e.ID); err != nil {
			return nil, err
		}
		nanos, err := abacus.EventNanos(e.Time, "event time")
		if err != nil {
			return nil, err
		}
		if e.Clear && e.Delta != 0 {
			return nil, abacus.Errorf(abacus.InvalidArgument, "a clear carries no delta (got %d)", e.Delta)
		}
		p := pendingEvent{
			ev:          e,
			ns:          int64(l.NSID),
			slice:       l.Slice(nanos),
			timeBucket:  l.TimeBucket(nanos),
			eventBucket: int32(l.EventBucket(e.ID)),
			nanos:       nanos,
		}
		if seen != nil {
			k := p.key()
			if i, ok := seen[k]; ok {
				if !evs[i].ev.SamePayload(e) {
					return nil, abacus.TokenReused(e)
				}
				continue
			}
			seen[k] = len(evs)
		}
		evs = append(evs, p)
	}
	return evs, nil
}

func behindRollup(e abacus.Event, lim int64) error {
	return abacus.Errorf(abacus.FailedPrecondition,
		"event time %s of counter %q is before its last rollup (%s): the write arrived after its window was aggregated and cannot be counted",
		e.Time.UTC().Format(time.RFC3339Nano), e.Counter, nanosTime(lim).Format(time.RFC3339Nano))
}
